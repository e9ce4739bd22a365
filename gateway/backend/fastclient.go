package backend

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// HTTP1ModeEnv names the environment variable that chooses the HTTP/1.1 client when
// Options.HTTP1 leaves it open: "fast" or "std".
const HTTP1ModeEnv = "SWITCHYARD_HTTP1"

// fastBodyLimit is the largest request body the fast client sends itself. It writes
// a request whole before reading the answer, so a body must fit the socket's buffers
// for a backend that answers before reading it all; larger bodies, and bodies of
// unknown length, go through http.Transport, which writes and reads at once.
const fastBodyLimit = 64 << 10

// useFastHTTP1 reports whether Options.HTTP1 (or the environment) asks for the fast
// client.
func useFastHTTP1(mode string) bool {
	if mode == "" {
		mode = os.Getenv(HTTP1ModeEnv)
	}
	return mode != "std"
}

// fastTransport is an HTTP/1.1 client for cleartext backends built for the proxy's
// data path. Unlike http.Transport it has no goroutines per connection: a request is
// written, and its response read, on the caller's goroutine, and the connection goes
// back to its endpoint's idle pool when the response body is read to its end.
// Requests it does not handle itself (upgrades, CONNECT, Expect, bodies of unknown or
// large length, other schemes) go to std, as does everything when connections per
// endpoint are capped.
type fastTransport struct {
	std    *http.Transport
	dialer *net.Dialer
	opts   Options

	mu sync.Mutex
	// hosts holds the idle connections of each backend address. Each address has
	// a list of its own behind a pointer, so that taking and returning a connection
	// look the address up once; the map is written only when an address gets its
	// first idle connection, or the sweep drops an address that has none.
	hosts map[string]*idleConns
	idle  int
	// sweeping is set while the janitor runs; it runs while connections are idle.
	sweeping bool
}

func newFastTransport(o Options, std *http.Transport) *fastTransport {
	return &fastTransport{
		std:    std,
		dialer: &net.Dialer{Timeout: o.DialTimeout, KeepAlive: o.KeepAlive},
		opts:   o,
		hosts:  map[string]*idleConns{},
	}
}

// RoundTrip sends req and returns the response whose body streams from the
// connection. Errors keep the kinds the proxy tells apart: a *net.OpError with Op
// "dial" for a connect failure, net.Error timeouts, and the context's error when it
// ended the request.
func (t *fastTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.handles(req) {
		return t.std.RoundTrip(req)
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		// Reads only watch the context once they wait, so an ended one is caught here.
		closeBody(req)
		return nil, err
	}
	for {
		cc, err := t.getConn(ctx, req.URL.Host, req.Body != nil && req.Body != http.NoBody)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		res, err := cc.roundTrip(ctx, req, t.opts.ResponseHeaderTimeout)
		if err == nil {
			return res, nil
		}
		if cc.reused && cc.nothingRead && replayable(req) && ctx.Err() == nil {
			// The backend closed an idle connection just as it was taken; the request
			// never reached it.
			continue
		}
		closeBody(req)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
}

// handles reports whether the fast client sends req itself.
func (t *fastTransport) handles(req *http.Request) bool {
	if req.URL.Scheme != "http" || req.URL.Opaque != "" || t.opts.MaxConnsPerHost > 0 || req.Method == http.MethodConnect {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && (req.ContentLength <= 0 || req.ContentLength > fastBodyLimit) {
		return false
	}
	h := req.Header
	if len(h["Upgrade"]) > 0 || len(h["Expect"]) > 0 || len(req.TransferEncoding) > 0 || len(req.Trailer) > 0 {
		return false
	}
	return true
}

// replayable reports whether req can be sent again after a stale connection failed
// it: its body, if any, can be had again, and it is safe to repeat (RFC 9110 section
// 9.2.2), as http.Transport decides.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
	default:
		if _, ok := req.Header["Idempotency-Key"]; !ok {
			if _, ok := req.Header["X-Idempotency-Key"]; !ok {
				return false
			}
		}
	}
	if req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			return false
		}
		req.Body = body
	}
	return true
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// idleConns are the idle connections to one address, the most recently used last.
type idleConns struct {
	conns []*clientConn
}

// getConn returns an idle connection to addr, or dials one. A request with a body
// that could not be sent again checks an idle connection for a close by the backend
// first, since it could not be retried on another.
func (t *fastTransport) getConn(ctx context.Context, addr string, probe bool) (*clientConn, error) {
	now := time.Now()
	for {
		cc := t.takeIdle(addr, now)
		if cc == nil {
			break
		}
		if probe && !peerOpen(cc.conn) {
			_ = cc.conn.Close()
			continue
		}
		cc.reused = true
		return cc, nil
	}
	conn, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return newClientConn(t, addr, conn), nil
}

// takeIdle pops the most recently used idle connection to addr. Connections below an
// expired one are older still, so they are closed with it.
func (t *fastTransport) takeIdle(addr string, now time.Time) *clientConn {
	t.mu.Lock()
	list := t.hosts[addr]
	if list == nil || len(list.conns) == 0 {
		t.mu.Unlock()
		return nil
	}
	idle := list.conns
	n := len(idle)
	cc := idle[n-1]
	if now.Sub(cc.idleSince) < t.opts.IdleConnTimeout {
		idle[n-1] = nil
		list.conns = idle[:n-1]
		t.idle--
		t.mu.Unlock()
		return cc
	}
	expired := append([]*clientConn(nil), idle...)
	clear(idle)
	list.conns = idle[:0]
	t.idle -= n
	t.mu.Unlock()
	for _, e := range expired {
		_ = e.conn.Close()
	}
	return nil
}

// putIdle returns a connection whose response was read whole to the idle pool, or
// closes it when the pool is full.
func (t *fastTransport) putIdle(cc *clientConn) {
	cc.idleSince = time.Now()
	t.mu.Lock()
	list, held := t.hosts[cc.addr], 0
	if list != nil {
		held = len(list.conns)
	}
	if held >= t.opts.MaxIdleConnsPerHost || t.idle >= t.opts.MaxIdleConns {
		t.mu.Unlock()
		_ = cc.conn.Close()
		return
	}
	if list == nil {
		list = &idleConns{}
		t.hosts[cc.addr] = list
	}
	list.conns = append(list.conns, cc)
	t.idle++
	if !t.sweeping {
		t.sweeping = true
		go t.sweep()
	}
	t.mu.Unlock()
}

// sweep closes connections idle for longer than IdleConnTimeout, checking every half
// of it, while any connection is idle; an idle connection so lives up to one and a
// half times the timeout.
func (t *fastTransport) sweep() {
	ticker := time.NewTicker(t.opts.IdleConnTimeout / 2)
	defer ticker.Stop()
	for now := range ticker.C {
		var expired []*clientConn
		t.mu.Lock()
		for addr, list := range t.hosts {
			idle := list.conns
			keep := idle[:0]
			for _, cc := range idle {
				if now.Sub(cc.idleSince) >= t.opts.IdleConnTimeout {
					expired = append(expired, cc)
				} else {
					keep = append(keep, cc)
				}
			}
			clear(idle[len(keep):])
			// An address without idle connections leaves the map, so that it
			// does not grow with every endpoint ever used.
			if len(keep) == 0 {
				delete(t.hosts, addr)
			} else {
				list.conns = keep
			}
		}
		t.idle -= len(expired)
		done := t.idle == 0
		if done {
			t.sweeping = false
		}
		t.mu.Unlock()
		for _, cc := range expired {
			_ = cc.conn.Close()
		}
		if done {
			return
		}
	}
}

// CloseIdleConnections closes the idle connections of both clients.
func (t *fastTransport) CloseIdleConnections() {
	t.mu.Lock()
	var all []*clientConn
	for _, list := range t.hosts {
		all = append(all, list.conns...)
	}
	clear(t.hosts)
	t.idle = 0
	t.mu.Unlock()
	for _, cc := range all {
		_ = cc.conn.Close()
	}
	t.std.CloseIdleConnections()
}

// errStaleBody is returned for a request whose body yields fewer bytes than its
// ContentLength.
var errShortBody = errors.New("request body shorter than its Content-Length")

// copyBody reads exactly n bytes of the request body into b.
func copyBody(b []byte, body io.Reader, n int64) ([]byte, error) {
	start := len(b)
	b = growLen(b, int(n))
	if _, err := io.ReadFull(body, b[start:]); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return b[:start], errShortBody
		}
		return b[:start], err
	}
	return b, nil
}

// growLen extends b by n bytes, reallocating when its capacity is short.
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		grown := make([]byte, len(b), len(b)+n)
		copy(grown, b)
		b = grown
	}
	return b[:len(b)+n]
}
