package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
)

// connGuard is the malformed-request state of one HTTP/1.x connection. The framing
// tracker runs below net/http's parser, on the raw (or decrypted) bytes, because
// net/http drops Content-Length when Transfer-Encoding is present before any handler
// could see both. The handler side counts requests and refuses the first flagged one.
type connGuard struct {
	// tracker is only touched by Read, which net/http never calls concurrently.
	tracker *framingTracker
	// stopped is set when the connection is hijacked: from then on it does not carry
	// HTTP/1.1 requests, and no handler will run for it again.
	stopped atomic.Bool
	// badIndex is the index of the first malformed request, or -1. It is published
	// after reason is written, so a reader that sees it also sees the reason.
	badIndex atomic.Int64
	reason   string
	// served counts requests handed to the handler on this connection.
	served atomic.Int64
}

func newConnGuard(maxHeaderBytes int) *connGuard {
	g := &connGuard{tracker: newFramingTracker(maxHeaderBytes)}
	g.badIndex.Store(-1)
	return g
}

// observe feeds bytes read from the connection to the tracker.
func (g *connGuard) observe(p []byte) {
	if g.stopped.Load() {
		g.tracker.stop()
		return
	}
	if g.tracker.state == stateStopped {
		return
	}
	g.tracker.feed(p)
	if g.tracker.badIndex >= 0 {
		g.reason = g.tracker.reason
		g.badIndex.Store(int64(g.tracker.badIndex))
	}
}

// admit counts one request and reports whether it may be served; when not, it also
// returns why.
func (g *connGuard) admit() (bool, string) {
	index := g.served.Add(1) - 1
	bad := g.badIndex.Load()
	if bad >= 0 && index >= bad {
		return false, g.reason
	}
	return true, ""
}

// guardConn observes every byte read from an HTTP/1.x connection.
type guardConn struct {
	net.Conn
	guard *connGuard
}

// Read reads from the connection and scans what it read.
func (c *guardConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.guard.observe(p[:n])
	}
	return n, err
}

// guardTLSConn is a guardConn over a TLS connection. net/http fills Request.TLS from
// ConnectionState for connections that are not *tls.Conn, so requests still see the
// negotiated TLS parameters.
type guardTLSConn struct {
	guardConn
	tls *tls.Conn
}

// ConnectionState returns the state of the underlying TLS connection.
func (c *guardTLSConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// newGuardConn wraps c; TLS connections keep exposing their ConnectionState.
func newGuardConn(c net.Conn, maxHeaderBytes int) net.Conn {
	guard := newConnGuard(maxHeaderBytes)
	if tc, ok := c.(*tls.Conn); ok {
		return &guardTLSConn{guardConn: guardConn{Conn: c, guard: guard}, tls: tc}
	}
	return &guardConn{Conn: c, guard: guard}
}

// guardOf returns the guard of a connection returned by newGuardConn, or nil.
func guardOf(c net.Conn) *connGuard {
	switch gc := c.(type) {
	case *guardConn:
		return gc.guard
	case *guardTLSConn:
		return gc.guard
	}
	return nil
}

type guardKey struct{}

// guardConnContext stores the connection's guard in its base context; it is
// http.Server.ConnContext.
func guardConnContext(ctx context.Context, c net.Conn) context.Context {
	if g := guardOf(c); g != nil {
		return context.WithValue(ctx, guardKey{}, g)
	}
	return ctx
}

// stopGuardOnHijack is http.Server.ConnState: a hijacked connection stops carrying
// HTTP/1.1 requests, so scanning its bytes would be wasted work and could only
// produce meaningless flags.
func stopGuardOnHijack(c net.Conn, state http.ConnState) {
	if state == http.StateHijacked {
		if g := guardOf(c); g != nil {
			g.stopped.Store(true)
		}
	}
}

// guardHandler refuses requests whose framing the connection's tracker flagged, with
// 400 and Connection: close, without calling next. HTTP/2 requests carry no such
// ambiguity and pass straight through.
func guardHandler(next http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 {
			if g, _ := r.Context().Value(guardKey{}).(*connGuard); g != nil {
				if ok, reason := g.admit(); !ok {
					refuseMalformed(w, r, reason, logger)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// refuseMalformed answers a request with ambiguous framing. The connection is closed
// after the answer because the bytes that follow cannot be trusted to start a request.
func refuseMalformed(w http.ResponseWriter, r *http.Request, reason string, logger *slog.Logger) {
	logger.Warn("refused malformed request", "remote", r.RemoteAddr, "reason", reason)
	w.Header().Set("Connection", "close")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte("400 Bad Request: malformed request framing\n"))
}
