// Package h1 is an HTTP/1.1 server built for a proxy's data path. It serves
// http.Handlers like net/http, but a connection costs one goroutine and a request
// little more than its head's text: heads are parsed straight from the connection's
// buffer, the response head and a small body leave in one write, and the client is
// watched for going away only while a handler runs long.
//
// It parses requests strictly (RFC 9112): whatever two parsers could frame
// differently (Content-Length with Transfer-Encoding, conflicting lengths, line
// folding, transfer codings other than chunked) is refused with the connection
// closed, by the same rules as the framing guard of package server. What it does not
// speak, HTTP/2 with prior knowledge, it hands to a fallback server with the bytes
// already read.
//
// A proxy can also take requests before any http.Request is built for them (see
// Forwarder): it gets the parsed head and the connection, and relays the answer as it
// comes.
package h1

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/internal/rawio"
)

// Config sets up a Server.
type Config struct {
	// Handler serves every request. Required.
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request head; zero means none.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections that carry no request; zero means
	// none.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing a response, from the end of its request's head;
	// zero means none.
	WriteTimeout time.Duration
	// MaxHeaderBytes bounds the request line and header fields; like net/http, 4 KiB
	// more are tolerated before answering 431. Zero means 1 MiB.
	MaxHeaderBytes int
	// Handoff, when set, takes connections that open with the HTTP/2 preface (h2c
	// with prior knowledge). The connection it gets returns the bytes already read
	// first. Without it such connections are refused.
	Handoff func(net.Conn)
	// Logger receives handler panics and refused requests (at debug level); nil logs
	// nothing.
	Logger *slog.Logger
	// WatchAfter is how long a handler runs before the server starts watching its
	// client for going away. Zero means 100ms.
	WatchAfter time.Duration
	// Forwarder, when set, is offered each request without a body before a handler
	// is: it may answer the request from its head alone (see Forwarder).
	Forwarder Forwarder
	// HTTPServer is given to handlers under http.ServerContextKey, as net/http
	// gives its own. Handlers such as httputil.ReverseProxy look for it to know that
	// a panic with http.ErrAbortHandler is recovered and aborts the response, which
	// is how they cut off a client whose backend's answer broke off midway.
	HTTPServer *http.Server
}

// Server serves HTTP/1.x connections given to ServeConn.
type Server struct {
	handler           http.Handler
	readHeaderTimeout time.Duration
	idleTimeout       time.Duration
	writeTimeout      time.Duration
	deadlineSlack     time.Duration
	maxHead           int
	handoff           func(net.Conn)
	forwarder         Forwarder
	httpServer        *http.Server
	logger            *slog.Logger
	watchAfter        time.Duration

	draining atomic.Bool
	date     atomic.Pointer[dateLine]

	mu    sync.Mutex
	conns map[*conn]struct{}
	// sweeping is set while the sweeper goroutine runs; it runs while connections do.
	sweeping bool
	closed   chan struct{}
}

// New returns a Server.
func New(cfg Config) *Server {
	s := &Server{
		handler:           cfg.Handler,
		readHeaderTimeout: cfg.ReadHeaderTimeout,
		idleTimeout:       cfg.IdleTimeout,
		writeTimeout:      cfg.WriteTimeout,
		maxHead:           cfg.MaxHeaderBytes,
		handoff:           cfg.Handoff,
		forwarder:         cfg.Forwarder,
		httpServer:        cfg.HTTPServer,
		logger:            cfg.Logger,
		watchAfter:        cfg.WatchAfter,
		conns:             map[*conn]struct{}{},
		closed:            make(chan struct{}),
	}
	if s.maxHead <= 0 {
		s.maxHead = 1 << 20
	}
	// net/http tolerates this much past MaxHeaderBytes (its read buffer's size).
	s.maxHead += initialBuffer
	if s.watchAfter <= 0 {
		s.watchAfter = 100 * time.Millisecond
	}
	s.deadlineSlack = time.Second
	for _, d := range []time.Duration{s.idleTimeout, s.readHeaderTimeout} {
		if d > 0 {
			s.deadlineSlack = min(s.deadlineSlack, d/16)
		}
	}
	return s
}

// ServeConn serves c until it closes, is hijacked or handed off. It returns at once
// when the server is draining.
func (s *Server) ServeConn(rwc net.Conn) {
	c := &conn{srv: s, rwc: rwc, rbuf: getBuffer(), remote: rwc.RemoteAddr().String(), yieldFirst: rawio.YieldPays()}
	c.remoteHost = hostOf(c.remote)
	if r, ok := rwc.(idleReader); ok && r.CanWaitIdle() {
		c.idle, c.releaseIdleFn = r, c.releaseIdle
	}
	c.baseCtx = context.WithValue(context.Background(), http.LocalAddrContextKey, rwc.LocalAddr())
	if s.httpServer != nil {
		c.baseCtx = context.WithValue(c.baseCtx, http.ServerContextKey, s.httpServer)
	}
	if tc, ok := rwc.(interface{ ConnectionState() tls.ConnectionState }); ok {
		state := tc.ConnectionState()
		c.tlsState = &state
	}
	if !s.track(c) {
		_ = rwc.Close()
		return
	}
	c.serve()
}

// track registers a connection, and starts the sweeper if it is not running.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	if !s.sweeping {
		s.sweeping = true
		go s.sweep()
	}
	return true
}

// forget unregisters a connection that closed or left the server.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// sweep starts the client watcher of handlers that run long, every WatchAfter,
// while there are connections.
func (s *Server) sweep() {
	ticker := time.NewTicker(s.watchAfter)
	defer ticker.Stop()
	for {
		select {
		case <-s.closed:
			return
		case now := <-ticker.C:
			s.mu.Lock()
			if len(s.conns) == 0 {
				s.sweeping = false
				s.mu.Unlock()
				return
			}
			cutoff := now.Add(-s.watchAfter)
			for c := range s.conns {
				c.watch.maybeStart(c, cutoff)
			}
			s.mu.Unlock()
		}
	}
}

// Shutdown stops serving gracefully: idle connections close at once, busy ones after
// their current response, and ServeConn refuses new ones. It returns when no
// connection is left or ctx is done, with ctx's error then. Hijacked connections are
// not waited for.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	for {
		if s.closeIdle() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// closeIdle interrupts the reads of idle connections and returns how many
// connections are left.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.Load() == stateIdle {
			_ = c.rwc.SetReadDeadline(aLongTimeAgo)
		}
	}
	return len(s.conns)
}

// Close closes every connection the server still serves and stops it.
func (s *Server) Close() {
	s.draining.Store(true)
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.rwc.Close()
	}
}

// Draining reports whether Shutdown or Close was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// dateLine is the Date field of responses sent within one second.
type dateLine struct {
	second int64
	line   []byte
}

// dateLine returns "Date: ...\r\n" for now, formatted once a second.
func (s *Server) dateLine() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := s.date.Load(); d != nil && d.second == sec {
		return d.line
	}
	line := append([]byte("Date: "), now.UTC().AppendFormat(nil, http.TimeFormat)...)
	line = append(line, "\r\n"...)
	s.date.Store(&dateLine{second: sec, line: line})
	return line
}
