package distribute

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// A snapshot travels as gzip-compressed newline-delimited JSON: first a part holding
// the snapshot with its routes and backends left out (the head), then parts that each
// carry a run of one virtual host's routes or of the backends, in order. At thousands
// of routes, JSON decoding is most of the time a change takes to reach a replica.
// Parts let both ends spread that work over every core, and let a replica's Decoder
// skip the parts a change did not touch: the encoding is deterministic, so unchanged
// content gives byte-identical parts. The gzip stream is several members, one per
// encoding worker, which any gzip reader reads as one.

// partItems is how many routes or backends one part carries: enough to make a part's
// fixed costs negligible, few enough to spread 5,000 routes over many cores.
const partItems = 250

// wirePart is one line of an encoded snapshot.
type wirePart struct {
	// Head is the snapshot without routes and backends; only the first part has it.
	Head *config.Snapshot `json:"head,omitempty"`
	// Listener and VirtualHost index, within Head, the virtual host Routes belong to.
	Listener    int            `json:"listener,omitempty"`
	VirtualHost int            `json:"virtualHost,omitempty"`
	Routes      []config.Route `json:"routes,omitempty"`
	// Backends continue Head's backend list.
	Backends []config.Backend `json:"backends,omitempty"`
}

// gzipWriters and gzipReaders keep compressors for reuse: a new one allocates large
// tables, which for a small snapshot costs more than the compression itself.
var (
	gzipWriters = sync.Pool{New: func() any {
		zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
		return zw
	}}
	gzipReaders sync.Pool
)

// EncodeSnapshot returns the payload of a snapshot frame, as described in the package
// documentation. It does not modify snap. BestSpeed compresses a large configuration almost as well as the
// default level in half the time, and time is what convergence is measured in.
func EncodeSnapshot(snap *config.Snapshot) ([]byte, error) {
	if snap == nil {
		return nil, errors.New("encoding snapshot: no snapshot")
	}
	parts := splitSnapshot(snap)
	workers := min(runtime.GOMAXPROCS(0), len(parts))
	members := make([][]byte, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(parts)/workers, (w+1)*len(parts)/workers
		wg.Go(func() { members[w], errs[w] = encodeParts(parts[lo:hi]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("encoding snapshot %s: %w", snap.Version, err)
	}
	return bytes.Join(members, nil), nil
}

// splitSnapshot cuts snap into parts, sharing its route and backend slices.
func splitSnapshot(snap *config.Snapshot) []wirePart {
	head := *snap
	head.Backends = nil
	head.Listeners = slices.Clone(snap.Listeners)
	parts := []wirePart{{Head: &head}}
	for i := range head.Listeners {
		l := &head.Listeners[i]
		l.VirtualHosts = slices.Clone(l.VirtualHosts)
		for j := range l.VirtualHosts {
			routes := l.VirtualHosts[j].Routes
			l.VirtualHosts[j].Routes = nil
			for chunk := range slices.Chunk(routes, partItems) {
				parts = append(parts, wirePart{Listener: i, VirtualHost: j, Routes: chunk})
			}
		}
	}
	for chunk := range slices.Chunk(snap.Backends, partItems) {
		parts = append(parts, wirePart{Backends: chunk})
	}
	return parts
}

// encodeParts writes parts as one gzip member of JSON lines.
func encodeParts(parts []wirePart) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	enc := json.NewEncoder(zw)
	enc.SetEscapeHTML(false)
	for i := range parts {
		if err := enc.Encode(&parts[i]); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeSnapshot reads one snapshot frame's payload, refusing one that decompresses
// to more than maxBytes. Bad input is an error, never a panic.
func DecodeSnapshot(payload []byte, maxBytes int64) (*config.Snapshot, error) {
	return NewDecoder(maxBytes).Decode(payload)
}

// Decoder decodes a sequence of snapshot payloads, such as the frames of a stream.
// A part whose bytes equal a part of the previous payload is not decoded again, so
// after a one-route change to a large configuration it decodes the head and one part.
// The snapshots it returns share those unchanged routes and backends with earlier
// ones; all of them must be treated as read-only. A Decoder is not safe for concurrent
// use.
type Decoder struct {
	maxBytes int64
	previous map[string]*wirePart // the last payload's route and backend parts, by their bytes
}

// NewDecoder returns a Decoder that refuses payloads decompressing to more than
// maxBytes.
func NewDecoder(maxBytes int64) *Decoder { return &Decoder{maxBytes: maxBytes} }

// Decode reads one snapshot frame's payload. Bad input is an error, never a panic.
func (d *Decoder) Decode(payload []byte) (*config.Snapshot, error) {
	lines, err := gunzipLines(payload, d.maxBytes)
	if err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, errors.New("decoding snapshot: empty payload")
	}
	parts := make([]*wirePart, len(lines))
	var todo []int
	for i, line := range lines {
		// The head is always decoded afresh: assembling fills it in.
		if p, ok := d.previous[string(line)]; ok && i > 0 {
			parts[i] = p
			continue
		}
		parts[i] = new(wirePart)
		todo = append(todo, i)
	}
	if err := decodeParts(lines, parts, todo); err != nil {
		return nil, err
	}
	snap, err := assemble(parts)
	if err != nil {
		return nil, err
	}
	next := make(map[string]*wirePart, len(lines)-1)
	for i := 1; i < len(lines); i++ {
		next[string(lines[i])] = parts[i]
	}
	d.previous = next
	return snap, nil
}

// gunzipLines decompresses payload, at most maxBytes of it, into its non-empty lines.
// Reading line by line allocates each line once, at its size, rather than growing
// one buffer for the whole snapshot.
func gunzipLines(payload []byte, maxBytes int64) ([][]byte, error) {
	zr, ok := gzipReaders.Get().(*gzip.Reader)
	var err error
	if ok {
		err = zr.Reset(bytes.NewReader(payload))
	} else {
		zr, err = gzip.NewReader(bytes.NewReader(payload))
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot is not gzip data: %w", err)
	}
	defer gzipReaders.Put(zr)
	br := bufio.NewReaderSize(io.LimitReader(zr, maxBytes+1), 64<<10)
	var lines [][]byte
	var total int64
	for {
		line, err := br.ReadBytes('\n')
		total += int64(len(line))
		if total > maxBytes {
			return nil, fmt.Errorf("%w: snapshot decompresses to more than %d bytes", ErrFrameTooLarge, maxBytes)
		}
		if len(bytes.TrimSpace(line)) > 0 {
			lines = append(lines, line)
		}
		if errors.Is(err, io.EOF) {
			return lines, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decompressing snapshot: %w", err)
		}
	}
}

// decodeParts decodes the lines listed in todo into parts, on every core.
func decodeParts(lines [][]byte, parts []*wirePart, todo []int) error {
	errs := make([]error, len(lines))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(todo)) {
		wg.Go(func() {
			for k := int(next.Add(1) - 1); k < len(todo); k = int(next.Add(1) - 1) {
				i := todo[k]
				errs[i] = json.Unmarshal(lines[i], parts[i])
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("decoding snapshot part %d: %w", i, err)
		}
	}
	return nil
}

// assemble puts the parts back into one snapshot, checking every index. It fills in
// the head and copies out of the other parts, which stay unchanged for reuse.
func assemble(parts []*wirePart) (*config.Snapshot, error) {
	snap := parts[0].Head
	if snap == nil {
		return nil, errors.New("decoding snapshot: the first part is not the snapshot head")
	}
	// Size every list first, so that each is allocated once and shares no backing
	// array with a part.
	routes := make([][]int, len(snap.Listeners))
	for l := range snap.Listeners {
		routes[l] = make([]int, len(snap.Listeners[l].VirtualHosts))
	}
	backends := 0
	for i, p := range parts[1:] {
		switch {
		case p.Head != nil:
			return nil, fmt.Errorf("decoding snapshot: part %d is a second head", i+1)
		case len(p.Routes) > 0:
			if p.Listener < 0 || p.Listener >= len(routes) || p.VirtualHost < 0 || p.VirtualHost >= len(routes[p.Listener]) {
				return nil, fmt.Errorf("decoding snapshot: part %d names listener %d virtual host %d, which do not exist",
					i+1, p.Listener, p.VirtualHost)
			}
			routes[p.Listener][p.VirtualHost] += len(p.Routes)
		case len(p.Backends) > 0:
			backends += len(p.Backends)
		}
	}
	for l := range routes {
		for v, n := range routes[l] {
			if vh := &snap.Listeners[l].VirtualHosts[v]; n > 0 {
				vh.Routes = append(make([]config.Route, 0, len(vh.Routes)+n), vh.Routes...)
			}
		}
	}
	if backends > 0 {
		snap.Backends = append(make([]config.Backend, 0, len(snap.Backends)+backends), snap.Backends...)
	}
	for _, p := range parts[1:] {
		if len(p.Routes) > 0 {
			vh := &snap.Listeners[p.Listener].VirtualHosts[p.VirtualHost]
			vh.Routes = append(vh.Routes, p.Routes...)
		}
		snap.Backends = append(snap.Backends, p.Backends...)
	}
	return snap, nil
}
