package h1

import (
	"bufio"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/internal/httpsyntax"
)

// deferLimit is how much body a response without Content-Length holds back before
// committing to chunked coding: a handler that finishes within it gets a
// Content-Length instead, as with net/http.
const deferLimit = 2 << 10

// response is the http.ResponseWriter of one request. Its buffers belong to the
// connection and are reused by the next request; handlers must not keep it.
type response struct {
	c *conn
	// reqBody and reqClose are the request's body reader and whether it asked to
	// close, as the server made them: a handler may replace the request's Body or
	// change its fields (the handler may be given the very request the server
	// made), yet the server must still drain what is left of the body it frames.
	reqBody  *body
	reqClose bool
	header   http.Header
	// status is the final status once wroteHeader is set.
	status      int
	wroteHeader bool
	// committed is set once the response head is in wbuf (or sent).
	committed bool
	// contentLength is the declared body length, or -1.
	contentLength int64
	written       int64
	chunked       bool
	isHead        bool
	// noBody is set for statuses that carry no body (1xx, 204, 304).
	noBody bool
	// closeAfter closes the connection after the response; closeEarly does it
	// gracefully because the client may still be sending.
	closeAfter, closeEarly bool
	hijacked, aborted      bool
	writeErr               error
	// head is the response head being built; wbuf the output not yet sent.
	head, wbuf []byte
	// bufs gathers wbuf and a body too large for it into one write, in vec, so
	// that the write allocates nothing.
	vec      [3][]byte
	bufs     net.Buffers
	keys     []string
	trailers []string
	// continueMu orders an automatic "100 Continue", written from whatever goroutine
	// reads the body, before the response head.
	continueMu  sync.Mutex
	canContinue atomic.Bool
}

func (w *response) reset(c *conn, req *http.Request) {
	head, wbuf, keys, header := w.head[:0], w.wbuf[:0], w.keys[:0], w.header
	if header == nil {
		header = make(http.Header, 8)
	} else {
		clear(header)
	}
	reqBody, _ := req.Body.(*body)
	*w = response{c: c, reqBody: reqBody, reqClose: req.Close, header: header, head: head, wbuf: wbuf, keys: keys,
		trailers: w.trailers[:0], contentLength: -1, isHead: req.Method == http.MethodHead}
	// Buffers come from the pool, to which a connection that idles returns them
	// (see fillIdle). The head's is taken whole only on such a connection; on
	// others, which keep theirs, it grows to what heads need.
	if w.wbuf == nil {
		w.wbuf = getBuffer()[:0]
	}
	if w.head == nil && c.idle != nil {
		w.head = getBuffer()[:0]
	}
}

// Header returns the header map; changes after WriteHeader are ignored, except
// trailers (see http.ResponseWriter).
func (w *response) Header() http.Header { return w.header }

// WriteHeader sends an informational status at once, or fixes the final status and
// head, which go out with the first body bytes or at the end.
func (w *response) WriteHeader(code int) {
	if w.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.wroteHeader, w.status = true, code
	w.noBody = code == http.StatusNoContent || code == http.StatusNotModified || code < 200
	w.buildHead()
}

// writeInformational sends a 1xx response with the current header, as net/http does
// (RFC 8297 early hints carry headers).
func (w *response) writeInformational(code int) {
	if code == http.StatusContinue {
		w.canContinue.Store(false)
	}
	w.head = appendStatusLine(w.head[:0], w.c.head.http10, code)
	w.head = w.appendFields(w.head, true)
	w.head = append(w.head, "\r\n"...)
	w.wbuf = append(w.wbuf, w.head...)
	w.head = w.head[:0]
	_ = w.flushBuffer()
}

// buildHead fixes the head of the final response from the header map as it is now:
// every field but the framing ones, which commit adds.
func (w *response) buildHead() {
	h := w.header
	if cl, ok := h["Content-Length"]; ok && len(cl) == 1 {
		if n, valid := httpsyntax.ParseContentLength(cl[0]); valid {
			w.contentLength = n
		}
	}
	if te, ok := h["Transfer-Encoding"]; ok && len(te) == 1 && strings.EqualFold(te[0], "chunked") {
		w.chunked = true
		w.contentLength = -1
	}
	if httpsyntax.HasToken(h["Connection"], "close") || w.reqClose || w.c.srv.draining.Load() {
		w.closeAfter = true
	}
	for _, v := range h["Trailer"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				w.trailers = append(w.trailers, http.CanonicalHeaderKey(name))
			}
		}
	}
	w.head = appendStatusLine(w.head[:0], w.c.head.http10, w.status)
	w.head = w.appendFields(w.head, false)
	if _, ok := h["Date"]; !ok {
		w.head = append(w.head, w.c.srv.dateLine()...)
	}
}

// appendFields appends the header fields in sorted order, leaving out those the
// framing decides (and, for informational responses, nothing else). Invalid names
// are dropped and line breaks in values become spaces, so that a handler cannot
// split the response.
func (w *response) appendFields(b []byte, informational bool) []byte {
	w.keys = w.keys[:0]
	for k := range w.header {
		if !informational {
			switch k {
			case "Content-Length", "Transfer-Encoding", "Connection":
				continue
			}
		}
		if strings.HasPrefix(k, http.TrailerPrefix) || !httpsyntax.IsToken(k) {
			continue
		}
		w.keys = append(w.keys, k)
	}
	slices.Sort(w.keys)
	for _, k := range w.keys {
		for _, v := range w.header[k] {
			b = appendField(b, k, v)
		}
	}
	return b
}

func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	start := len(b)
	b = append(b, v...)
	for i := start; i < len(b); i++ {
		if b[i] == '\r' || b[i] == '\n' {
			b[i] = ' '
		}
	}
	return append(b, "\r\n"...)
}

// commit decides the framing and puts the head into wbuf, ahead of any body held
// back. first is the first body bytes, for sniffing a missing Content-Type; atEnd is
// set when the handler has finished, so that a held-back body gets a Content-Length.
func (w *response) commit(first []byte, atEnd bool) {
	if w.canContinue.Load() {
		w.continueMu.Lock()
		w.canContinue.Store(false)
		w.continueMu.Unlock()
	}
	w.committed = true
	held := w.wbuf
	b := w.head
	_, hasType := w.header["Content-Type"]
	if !hasType && !w.noBody && len(first) > 0 && !w.chunked {
		b = appendField(b, "Content-Type", http.DetectContentType(first))
	}
	b = w.appendFraming(b, atEnd)
	if w.closeAfter {
		// HTTP/1.0 connections close unless kept alive, so saying so is for 1.1.
		if !w.c.head.http10 {
			b = append(b, "Connection: close\r\n"...)
		}
	} else if conn, ok := w.header["Connection"]; ok {
		for _, v := range conn {
			b = appendField(b, "Connection", v)
		}
	} else if w.c.head.http10 {
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, "\r\n"...)
	if len(held) > 0 && !w.isHead {
		if w.chunked {
			b = appendChunk(b, held)
		} else {
			b = append(b, held...)
		}
	}
	// The head buffer becomes the output buffer and the other way round, so that
	// neither is allocated again.
	w.wbuf, w.head = b, held[:0]
}

// appendFraming adds Content-Length or Transfer-Encoding, or decides that the
// connection's close ends the body.
func (w *response) appendFraming(b []byte, atEnd bool) []byte {
	switch {
	case w.noBody:
		if w.status == http.StatusNotModified && w.contentLength >= 0 {
			b = append(b, "Content-Length: "...)
			b = strconv.AppendInt(b, w.contentLength, 10)
			b = append(b, "\r\n"...)
		}
		return b
	case w.chunked && !w.isHead:
		if w.c.head.http10 {
			w.chunked, w.closeAfter = false, true
			return b
		}
		return append(b, "Transfer-Encoding: chunked\r\n"...)
	case w.contentLength < 0 && atEnd && len(w.trailers) == 0 && (!w.isHead || w.written > 0):
		w.contentLength = w.written
	}
	switch {
	case w.contentLength >= 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, w.contentLength, 10)
		return append(b, "\r\n"...)
	case w.isHead:
		return b
	case w.c.head.http10:
		w.closeAfter = true
		return b
	}
	w.chunked = true
	return append(b, "Transfer-Encoding: chunked\r\n"...)
}

func appendChunk(b, p []byte) []byte {
	b = strconv.AppendUint(b, uint64(len(p)), 16)
	b = append(b, "\r\n"...)
	b = append(b, p...)
	return append(b, "\r\n"...)
}

// Write sends body bytes, holding back up to deferLimit while the framing is open.
func (w *response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, errHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	if w.writeErr != nil {
		return 0, w.writeErr
	}
	if w.contentLength >= 0 && w.written+int64(len(p)) > w.contentLength {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.isHead && w.committed {
		// HEAD responses carry no body; written still counts it.
		return len(p), nil
	}
	if !w.committed {
		if w.contentLength < 0 && !w.chunked && len(w.wbuf)+len(p) <= deferLimit {
			w.wbuf = append(w.wbuf, p...)
			return len(p), nil
		}
		first := p
		if len(w.wbuf) > 0 {
			first = w.wbuf
		}
		w.commit(first, false)
		if w.isHead {
			return len(p), nil
		}
	}
	return w.writeBody(p)
}

// writeBody appends framed body bytes to wbuf, sending when it would overflow.
func (w *response) writeBody(p []byte) (int, error) {
	if len(p) == 0 {
		// An empty chunk would end a chunked body.
		return 0, nil
	}
	frame := 0
	if w.chunked {
		frame = 20
	}
	if len(w.wbuf)+len(p)+frame <= cap(w.wbuf) {
		if w.chunked {
			w.wbuf = appendChunk(w.wbuf, p)
		} else {
			w.wbuf = append(w.wbuf, p...)
		}
		return len(p), nil
	}
	if w.chunked {
		w.wbuf = strconv.AppendUint(w.wbuf, uint64(len(p)), 16)
		w.wbuf = append(w.wbuf, "\r\n"...)
	}
	w.bufs = append(w.vec[:0], w.wbuf, p)
	if w.chunked {
		w.bufs = append(w.bufs, crlf)
	}
	_, err := writeBuffers(w.c.rwc, &w.bufs)
	// The handler's bytes are not kept past the write.
	clear(w.vec[:])
	w.bufs = nil
	w.wbuf = w.wbuf[:0]
	if err != nil {
		w.fail(err)
		return 0, err
	}
	return len(p), nil
}

var crlf = []byte("\r\n")

// buffersWriter is a connection that writes several buffers in one call, as the
// server's tracked connections do (see the server package).
type buffersWriter interface {
	WriteBuffers(bufs *net.Buffers) (int64, error)
}

// writeBuffers writes a response's head and body with one gathered write where the
// connection offers one, instead of a write for each.
func writeBuffers(c net.Conn, bufs *net.Buffers) (int64, error) {
	if bw, ok := c.(buffersWriter); ok {
		return bw.WriteBuffers(bufs)
	}
	return bufs.WriteTo(c)
}

// fail records a write error: the connection is done, and the request's context is
// canceled so that the handler stops producing.
func (w *response) fail(err error) {
	w.writeErr = err
	w.c.broken = true
	if ctx := w.c.watch.ctx; ctx != nil {
		ctx.Cancel()
	}
}

// flushBuffer sends wbuf.
func (w *response) flushBuffer() error {
	if len(w.wbuf) == 0 || w.writeErr != nil {
		return w.writeErr
	}
	_, err := w.c.rwc.Write(w.wbuf)
	w.wbuf = w.wbuf[:0]
	if err != nil {
		w.fail(err)
	}
	return err
}

// FlushError sends the head and whatever body is buffered; see
// http.ResponseController.
func (w *response) FlushError() error {
	if w.hijacked {
		return errHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(w.wbuf, false)
	}
	return w.flushBuffer()
}

// Flush is http.Flusher.
func (w *response) Flush() { _ = w.FlushError() }

// finish completes the response after the handler returned and reports whether
// the connection can carry another request.
func (w *response) finish() bool {
	if w.aborted {
		return false
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(w.wbuf, true)
	}
	if w.chunked {
		w.wbuf = append(w.wbuf, "0\r\n"...)
		w.wbuf = w.appendTrailers(w.wbuf)
		w.wbuf = append(w.wbuf, "\r\n"...)
	}
	if w.contentLength >= 0 && w.written < w.contentLength && !w.isHead && !w.noBody {
		// The client is waiting for bytes that will never come.
		w.closeAfter = true
	}
	if w.flushBuffer() != nil {
		return false
	}
	if b := w.reqBody; b != nil && !b.finish() {
		w.closeEarly = true
		return false
	}
	return !w.closeAfter && !w.c.broken
}

// appendTrailers appends the trailer fields: those declared in the Trailer header
// with their values as the handler left them, and those set with
// http.TrailerPrefix.
func (w *response) appendTrailers(b []byte) []byte {
	for _, k := range w.trailers {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		for _, v := range w.header[k] {
			b = appendField(b, k, v)
		}
	}
	for k, vv := range w.header {
		name, ok := strings.CutPrefix(k, http.TrailerPrefix)
		if !ok || !httpsyntax.IsToken(name) {
			continue
		}
		for _, v := range vv {
			b = appendField(b, http.CanonicalHeaderKey(name), v)
		}
	}
	return b
}

// writeContinue answers "100 Continue" before the first read of a body whose
// client waits for it, unless the response has begun.
func (w *response) writeContinue() {
	w.continueMu.Lock()
	defer w.continueMu.Unlock()
	if !w.canContinue.Load() {
		return
	}
	w.canContinue.Store(false)
	line := "HTTP/1.1 100 Continue\r\n\r\n"
	if _, err := w.c.rwc.Write([]byte(line)); err != nil {
		w.c.broken = true
	}
}

// Hijack hands the connection to the handler (http.Hijacker), with a reader that
// returns the bytes already read first.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHeader && w.committed {
		if err := w.flushBuffer(); err != nil {
			return nil, nil, err
		}
	}
	c := w.c
	w.hijacked = true
	got, _ := c.watch.end(c)
	// The watcher's bytes came from the socket after those already buffered.
	pending := append(append([]byte(nil), c.rbuf[c.r:c.w]...), got...)
	c.r, c.w = 0, 0
	c.state.Store(stateGone)
	c.srv.forget(c)
	_ = c.rwc.SetDeadline(time.Time{})
	rc := &replayConn{Conn: c.rwc, pending: pending}
	rw := bufio.NewReadWriter(bufio.NewReaderSize(rc, initialBuffer), bufio.NewWriterSize(c.rwc, initialBuffer))
	return c.rwc, rw, nil
}

// SetReadDeadline and SetWriteDeadline are for http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.readDeadline = t
	return w.c.rwc.SetReadDeadline(t)
}

// SetWriteDeadline sets the connection's write deadline.
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// EnableFullDuplex is for http.ResponseController: HTTP/1.1 bodies can be read after
// the response began here without anything to switch on.
func (w *response) EnableFullDuplex() error { return nil }

// appendStatusLine appends "HTTP/1.x code reason".
func appendStatusLine(b []byte, http10 bool, code int) []byte {
	if http10 {
		b = append(b, "HTTP/1.0 "...)
	} else {
		b = append(b, "HTTP/1.1 "...)
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	b = append(b, text...)
	return append(b, "\r\n"...)
}
