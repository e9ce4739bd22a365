package h1

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/internal/reqcontext"
)

// requestState is what a request has of its own besides its head's text, header
// map and the copy of the template the handler gets, in one allocation: its
// context, its URL (in the common case; see requestURL), its body's reader and the
// values of its header when they are few.
type requestState struct {
	ctx    reqcontext.Context
	url    url.URL
	body   body
	values [headerValueRoom]string
}

// headerValueRoom is how many header values a requestState holds: those of most
// requests that are not from browsers.
const headerValueRoom = 12

// newRequest fills the connection's request template from the parsed head and the
// requestState readRequest made for it; run gives the handler a copy with the
// state's context.
func (c *conn) newRequest() *protocolError {
	h := &c.head
	state := c.next
	u, perr := h.requestURL(&state.url)
	if perr != nil {
		return perr
	}
	c.tmpl = http.Request{
		Method:        h.method,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		ContentLength: h.contentLength,
		Close:         h.close,
		Host:          h.host,
		RemoteAddr:    c.remote,
		RequestURI:    h.target,
		TLS:           c.tlsState,
		Body:          http.NoBody,
	}
	req := &c.tmpl
	if h.http10 {
		req.Proto, req.ProtoMinor = "HTTP/1.0", 0
	}
	if u.Host != "" {
		req.Host = u.Host
	}
	if h.chunked {
		req.TransferEncoding = chunkedEncoding
		req.Trailer = h.trailer
	}
	if h.contentLength != 0 {
		b := &state.body
		*b = body{c: c, remaining: h.contentLength, chunked: h.chunked}
		if h.chunked {
			b.remaining = 0
		}
		b.onEOF = c.bodyRead
		req.Body = b
	} else {
		c.watch.bodyDone.Store(true)
	}
	return nil
}

// loadHeader gives the request template its header map, built on first use: a
// request forwarded from its wire form is served without one.
func (c *conn) loadHeader() http.Header {
	if c.tmpl.Header == nil {
		c.tmpl.Header = c.head.buildHeader(c.next.values[:])
	}
	return c.tmpl.Header
}

// chunkedEncoding is Request.TransferEncoding of chunked requests; handlers must not
// change it.
var chunkedEncoding = []string{"chunked"}

// bodyRead lets the watcher start once the whole request body is read.
func (c *conn) bodyRead() { c.watch.bodyDone.Store(true) }

// run serves the request of the template and reports whether the connection
// carries on.
func (c *conn) run() bool {
	h := &c.head
	ctx := &c.next.ctx
	ctx.Init(c.baseCtx)
	c.loadHeader()
	req := c.tmpl.WithContext(ctx)
	c.tmpl, c.next = http.Request{}, nil
	w := &c.resp
	w.reset(c, req)
	if h.otherExpect {
		w.closeAfter = true
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusExpectationFailed)
		w.finish()
		ctx.Cancel()
		c.closeAfterReply()
		return false
	}
	if b, ok := req.Body.(*body); ok {
		b.trailer = &req.Trailer
		if h.expect100 && !h.http10 {
			b.continueFor = w
			w.canContinue.Store(true)
		}
		if !h.chunked && int64(c.w-c.r) >= h.contentLength {
			// The whole body is buffered: no socket read will need the deadline
			// cleared.
		} else {
			c.setReadDeadline(time.Time{})
		}
	}
	if c.srv.writeTimeout > 0 {
		_ = c.rwc.SetWriteDeadline(time.Now().Add(c.srv.writeTimeout))
	}
	c.watch.begin(time.Now(), ctx)
	c.serveHandler(w, req)
	ctx.Cancel()
	got, gone := c.watch.end(c)
	if w.hijacked {
		return false
	}
	if len(got) > 0 {
		// The watcher read the next byte from the socket: it follows whatever the
		// buffer already holds of a pipelined request.
		c.appendRead(got)
	}
	reusable := w.finish() && !gone
	if c.srv.writeTimeout > 0 {
		_ = c.rwc.SetWriteDeadline(time.Time{})
	}
	if !reusable {
		if w.closeEarly {
			c.closeAfterReply()
		} else {
			c.close()
		}
		return false
	}
	return true
}

// appendRead adds bytes read from the socket outside the buffer (by the client
// watcher) after the bytes the buffer holds, since they arrived after them.
func (c *conn) appendRead(p []byte) {
	if len(c.rbuf)-c.w >= len(p) {
		c.w += copy(c.rbuf[c.w:], p)
		return
	}
	rest := append(append([]byte(nil), c.rbuf[c.r:c.w]...), p...)
	if len(rest) > len(c.rbuf) {
		c.rbuf = make([]byte, len(rest))
	}
	c.r, c.w = 0, copy(c.rbuf, rest)
}

// serveHandler runs the handler, recovering from its panics as net/http does: the
// response is abandoned and the connection closed; http.ErrAbortHandler is not
// logged.
func (c *conn) serveHandler(w *response, req *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			w.aborted = true
			if v != http.ErrAbortHandler && c.srv.logger != nil {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.logger.Error("panic serving request", "remote", c.remote, "panic", fmt.Sprint(v), "stack", string(buf))
			}
		}
	}()
	c.srv.handler.ServeHTTP(w, req)
}

// errHijacked is returned by writes after a hijack.
var errHijacked = errors.New("h1: connection has been hijacked")
