package server

import (
	"bytes"
	"strconv"

	"github.com/switchyard-dev/switchyard/internal/httpsyntax"
)

// framingState is where a framingTracker stands in the HTTP/1.1 byte stream.
type framingState uint8

const (
	// stateRequestLine expects the request line of the next request.
	stateRequestLine framingState = iota
	// stateHeader expects a header line or the empty line that ends the head.
	stateHeader
	// stateBody skips a body framed by Content-Length.
	stateBody
	// stateChunkSize expects a chunk-size line of a chunked body.
	stateChunkSize
	// stateChunkData skips the data of one chunk.
	stateChunkData
	// stateChunkEnd expects the CRLF that follows chunk data.
	stateChunkEnd
	// stateTrailer expects a trailer line or the empty line that ends the body.
	stateTrailer
	// stateStopped ignores everything: the stream was flagged or stopped being HTTP.
	stateStopped
)

// maxChunkLine mirrors the longest chunk-size line net/http accepts. A longer line is
// rejected by net/http as well, so flagging it never refuses a request net/http would
// have served.
const maxChunkLine = 4096

// headSlack is added to the server's MaxHeaderBytes to get the largest head the
// tracker scans. net/http allows MaxHeaderBytes plus 4 KiB of buffering slack before
// answering 431; the tracker allows more, so it never flags a head net/http accepts.
const headSlack = 8 << 10

// framingTracker follows the message framing of an HTTP/1.1 request stream, byte
// slice by byte slice, exactly as a server parser must: request head, then a body
// delimited by Content-Length or by chunked coding (with trailers), then the next
// head. It records the index of the first request whose framing is ambiguous or
// malformed; from there on nothing can be trusted, so it stops.
//
// The tracker is deliberately stricter than net/http: whatever net/http would frame
// differently from the tracker is flagged, and the flag only ever refuses requests,
// so a disagreement can never let a smuggled request through.
type framingTracker struct {
	state     framingState
	maxHead   int
	line      []byte // a line split across reads
	headBytes int    // bytes of the current head or trailer section so far
	remaining uint64 // bytes left in the current body or chunk
	index     int    // index of the request being scanned, 0-based
	offset    int64  // bytes fed so far
	lineEnd   int64  // stream offset just past the line being handled

	// Per-head accumulators, reset at every request line.
	http10     bool
	clCount    int
	clFirst    []byte
	clConflict bool
	teCount    int
	teChunked  bool

	// badIndex is the index of the first flagged request, or -1.
	badIndex int
	// reason says why badIndex was flagged.
	reason string

	// onHeadEnd, when set, is called with the stream offset just past each head that
	// passed the framing checks. Tests use it to compare boundaries with net/http.
	onHeadEnd func(end int64)
}

// newFramingTracker returns a tracker for a server that accepts heads of up to
// maxHeaderBytes.
func newFramingTracker(maxHeaderBytes int) *framingTracker {
	return &framingTracker{maxHead: maxHeaderBytes + headSlack, badIndex: -1}
}

// stop makes the tracker ignore the rest of the stream, for connections that stopped
// speaking HTTP/1.1 (hijacked for WebSockets, for example).
func (t *framingTracker) stop() { t.state = stateStopped }

// flag records the current request as malformed and stops tracking.
func (t *framingTracker) flag(reason string) {
	t.badIndex = t.index
	t.reason = reason
	t.state = stateStopped
}

// feed scans the next bytes of the stream.
func (t *framingTracker) feed(p []byte) {
	for len(p) > 0 && t.state != stateStopped {
		var used int
		switch t.state {
		case stateBody, stateChunkData:
			used = t.skip(len(p))
		default:
			used = t.readLine(p)
		}
		t.offset += int64(used)
		p = p[used:]
	}
}

// skip consumes up to n body bytes and moves on when the body or chunk is done.
func (t *framingTracker) skip(n int) int {
	if uint64(n) > t.remaining {
		n = int(t.remaining)
	}
	t.remaining -= uint64(n)
	if t.remaining == 0 {
		if t.state == stateBody {
			t.nextRequest()
		} else {
			t.state = stateChunkEnd
		}
	}
	return n
}

// readLine consumes bytes up to and including the next LF. A complete line is handed
// to handleLine without its LF; a partial one is kept until the next read.
func (t *framingTracker) readLine(p []byte) int {
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		t.line = append(t.line, p...)
		t.checkLineLength(len(p))
		return len(p)
	}
	line := p[:i]
	if len(t.line) > 0 {
		t.line = append(t.line, line...)
		line = t.line
	}
	t.checkLineLength(i + 1)
	t.lineEnd = t.offset + int64(i+1)
	if t.state != stateStopped {
		t.handleLine(line)
	}
	t.line = t.line[:0]
	return i + 1
}

// checkLineLength flags heads, trailers and chunk lines that grow past what net/http
// itself accepts. n is the number of bytes just added to the current line.
func (t *framingTracker) checkLineLength(n int) {
	switch t.state {
	case stateRequestLine, stateHeader, stateTrailer:
		t.headBytes += n
		if t.headBytes > t.maxHead {
			t.flag("request head or trailer section too large")
		}
	case stateChunkSize:
		if len(t.line) > maxChunkLine {
			t.flag("chunk-size line too long")
		}
	case stateChunkEnd:
		if len(t.line) > 1 {
			t.flag("chunk data not followed by CRLF")
		}
	}
}

// handleLine processes one complete line, without its LF.
func (t *framingTracker) handleLine(line []byte) {
	switch t.state {
	case stateRequestLine:
		t.requestLine(trimCR(line))
	case stateHeader:
		t.headerLine(trimCR(line))
	case stateChunkSize:
		t.chunkSizeLine(line)
	case stateChunkEnd:
		// net/http requires exactly CRLF after chunk data.
		if len(line) != 1 || line[0] != '\r' {
			t.flag("chunk data not followed by CRLF")
			return
		}
		t.state = stateChunkSize
	case stateTrailer:
		if len(trimCR(line)) == 0 {
			t.nextRequest()
		}
	}
}

// requestLine checks "method SP target SP version" and starts a new head.
func (t *framingTracker) requestLine(line []byte) {
	t.http10, t.clCount, t.clConflict, t.teCount, t.teChunked = false, 0, false, 0, false
	method, rest, ok1 := bytes.Cut(line, []byte{' '})
	target, version, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 || len(method) == 0 || len(target) == 0 {
		t.flag("malformed request line")
		return
	}
	switch string(version) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		t.http10 = true
	default:
		t.flag("unsupported HTTP version on an HTTP/1 connection")
		return
	}
	t.state = stateHeader
}

// headerLine records the framing headers of one header line, or ends the head.
func (t *framingTracker) headerLine(line []byte) {
	if len(line) == 0 {
		t.endHead()
		return
	}
	if line[0] == ' ' || line[0] == '\t' {
		// Obsolete line folding could hide a framing header from one parser and
		// show it to another (RFC 9112 section 5.2 allows rejecting it).
		t.flag("obsolete header line folding")
		return
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || bytes.ContainsAny(line[:colon], " \t") {
		t.flag("malformed header line")
		return
	}
	name, value := line[:colon], trimOWS(line[colon+1:])
	switch {
	case httpsyntax.EqualFold(name, "content-length"):
		t.clCount++
		if t.clCount == 1 {
			t.clFirst = append(t.clFirst[:0], value...)
		} else if !bytes.Equal(t.clFirst, value) {
			t.clConflict = true
		}
	case httpsyntax.EqualFold(name, "transfer-encoding"):
		t.teCount++
		t.teChunked = httpsyntax.EqualFold(value, "chunked")
	}
}

// endHead applies the framing rules to a complete head and moves to its body.
func (t *framingTracker) endHead() {
	switch {
	case t.teCount > 0 && t.clCount > 0:
		t.flag("both Content-Length and Transfer-Encoding")
	case t.teCount > 0 && t.http10:
		t.flag("Transfer-Encoding on an HTTP/1.0 request")
	case t.teCount > 1:
		t.flag("more than one Transfer-Encoding header")
	case t.teCount == 1 && !t.teChunked:
		t.flag("Transfer-Encoding other than chunked")
	case t.clConflict:
		t.flag("conflicting Content-Length values")
	}
	if t.state == stateStopped {
		return
	}
	var length uint64
	if t.clCount > 0 {
		n, err := strconv.ParseUint(string(t.clFirst), 10, 63)
		if err != nil {
			t.flag("invalid Content-Length")
			return
		}
		length = n
	}
	if t.onHeadEnd != nil {
		t.onHeadEnd(t.lineEnd)
	}
	t.headBytes = 0
	switch {
	case t.teCount == 1:
		t.state = stateChunkSize
	case length > 0:
		t.state, t.remaining = stateBody, length
	default:
		t.nextRequest()
	}
}

// chunkSizeLine parses a chunk-size line the way net/http does: CRLF-terminated, no
// other CR, trailing whitespace trimmed, extensions cut at the first ';', then 1 to 16
// hexadecimal digits.
func (t *framingTracker) chunkSizeLine(line []byte) {
	if len(line) == 0 || bytes.IndexByte(line, '\r') != len(line)-1 {
		t.flag("chunk-size line not terminated by CRLF")
		return
	}
	if len(line)-1 >= maxChunkLine {
		t.flag("chunk-size line too long")
		return
	}
	size, _, _ := bytes.Cut(trimOWSRight(line[:len(line)-1]), []byte{';'})
	n, ok := httpsyntax.ParseHex(size)
	if !ok {
		t.flag("invalid chunk size")
		return
	}
	if n == 0 {
		t.state = stateTrailer
		return
	}
	t.state, t.remaining = stateChunkData, n
}

// nextRequest moves to the head of the next request on the connection.
func (t *framingTracker) nextRequest() {
	t.index++
	t.headBytes = 0
	t.state = stateRequestLine
}

// trimCR removes one trailing CR, as a CRLF line ending leaves it.
func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}

// trimOWS removes optional whitespace (SP and HTAB) on both sides.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return trimOWSRight(b)
}

// trimOWSRight removes trailing optional whitespace.
func trimOWSRight(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
