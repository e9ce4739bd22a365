package distribute

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// A delta frame rebuilds a snapshot's lines from the lines of one the replica already
// holds (its base) and the lines that changed. Both ends name a line by a hash of its
// bytes and a snapshot by a hash of its line hashes (its digest), so that a delta
// names exactly the base it was computed against: a replica whose base differs, by a
// single byte, refuses the delta instead of building a wrong configuration, and a
// rebuilt snapshot whose digest is not the one the delta announces is refused too.

// lineSum is the hash of one line: SHA-256 cut to 128 bits, which no two different
// lines of a configuration share by accident.
type lineSum [16]byte

func sumLine(line []byte) lineSum {
	full := sha256.Sum256(line)
	return lineSum(full[:16])
}

// ErrDeltaBase is returned by SnapshotLines.ApplyDelta for a delta computed against a
// base other than the one it is applied to. The replica cannot rebuild the snapshot;
// it reconnects and is sent the whole snapshot.
var ErrDeltaBase = errors.New("delta against a snapshot this replica does not hold")

// SnapshotLines is one snapshot in wire form, decompressed: the JSON lines of its
// snapshot frame, each with its hash. It is what a replica keeps of the last snapshot
// it received, to rebuild the next one from a delta frame, and what the server keeps
// of each view it encoded, to compute deltas. It is immutable and safe for concurrent
// use.
type SnapshotLines struct {
	lines  [][]byte // each ends with a newline
	sums   []lineSum
	digest lineSum
	size   int64

	// payload is a snapshot frame payload holding these lines, when one is at hand.
	payloadOnce sync.Once
	payload     []byte
	payloadErr  error

	indexOnce sync.Once
	index     map[lineSum]int // the first line with each hash
}

// newSnapshotLines hashes lines and keeps them; sums, when not nil, are their hashes
// already computed.
func newSnapshotLines(lines [][]byte, sums []lineSum) *SnapshotLines {
	if sums == nil {
		sums = make([]lineSum, len(lines))
		for i, l := range lines {
			sums[i] = sumLine(l)
		}
	}
	s := &SnapshotLines{lines: lines, sums: sums}
	h := sha256.New()
	for i := range sums {
		h.Write(sums[i][:])
		s.size += int64(len(lines[i]))
	}
	s.digest = lineSum(h.Sum(nil)[:16])
	return s
}

// ParseSnapshotLines reads a snapshot frame's payload into its lines, refusing one that
// decompresses to more than maxBytes. It checks the framing only; Decoder.DecodeLines
// decodes the JSON.
func ParseSnapshotLines(payload []byte, maxBytes int64) (*SnapshotLines, error) {
	lines, err := gunzipLines(payload, maxBytes)
	if err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, errors.New("decoding snapshot: empty payload")
	}
	s := newSnapshotLines(lines, nil)
	s.payloadOnce.Do(func() { s.payload = payload })
	return s, nil
}

// Digest names the lines' content; equal digests mean byte-identical lines. A replica
// offers it as the base parameter of its stream request.
func (s *SnapshotLines) Digest() string { return hex.EncodeToString(s.digest[:]) }

// Len is the number of lines, head included.
func (s *SnapshotLines) Len() int { return len(s.lines) }

// Size is the decompressed size of the lines, in bytes.
func (s *SnapshotLines) Size() int64 { return s.size }

// Payload returns a snapshot frame payload holding the lines: the one they were read
// from, or a new encoding of them (for a snapshot rebuilt from a delta), for example to
// save to disk.
func (s *SnapshotLines) Payload() ([]byte, error) {
	s.payloadOnce.Do(func() { s.payload, s.payloadErr = compressLines(s.lines) })
	return s.payload, s.payloadErr
}

// compressLines compresses lines as one gzip member.
func compressLines(lines [][]byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	for _, l := range lines {
		if _, err := zw.Write(l); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// lineIndex maps each line hash to the first line that has it.
func (s *SnapshotLines) lineIndex() map[lineSum]int {
	s.indexOnce.Do(func() {
		s.index = make(map[lineSum]int, len(s.sums))
		for i := len(s.sums) - 1; i >= 0; i-- {
			s.index[s.sums[i]] = i
		}
	})
	return s.index
}

// deltaHeader is the first line of a delta frame.
type deltaHeader struct {
	Delta *deltaInfo `json:"delta"`
}

type deltaInfo struct {
	// Base is the digest of the lines the references point into.
	Base string `json:"base"`
	// Digest is the digest of the lines the delta rebuilds.
	Digest string `json:"digest"`
	// Lines is how many lines it rebuilds.
	Lines int `json:"lines"`
}

// sameLinePrefix starts a reference line, {"same":[k,n]}: lines k to k+n-1 of the
// base. No snapshot line starts this way; their first field is another.
var sameLinePrefix = []byte(`{"same":`)

// EncodeDelta returns the payload of a delta frame that rebuilds next from base:
// every run of next's lines found in base, in base's order, becomes one reference,
// every other line travels as it is. The server computes deltas itself; EncodeDelta
// serves tools and tests that speak the protocol.
func EncodeDelta(base, next *SnapshotLines) ([]byte, error) {
	if base == nil || next == nil {
		return nil, errors.New("encoding delta: missing base or snapshot")
	}
	index := base.lineIndex()
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	head, err := json.Marshal(deltaHeader{Delta: &deltaInfo{Base: base.Digest(), Digest: next.Digest(), Lines: len(next.lines)}})
	if err != nil {
		return nil, err
	}
	var out []byte
	out = append(append(out, head...), '\n')
	runStart, runLen := 0, 0
	flushRun := func() {
		if runLen > 0 {
			out = append(out, sameLinePrefix...)
			out = append(out, '[')
			out = strconv.AppendInt(out, int64(runStart), 10)
			out = append(out, ',')
			out = strconv.AppendInt(out, int64(runLen), 10)
			out = append(out, "]}\n"...)
			runLen = 0
		}
	}
	for i, sum := range next.sums {
		k, found := index[sum]
		switch {
		case found && runLen > 0 && k == runStart+runLen:
			runLen++
		case found:
			flushRun()
			runStart, runLen = k, 1
		default:
			flushRun()
			out = append(out, next.lines[i]...)
		}
	}
	flushRun()
	if _, err := zw.Write(out); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ApplyDelta rebuilds a snapshot's lines from a delta frame's payload computed against
// s. It returns an error wrapping ErrDeltaBase when the delta was computed against
// other lines (s may be nil: a replica that holds nothing), and an error for a delta
// that is malformed, rebuilds more than maxBytes, or rebuilds lines other than the ones
// it announces. Bad input is an error, never a panic.
func (s *SnapshotLines) ApplyDelta(payload []byte, maxBytes int64) (*SnapshotLines, error) {
	ops, err := gunzipLines(payload, maxBytes)
	if err != nil {
		return nil, err
	}
	if len(ops) == 0 {
		return nil, errors.New("decoding delta: empty payload")
	}
	var hdr deltaHeader
	if err := json.Unmarshal(ops[0], &hdr); err != nil || hdr.Delta == nil {
		return nil, fmt.Errorf("decoding delta: the first line is not a delta header: %v", err)
	}
	info := hdr.Delta
	if s == nil || info.Base != s.Digest() {
		held := "nothing"
		if s != nil {
			held = s.Digest()
		}
		return nil, fmt.Errorf("%w: the delta's base is %q, this replica holds %s", ErrDeltaBase, info.Base, held)
	}
	if info.Lines <= 0 || int64(info.Lines) > maxBytes/2 {
		return nil, fmt.Errorf("decoding delta: it announces %d lines", info.Lines)
	}
	lines := make([][]byte, 0, min(info.Lines, len(s.lines)+len(ops)))
	sums := make([]lineSum, 0, cap(lines))
	var total int64
	for i, op := range ops[1:] {
		if !bytes.HasPrefix(op, sameLinePrefix) {
			lines, sums, total = append(lines, op), append(sums, sumLine(op)), total+int64(len(op))
		} else {
			var ref struct {
				Same []int `json:"same"`
			}
			if err := json.Unmarshal(op, &ref); err != nil || len(ref.Same) != 2 {
				return nil, fmt.Errorf("decoding delta: line %d is not a reference [first, count]", i+1)
			}
			k, n := ref.Same[0], ref.Same[1]
			if k < 0 || n <= 0 || k >= len(s.lines) || n > len(s.lines)-k {
				return nil, fmt.Errorf("decoding delta: line %d refers to lines %d+%d of a %d-line base", i+1, k, n, len(s.lines))
			}
			for j := k; j < k+n; j++ {
				total += int64(len(s.lines[j]))
			}
			lines, sums = append(lines, s.lines[k:k+n]...), append(sums, s.sums[k:k+n]...)
		}
		if total > maxBytes || len(lines) > info.Lines {
			return nil, fmt.Errorf("%w: delta rebuilds more than %d bytes or %d lines", ErrFrameTooLarge, maxBytes, info.Lines)
		}
	}
	next := newSnapshotLines(lines, sums)
	if len(lines) != info.Lines || next.Digest() != info.Digest {
		return nil, fmt.Errorf("decoding delta: it rebuilt %d lines with digest %s, want %d lines with digest %s",
			len(lines), next.Digest(), info.Lines, info.Digest)
	}
	return next, nil
}
