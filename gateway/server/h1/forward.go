package h1

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/internal/reqcontext"
	"github.com/switchyard-dev/switchyard/internal/peeraddr"
)

// Forwarder answers requests from their wire form, without the http.Request, header
// map and ResponseWriter a handler needs: a proxy can send the head it received on
// with a few edits and relay the answer as it comes. The server offers it each
// HTTP/1.1 request that expects nothing (no Expect) and has either no body or one
// framed by Content-Length that arrived whole with its head, so that it is in the
// connection's buffer (Exchange.Body); what it declines goes to the Handler as
// usual, body and all.
type Forwarder interface {
	// Forward answers x and returns true, or returns false having written nothing,
	// to leave the request to the Handler. x is valid only during the call.
	Forward(x *Exchange) bool
}

// Exchange is one request offered to a Forwarder: its head, parsed, and the client
// connection to answer on, either with bytes the forwarder frames itself (Write) or
// through a ResponseWriter, as a handler would.
type Exchange struct {
	c *conn
	// Request holds the request's method, URL, host and peer as a handler would
	// get them, but has no context, and its body is not to be read (see Body); it
	// is for looking at, not keeping.
	// Its Header is nil until Header or ResponseWriter is called.
	Request *http.Request
	ctx     *reqcontext.Context
	// body is the request's body, in the connection's buffer (see Body).
	body []byte
	// arrived is when the exchange was offered (see Arrived).
	arrived time.Time
	// w is the ResponseWriter, once asked for.
	w *response
	// closeAfter is set by CloseAfter; wrote once anything was written.
	closeAfter bool
	wrote      bool
}

// Context is the request's context: it ends when the client goes away while the
// request is served, or once the request has been answered.
func (x *Exchange) Context() context.Context { return x.ctx }

// Header returns the request's header map, as a handler would get it, and sets it
// on Request. It is built on the first call: a request forwarded from its wire form
// reads its fields with Field instead.
func (x *Exchange) Header() http.Header { return x.c.loadHeader() }

// Method returns the request's method.
func (x *Exchange) Method() string { return x.c.head.method }

// Target returns the request target as received.
func (x *Exchange) Target() string { return x.c.head.target }

// Host returns the Host header's value.
func (x *Exchange) Host() string { return x.c.head.host }

// Arrived returns when the server offered the request to the forwarder, its head
// read and parsed: a reading of the clock the forwarder may time the request
// from rather than read the clock again.
func (x *Exchange) Arrived() time.Time { return x.arrived }

// RemoteAddr returns the client's address, as Request.RemoteAddr.
func (x *Exchange) RemoteAddr() string { return x.c.remote }

// RemoteHost returns the client's address without its port (RemoteAddr itself when
// it has none), as X-Forwarded-For gives it: the same for every request of the
// connection, so worked out once.
func (x *Exchange) RemoteHost() string { return x.c.remoteHost }

// RemoteIP returns the client's IP address in canonical form (without a zone, an
// IPv4-mapped address unmapped), or the host of RemoteAddr when that is not an IP
// address, as peeraddr.Parse reads it: the client address a rate limit keys a
// request without X-Forwarded-For by. It is worked out by the first request of the
// connection that asks, and kept for the others. It may be called only during
// Forward, on the goroutine that called it: the connection keeps the address
// without a lock.
func (x *Exchange) RemoteIP() string {
	c := x.c
	if !c.remoteIPRead {
		_, c.remoteIP, _ = peeraddr.Parse(c.remote)
		c.remoteIPRead = true
	}
	return c.remoteIP
}

// hostOf is the host part of a peer's address, or the address when it has no port.
func hostOf(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// TLS reports whether the client connection is over TLS.
func (x *Exchange) TLS() bool { return x.c.tlsState != nil }

// Closing reports whether the connection closes after this response, because the
// client asked for that or the server drains: the response should then say
// "Connection: close".
func (x *Exchange) Closing() bool { return x.c.head.close || x.c.srv.draining.Load() }

// Fields returns how many header field lines the head has.
func (x *Exchange) Fields() int { return len(x.c.parser.spans) }

// Field returns the name, in canonical form, and the value of the i'th field line,
// in the order received.
func (x *Exchange) Field(i int) (name, value string) {
	s := x.c.parser.spans[i]
	text := x.c.head.text
	return text[s.nameStart:s.nameEnd], text[s.valueStart:s.valueEnd]
}

// Body returns the request's body, empty when it has none. The server offers a
// request with a body only once the body is in the connection's buffer whole, so
// that a forwarder can send it on with the head, and again should a retry need it.
// The bytes are the buffer's: valid only during Forward, and not to be changed. A
// request the forwarder takes has its body counted as read.
func (x *Exchange) Body() []byte { return x.body }

// DateLine returns the "Date: ...\r\n" line the server puts in its own responses.
func (x *Exchange) DateLine() []byte { return x.c.srv.dateLine() }

// Write writes p to the client as it is, unbuffered: the forwarder frames the
// response itself. Interim responses written this way may precede a final one
// sent through the ResponseWriter, but Write must not follow the ResponseWriter's
// use.
func (x *Exchange) Write(p []byte) (int, error) {
	x.wrote = true
	n, err := x.c.rwc.Write(p)
	if err != nil {
		x.closeAfter = true
	}
	return n, err
}

// ResponseWriter returns a writer to answer through as a handler would, for
// responses the forwarder does not frame itself.
func (x *Exchange) ResponseWriter() http.ResponseWriter {
	if x.w == nil {
		x.wrote = true
		x.w = &x.c.resp
		x.c.loadHeader()
		x.w.reset(x.c, x.c.tmpl.WithContext(x.ctx))
	}
	return x.w
}

// CloseAfter makes the server close the connection once Forward returns: the
// response was cut short, or is framed by the connection's end.
func (x *Exchange) CloseAfter() { x.closeAfter = true }

// Abort ends the response where it is, as a handler's panic with
// http.ErrAbortHandler does: the client sees the connection close, not an answer
// that looks whole.
func (x *Exchange) Abort() {
	x.closeAfter = true
	if x.w != nil {
		x.w.aborted = true
	}
}

// forwardable reports whether the parsed request may be offered to a forwarder: it
// is HTTP/1.1 with no expectation, and has no body or one framed by Content-Length
// that is in the buffer whole. A body still on its way goes to the handler, which
// reads it as it comes: waiting for it here would hold the request up in a place
// no timeout of the handler path covers.
func (c *conn) forwardable() bool {
	h := &c.head
	if h.chunked || h.http10 || h.expect100 || h.otherExpect {
		return false
	}
	return h.contentLength <= int64(c.w-c.r)
}

// serveRequest serves the request of the template: by the forwarder, when it takes
// it, else by the handler. It reports whether the connection carries on.
func (c *conn) serveRequest() bool {
	if c.srv.forwarder == nil || !c.forwardable() {
		return c.run()
	}
	if c.head.contentLength > 0 {
		// The body is buffered whole, so the socket holds nothing more of this
		// request: the watcher may read it for a client going away.
		c.watch.bodyDone.Store(true)
	}
	ctx := &c.next.ctx
	ctx.Init(c.baseCtx)
	x := &c.exchange
	// The body's slice ends at its capacity, so that an append to it cannot write
	// over a pipelined request that follows it in the buffer.
	end := c.r + int(c.head.contentLength)
	*x = Exchange{c: c, Request: &c.tmpl, ctx: ctx, body: c.rbuf[c.r:end:end]}
	// One reading of the clock serves the write deadline, the watcher and the
	// forwarder, which times the request from it (see Exchange.Arrived).
	x.arrived = time.Now()
	if c.srv.writeTimeout > 0 {
		_ = c.rwc.SetWriteDeadline(x.arrived.Add(c.srv.writeTimeout))
	}
	c.watch.begin(x.arrived, ctx)
	handled := c.forward(x)
	if handled || x.wrote {
		c.bodyTaken()
	}
	if !handled && !x.wrote {
		got, gone := c.watch.end(c)
		if len(got) > 0 {
			c.appendRead(got)
		}
		if gone {
			ctx.Cancel()
		}
		// end forgot that the body is read, or whole in the buffer (see
		// forwardable): the socket holds nothing more of this request, and the
		// handler's watch needs to know.
		c.watch.bodyDone.Store(true)
		// The exchange must not keep the request's state alive on an idle
		// connection.
		c.exchange = Exchange{}
		return c.run()
	}
	ctx.Cancel()
	got, gone := c.watch.end(c)
	w := x.w
	if w != nil && w.hijacked {
		// The connection is the hijacker's now.
		c.tmpl, c.next, c.exchange = http.Request{}, nil, Exchange{}
		return false
	}
	if len(got) > 0 {
		c.appendRead(got)
	}
	reusable := !gone && !x.closeAfter
	if w != nil {
		// finish runs even when the connection closes: it sends what is buffered.
		reusable = w.finish() && reusable
	}
	c.tmpl, c.next, c.exchange = http.Request{}, nil, Exchange{}
	if c.srv.writeTimeout > 0 {
		_ = c.rwc.SetWriteDeadline(time.Time{})
	}
	if !reusable || c.head.close || c.srv.draining.Load() {
		if w != nil && w.closeEarly {
			c.closeAfterReply()
		} else {
			c.close()
		}
		return false
	}
	return true
}

// bodyTaken counts the body of a request the forwarder took as read: it was in the
// buffer whole (see forwardable) and went on from there. What a forwarder read of it
// through Request.Body is already counted.
func (c *conn) bodyTaken() {
	b, ok := c.tmpl.Body.(*body)
	if !ok {
		return
	}
	b.mu.Lock()
	if !b.chunked && !b.done && b.err == nil {
		c.r += int(b.remaining)
		b.remaining, b.done = 0, true
	}
	b.mu.Unlock()
}

// forward offers x to the forwarder, recovering from its panics as serveHandler
// does from a handler's: the response is abandoned and the connection closed.
func (c *conn) forward(x *Exchange) (handled bool) {
	defer func() {
		if v := recover(); v != nil {
			handled = true
			x.Abort()
			if v != http.ErrAbortHandler && c.srv.logger != nil {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.logger.Error("panic forwarding request", "remote", c.remote, "panic", fmt.Sprint(v), "stack", string(buf))
			}
		}
	}()
	return c.srv.forwarder.Forward(x)
}
