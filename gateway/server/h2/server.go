// Package h2 is an HTTP/2 server (RFC 9113) built for a proxy's data path. It
// serves http.Handlers like net/http's HTTP/2 server, but it is arranged for
// fewer CPU cycles per request: one goroutine per connection reads and
// dispatches frames; handlers run on a pool of reused worker goroutines, so a
// stream does not pay for growing a fresh stack; and handlers write their frames
// straight into the connection's output buffer under a mutex, where writes from
// several streams are coalesced into one socket write.
//
// It faces the internet, so every per-connection resource is bounded: streams
// (with a bound on handlers that outlive a client's reset, against rapid reset),
// header lists (against CONTINUATION floods), queued control-frame replies
// (against PING and SETTINGS floods), and buffered request bodies (by flow
// control).
//
// Handlers see what net/http's HTTP/2 server gives them, with these
// differences: no Hijack and no server push; a body read deadline set through http.ResponseController can
// be extended after it passed, as on a net.Conn; a handler that writes less
// than its declared Content-Length has its stream reset rather than ended;
// WriteHeader(101) is ignored; and a "Connection: close" response header does
// not shut the connection down.
package h2

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Config sets up a Server.
type Config struct {
	// Handler serves every request. Required.
	Handler http.Handler
	// MaxConcurrentStreams is advertised as SETTINGS_MAX_CONCURRENT_STREAMS;
	// zero means 250.
	MaxConcurrentStreams uint32
	// MaxReceiveBufferPerConnection is the connection receive window we grant;
	// zero means 1 MiB.
	MaxReceiveBufferPerConnection int
	// MaxReceiveBufferPerStream is the per-stream receive window we grant; zero
	// means 1 MiB.
	MaxReceiveBufferPerStream int
	// MaxHeaderBytes bounds a decoded header list and is advertised as
	// SETTINGS_MAX_HEADER_LIST_SIZE; zero means 1 MiB.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds receiving the client preface and first SETTINGS
	// frame; zero means none.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes, with GOAWAY NO_ERROR, a connection that has had no
	// open stream for this long; zero means none.
	IdleTimeout time.Duration
	// WriteByteTimeout closes a connection that accepts no bytes for this long
	// while output waits, and resets (RST_STREAM CANCEL) a stream whose writer
	// has waited this long for flow-control window; zero means none.
	WriteByteTimeout time.Duration
	// Logger receives handler panics (except http.ErrAbortHandler) and protocol
	// errors at debug level; nil means silent.
	Logger *slog.Logger
	// HTTPServer is given to handlers under http.ServerContextKey.
	HTTPServer *http.Server
	// WriteTimeout resets a stream (RST_STREAM INTERNAL_ERROR) whose handler
	// has not finished this long after it started, like net/http's HTTP/2
	// server does with http.Server.WriteTimeout; zero means HTTPServer's
	// WriteTimeout, if any.
	WriteTimeout time.Duration
}

// Server serves HTTP/2 connections handed to it by ServeConn.
type Server struct {
	handler       http.Handler
	maxStreams    uint32
	connWindow    int32
	streamWindow  int32
	maxHeaderList uint32
	readHeaderTO  time.Duration
	idleTO        time.Duration
	writeByteTO   time.Duration
	writeTO       time.Duration
	logger        *slog.Logger
	httpServer    *http.Server

	workers workerPool

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown bool
	// done is closed when Shutdown or Close starts, so that connections
	// blocked waiting for their preface give up at once.
	done chan struct{}
	// connWG counts running ServeConn calls, so that Shutdown can wait.
	connWG sync.WaitGroup
}

const (
	defaultMaxStreams = 250
	defaultWindow     = 1 << 20
	defaultHeaderList = 1 << 20
	// maxWindow is the largest flow-control window RFC 9113 §6.9.1 allows.
	maxWindow = 1<<31 - 1
	// initialWindow is the window both sides start with (RFC 9113 §6.9.2).
	initialWindow = 65535
)

// New returns a Server for cfg. Zero fields take their documented defaults.
func New(cfg Config) *Server {
	if cfg.Handler == nil {
		panic("h2: Config.Handler is nil")
	}
	s := &Server{
		handler:       cfg.Handler,
		maxStreams:    cfg.MaxConcurrentStreams,
		connWindow:    clampWindow(cfg.MaxReceiveBufferPerConnection),
		streamWindow:  clampWindow(cfg.MaxReceiveBufferPerStream),
		maxHeaderList: uint32(cfg.MaxHeaderBytes),
		readHeaderTO:  cfg.ReadHeaderTimeout,
		idleTO:        cfg.IdleTimeout,
		writeByteTO:   cfg.WriteByteTimeout,
		writeTO:       cfg.WriteTimeout,
		logger:        cfg.Logger,
		httpServer:    cfg.HTTPServer,
		conns:         make(map[*conn]struct{}),
		done:          make(chan struct{}),
	}
	if s.writeTO == 0 && cfg.HTTPServer != nil {
		s.writeTO = cfg.HTTPServer.WriteTimeout
	}
	if s.maxStreams == 0 {
		s.maxStreams = defaultMaxStreams
	}
	if cfg.MaxHeaderBytes <= 0 || cfg.MaxHeaderBytes > 1<<30 {
		s.maxHeaderList = defaultHeaderList
	}
	s.workers.init()
	return s
}

// clampWindow turns a configured receive window into one we may advertise:
// zero means the default, and nothing may exceed 2^31-1 or fall below the
// protocol's initial 65535 (a smaller window would need a SETTINGS round trip
// before it applied, which buys nothing here).
func clampWindow(n int) int32 {
	switch {
	case n <= 0:
		return defaultWindow
	case n < initialWindow:
		return initialWindow
	case n > maxWindow:
		return maxWindow
	}
	return int32(n)
}

// ServeConn serves one connection until it ends and closes it. c is either a
// plaintext conn whose first bytes are the client preface (h2c with prior
// knowledge; the preface has not been consumed), or an already-handshaken TLS
// conn that negotiated "h2"; r.TLS is set from a conn that has a
// ConnectionState method.
func (s *Server) ServeConn(c net.Conn) {
	cc := newConn(s, c)
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.conns[cc] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, cc)
		s.mu.Unlock()
		s.connWG.Done()
	}()
	cc.serve()
}

// Shutdown sends GOAWAY (NO_ERROR, last stream id) on every connection, stops
// taking new streams, and waits until their streams finish or ctx ends; in the
// latter case it closes the connections and returns ctx.Err(). Later ServeConn
// calls close their conn at once.
func (s *Server) Shutdown(ctx context.Context) error {
	conns := s.stop()
	for _, c := range conns {
		c.goAway(errCodeNo, true)
	}
	finished := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		s.Close()
		<-finished
		return ctx.Err()
	}
}

// Close closes every connection now and makes later ServeConn calls close at
// once. Handlers still running see their contexts cancelled.
func (s *Server) Close() {
	for _, c := range s.stop() {
		c.closeNow()
	}
	s.connWG.Wait()
}

// stop marks the server shut down and returns its connections.
func (s *Server) stop() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.shutdown {
		s.shutdown = true
		close(s.done)
		s.workers.close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// debug logs a protocol event when a logger is configured.
func (s *Server) debug(msg string, args ...any) {
	if s.logger != nil {
		s.logger.Debug(msg, args...)
	}
}
