package server

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/server/h1"
)

// HTTP1Mode chooses what serves HTTP/1.x on a socket.
type HTTP1Mode string

const (
	// HTTP1Fast serves HTTP/1.x with package h1, a server built for the data path,
	// and HTTP/2 (ALPN h2 over TLS, and h2c with prior knowledge, which h1 hands
	// over) with the server HTTP2Mode chooses.
	HTTP1Fast HTTP1Mode = "fast"
	// HTTP1Std serves everything with net/http, HTTP/1.x behind the framing guard.
	HTTP1Std HTTP1Mode = "std"
)

// HTTP1ModeEnv names the environment variable that chooses the HTTP/1.x server when
// Limits.HTTP1 (or a command's flag) leaves it open: "fast" or "std".
const HTTP1ModeEnv = "SWITCHYARD_HTTP1"

// ParseHTTP1Mode reads "fast" or "std"; "" means the environment's choice (see
// HTTP1ModeEnv), else fast.
func ParseHTTP1Mode(v string) (HTTP1Mode, error) {
	if v == "" {
		v = os.Getenv(HTTP1ModeEnv)
	}
	switch HTTP1Mode(v) {
	case "", HTTP1Fast:
		return HTTP1Fast, nil
	case HTTP1Std:
		return HTTP1Std, nil
	}
	return "", errors.New(`HTTP/1 server must be "fast" or "std", not "` + v + `"`)
}

// newFastServer configures package h1 for one socket: requests go to the socket's
// handler with the socket's limits, and h2c connections to its HTTP/2 server
// (package h2, or net/http's with HTTP2Std).
func (m *Manager) newFastServer(s *socket) *h1.Server {
	l := m.limits
	return h1.New(h1.Config{
		Handler:           http1Handler(s),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		WriteTimeout:      l.WriteTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		Handoff: func(c net.Conn) {
			if s.h2 != nil {
				// The connection leaves h1, whose goroutine returns; package h2
				// serves it on its own.
				go s.h2.ServeConn(c)
				return
			}
			// net/http serves it from here; it sees HTTP/2, but should the client
			// speak HTTP/1.x after all, the guard is in place.
			s.handoff.give(newGuardConn(c, l.MaxHeaderBytes))
		},
		Forwarder:  socketForwarder{s},
		Logger:     m.logger.With("listener", s.name),
		HTTPServer: s.srv,
	})
}

// socketForwarder offers requests to the socket's current handler when it is an
// h1.Forwarder too, counting them in flight as serveHTTP does.
type socketForwarder struct{ s *socket }

func (f socketForwarder) Forward(x *h1.Exchange) bool {
	fwd, ok := f.s.spec.Load().Handler.(h1.Forwarder)
	if !ok {
		return false
	}
	s := f.s
	s.inFlight.Add(1)
	s.manager.inFlight.Add(1)
	defer func() {
		s.inFlight.Add(-1)
		s.manager.inFlight.Add(-1)
	}()
	return fwd.Forward(x)
}

// serveFast accepts connections until the socket stops accepting: HTTP/1.x ones go
// to package h1, HTTP/2 over TLS to the socket's HTTP/2 server (package h2, or
// net/http's with HTTP2Std). Accept errors other than closing are
// retried with a growing pause, as net/http does.
func (s *socket) serveFast() {
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		close(s.served)
	}()
	wg.Go(func() {
		err := s.srv.Serve(s.handoff)
		if err != nil && !errors.Is(err, errHandoffClosed) && !s.closing.Load() {
			s.manager.logger.Error("listener stopped serving", "listener", s.name, "error", err)
		}
	})
	var pause time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			s.manager.logger.Error("accept failed; retrying", "listener", s.name, "error", err, "pause", pause)
			time.Sleep(pause)
			continue
		}
		pause = 0
		go s.serveConnFast(c)
	}
}

// serveConnFast serves one accepted connection. The listener wraps HTTP/1.x
// connections in the framing guard, which the fast path does not need: its parser
// applies the same rules itself.
func (s *socket) serveConnFast(c net.Conn) {
	switch gc := c.(type) {
	case *guardConn:
		s.h1.ServeConn(gc.Conn)
	case *guardTLSConn:
		s.h1.ServeConn(gc.tls)
	default:
		s.serveHTTP2(c)
	}
}

var errHandoffClosed = errors.New("listener closed")

// handoffListener is the listener of the net/http server behind a fast socket: it
// gets the connections the socket passes on.
type handoffListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// give passes a connection to net/http, or closes it when the listener is closed.
func (l *handoffListener) give(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.closed:
		_ = c.Close()
	}
}

// Accept returns the next connection passed on.
func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, errHandoffClosed
	}
}

// Close stops Accept.
func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr is the socket's address.
func (l *handoffListener) Addr() net.Addr { return l.addr }
