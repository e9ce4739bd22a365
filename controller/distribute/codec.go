package distribute

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
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

// Parts are cut where the content says, not by position, so that adding or removing
// one route or backend changes one part and leaves the bytes of every other part as
// they were, which is what lets a delta frame send only the parts that changed. A run
// ends after an item whose name hashes to a multiple of the run's average length, or
// when it reaches partItems.
const (
	// partItems caps how many routes or backends one part carries.
	partItems = 250
	// routeRun and backendRun are the average number of routes and backends in a
	// part: small enough that a changed part is a few kilobytes, large enough to keep
	// a part's fixed costs negligible.
	routeRun   = 16
	backendRun = 8
)

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
	lines, err := encodeSnapshotLines(snap)
	if err != nil {
		return nil, err
	}
	return lines.Payload()
}

// encodeSnapshotLines encodes snap into its lines and their snapshot frame payload,
// on every core.
func encodeSnapshotLines(snap *config.Snapshot) (*SnapshotLines, error) {
	if snap == nil {
		return nil, errors.New("encoding snapshot: no snapshot")
	}
	parts := splitSnapshot(snap)
	lines := make([][]byte, len(parts))
	sums := make([]lineSum, len(parts))
	workers := min(runtime.GOMAXPROCS(0), len(parts))
	members := make([][]byte, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(parts)/workers, (w+1)*len(parts)/workers
		wg.Go(func() { members[w], errs[w] = encodeParts(parts[lo:hi], lines[lo:hi], sums[lo:hi]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("encoding snapshot %s: %w", snap.Version, err)
	}
	s := newSnapshotLines(lines, sums)
	payload := bytes.Join(members, nil)
	s.payloadOnce.Do(func() { s.payload = payload })
	return s, nil
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
			for _, run := range runs(routes, routeRun, func(r *config.Route) string { return r.Name }) {
				parts = append(parts, wirePart{Listener: i, VirtualHost: j, Routes: run})
			}
		}
	}
	for _, run := range runs(snap.Backends, backendRun, func(b *config.Backend) string { return b.Name }) {
		parts = append(parts, wirePart{Backends: run})
	}
	return parts
}

// runs cuts items into runs that end after an item whose name hashes to a multiple of
// average, or at partItems items.
func runs[T any](items []T, average uint32, name func(*T) string) [][]T {
	var out [][]T
	start := 0
	for i := range items {
		h := fnv.New32a()
		h.Write([]byte(name(&items[i])))
		if h.Sum32()%average == 0 || i+1-start == partItems {
			out = append(out, items[start:i+1:i+1])
			start = i + 1
		}
	}
	if start < len(items) {
		out = append(out, items[start:len(items):len(items)])
	}
	return out
}

// encodeParts writes parts as one gzip member of JSON lines, keeping each line and
// its hash in lines and sums.
func encodeParts(parts []wirePart, lines [][]byte, sums []lineSum) ([]byte, error) {
	var buf, line bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	enc := json.NewEncoder(&line)
	enc.SetEscapeHTML(false)
	for i := range parts {
		line.Reset()
		if err := enc.Encode(&parts[i]); err != nil {
			return nil, err
		}
		lines[i] = bytes.Clone(line.Bytes())
		sums[i] = sumLine(lines[i])
		if _, err := zw.Write(lines[i]); err != nil {
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

// Decoder decodes a sequence of snapshots, such as the frames of a stream. A part
// whose bytes equal a part of the previous snapshot is not decoded again, so after a
// one-route change to a large configuration it decodes the head and one part. The
// snapshots it returns share those unchanged routes and backends with earlier ones;
// all of them must be treated as read-only. A Decoder is not safe for concurrent use.
type Decoder struct {
	maxBytes int64
	previous map[lineSum]*wirePart // the last snapshot's route and backend parts, by their hash
}

// NewDecoder returns a Decoder that refuses payloads decompressing to more than
// maxBytes.
func NewDecoder(maxBytes int64) *Decoder { return &Decoder{maxBytes: maxBytes} }

// Decode reads one snapshot frame's payload. Bad input is an error, never a panic.
func (d *Decoder) Decode(payload []byte) (*config.Snapshot, error) {
	lines, err := ParseSnapshotLines(payload, d.maxBytes)
	if err != nil {
		return nil, err
	}
	return d.DecodeLines(lines)
}

// DecodeLines decodes one snapshot's lines, as read from a snapshot frame or rebuilt
// from a delta frame. Bad input is an error, never a panic.
func (d *Decoder) DecodeLines(s *SnapshotLines) (*config.Snapshot, error) {
	if s == nil || len(s.lines) == 0 {
		return nil, errors.New("decoding snapshot: no lines")
	}
	lines := s.lines
	parts := make([]*wirePart, len(lines))
	var todo []int
	for i := range lines {
		// The head is always decoded afresh: assembling fills it in.
		if p, ok := d.previous[s.sums[i]]; ok && i > 0 {
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
	next := make(map[lineSum]*wirePart, len(lines)-1)
	for i := 1; i < len(lines); i++ {
		next[s.sums[i]] = parts[i]
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
			// Every line ends with a newline, the last one too, so that lines
			// concatenate into a payload in any order.
			if line[len(line)-1] != '\n' {
				line = append(line, '\n')
			}
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
