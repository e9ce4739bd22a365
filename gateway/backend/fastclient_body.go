package backend

import (
	"bytes"
	"io"
	"net/http"
	"strings"

	"github.com/switchyard-dev/switchyard/gateway/internal/deadline"
	"github.com/switchyard-dev/switchyard/internal/httpsyntax"
)

// Ways a response body is delimited (RFC 9112 section 6.3).
const (
	bodyNone uint8 = iota
	bodyLength
	bodyChunked
	// bodyUntilClose: the backend's close ends the body.
	bodyUntilClose
)

// frame decides how the response body is delimited and gives the response its body,
// which lives in r. closing is set when the request asked to close the connection.
func (cc *clientConn) frame(r *response, head, closing bool) error {
	res := &r.res
	h := res.Header
	res.Close = closing || httpsyntax.HasToken(h["Connection"], "close") ||
		(res.ProtoMinor == 0 && !httpsyntax.HasToken(h["Connection"], "keep-alive"))
	res.ContentLength = -1
	mode := bodyUntilClose
	te := h["Transfer-Encoding"]
	cl, hasCL := h["Content-Length"]
	switch {
	case len(te) > 0:
		delete(h, "Transfer-Encoding")
		if strings.EqualFold(strings.TrimSpace(lastToken(te)), "chunked") {
			mode = bodyChunked
			r.chunked[0] = "chunked"
			res.TransferEncoding = r.chunked[:]
		}
		if hasCL {
			// Both framings: the coding wins (RFC 9112 section 6.3), and the
			// connection cannot be trusted after.
			delete(h, "Content-Length")
			res.Close = true
		}
	case hasCL:
		n, ok := contentLength(cl)
		if !ok {
			return errMalformedResponse
		}
		mode, res.ContentLength = bodyLength, n
	}
	if head || res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified {
		if !head {
			res.ContentLength = 0
		}
		mode = bodyNone
	}
	if mode == bodyChunked {
		if declared, ok := h["Trailer"]; ok {
			delete(h, "Trailer")
			res.Trailer = http.Header{}
			for _, v := range declared {
				for name := range strings.SplitSeq(v, ",") {
					if name = strings.TrimSpace(name); name != "" {
						res.Trailer[http.CanonicalHeaderKey(name)] = nil
					}
				}
			}
		}
	}
	if mode == bodyUntilClose {
		res.Close = true
	}
	b := &r.body
	*b = clientBody{cc: cc, mode: mode, remaining: res.ContentLength, res: res, keep: !res.Close}
	if mode == bodyNone || (mode == bodyLength && res.ContentLength == 0) {
		b.end(nil)
		res.Body = http.NoBody
		return nil
	}
	res.Body = b
	return nil
}

// lastToken returns the last element of a comma-separated header.
func lastToken(values []string) string {
	last := values[len(values)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		return last[i+1:]
	}
	return last
}

// contentLength parses one Content-Length value, or several equal ones.
func contentLength(values []string) (int64, bool) {
	var n int64 = -1
	for _, v := range values {
		m, ok := httpsyntax.ParseContentLength(strings.TrimSpace(v))
		if !ok || (n >= 0 && m != n) {
			return 0, false
		}
		n = m
	}
	return n, true
}

// clientBody streams a response body from its connection, which goes back to the
// idle pool once the body is read to its end.
type clientBody struct {
	cc        *clientConn
	mode      uint8
	remaining int64
	// inChunk is set inside chunk data, which remaining then counts.
	inChunk bool
	res     *http.Response
	keep    bool
	done    bool
	err     error
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.cc.r == b.cc.w && b.cc.w == len(b.cc.rbuf) {
		// The response filled the buffer and goes on past it. (A buffer merely
		// drained, its body not yet arrived, says nothing of the response's size.)
		b.cc.outgrown = true
	}
	var n int
	var err error
	switch b.mode {
	case bodyLength:
		n, err = b.cc.readData(p, b.remaining)
		b.remaining -= int64(n)
		if err == nil && b.remaining == 0 {
			err = io.EOF
		}
	case bodyChunked:
		n, err = b.readChunked(p)
	default:
		n, err = b.cc.readData(p, int64(len(p)))
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
	}
	if err != nil {
		b.end(err)
		if err != io.EOF {
			return n, b.err
		}
	}
	return n, err
}

// readChunked reads chunk data, moving over chunk lines and the trailer section.
func (b *clientBody) readChunked(p []byte) (int, error) {
	for !b.inChunk {
		line, err := b.cc.readLine(4096)
		if err != nil {
			return 0, err
		}
		size, _, _ := httpsyntax.CutByte(bytes.TrimRight(line, " \t\r\n"), ';')
		n, ok := parseChunkSize(size)
		if !ok {
			return 0, errBadChunk
		}
		if n == 0 {
			return 0, b.readTrailers()
		}
		b.inChunk, b.remaining = true, n
	}
	n, err := b.cc.readData(p, b.remaining)
	b.remaining -= int64(n)
	if err != nil {
		return n, err
	}
	if b.remaining == 0 {
		line, err := b.cc.readLine(2)
		if err != nil || len(bytes.TrimRight(line, "\r\n")) != 0 {
			return n, errBadChunk
		}
		b.inChunk = false
	}
	return n, nil
}

// readTrailers reads the trailer section into the response's Trailer and ends the
// body.
func (b *clientBody) readTrailers() error {
	for budget := maxResponseHead; ; {
		line, err := b.cc.readLine(budget)
		if err != nil {
			return err
		}
		budget -= len(line)
		// The line is consumed: its name is put in canonical form where it lies.
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return io.EOF
		}
		var lay fieldLayout
		if err := scanFields(line, &lay); err != nil {
			return errBadChunk
		}
		if b.res.Trailer == nil {
			b.res.Trailer = http.Header{}
		}
		fillFields(string(line), b.res.Trailer, nil)
	}
}

// parseChunkSize parses a chunk size that fits an int64 comfortably.
func parseChunkSize(b []byte) (int64, bool) {
	n, ok := httpsyntax.ParseHex(b)
	if !ok || n > 1<<62 {
		return 0, false
	}
	return int64(n), true
}

// end finishes the body: at its end (io.EOF, or nil for no body) the connection goes
// back to the pool when it can carry another request; otherwise it is closed and
// err is kept for later reads.
func (b *clientBody) end(err error) {
	cc := b.cc
	if cc == nil {
		return
	}
	b.cc = nil
	b.done = true
	if err != nil && err != io.EOF {
		b.err = err
		if cc.endedByContext(err) {
			if ctxErr := cc.ctxErr(); ctxErr != nil {
				b.err = ctxErr
			}
		}
	}
	cc.release()
	if (err == nil || err == io.EOF) && b.keep && !cc.canceled.Load() && cc.r == cc.w {
		cc.reused = true
		cc.t.putIdle(cc)
		return
	}
	_ = cc.conn.Close()
}

// Close ends the body. A body not read to its end is dropped when the rest is
// already buffered; otherwise its connection is closed, as http.Transport does.
func (b *clientBody) Close() error {
	if b.cc == nil {
		return nil
	}
	if b.mode == bodyLength && int64(b.cc.w-b.cc.r) >= b.remaining {
		b.cc.r += int(b.remaining)
		b.remaining = 0
		b.end(io.EOF)
		return nil
	}
	b.keep = false
	b.end(errBodyClosed)
	b.err = errBodyClosed
	return nil
}

var errBodyClosed = http.ErrBodyReadAfterClose

// readData reads up to limit bytes of body into p from the buffer or the socket.
func (cc *clientConn) readData(p []byte, limit int64) (int, error) {
	if int64(len(p)) > limit {
		p = p[:limit]
	}
	if cc.r == cc.w {
		if len(p) >= len(cc.rbuf) {
			n, err := cc.read(p)
			if n > 0 {
				return n, nil
			}
			return 0, eofInBody(err)
		}
		if err := cc.fill(); err != nil {
			return 0, eofInBody(err)
		}
	}
	n := copy(p, cc.rbuf[cc.r:cc.w])
	cc.r += n
	return n, nil
}

func eofInBody(err error) error {
	if err == io.EOF || err == nil {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readLine returns the next line with its LF, valid until the next read.
func (cc *clientConn) readLine(limit int) ([]byte, error) {
	for {
		if i := bytes.IndexByte(cc.rbuf[cc.r:cc.w], '\n'); i >= 0 {
			if i+1 > limit {
				return nil, errBadChunk
			}
			line := cc.rbuf[cc.r : cc.r+i+1]
			cc.r += i + 1
			return line, nil
		}
		if cc.w-cc.r > limit {
			return nil, errBadChunk
		}
		if err := cc.fill(); err != nil {
			return nil, eofInBody(err)
		}
	}
}

// ctxErr is the error of the context that interrupted the connection.
func (cc *clientConn) ctxErr() error {
	if cc.ctx == nil {
		return nil
	}
	return deadline.Cause(cc.ctx)
}
