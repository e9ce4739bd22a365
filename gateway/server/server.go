// Package server owns the data plane's client-facing sockets: it binds them (with
// SO_REUSEPORT, for hand-over to a replacement process), serves HTTP/1.1 and, over
// TLS, HTTP/2, enforces connection limits, refuses requests with ambiguous framing
// before any handler sees them, and drains connections gracefully when a socket is
// removed or the process stops.
//
// HTTP/1.x is served by package h1 (HTTP1Fast, the default), whose parser applies the
// framing rules itself, or by net/http behind the framing guard (HTTP1Std). HTTP/2
// (ALPN h2 over TLS, and h2c with prior knowledge, which h1 hands over with the bytes
// it read) goes to net/http, or, with h1 and HTTP2Fast, to package h2.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/server/h1"
	"github.com/switchyard-dev/switchyard/gateway/server/h2"
)

// Limits bound what one client can make a socket spend. Start from DefaultLimits.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request head. Default 10s: long enough for a
	// slow mobile client, short enough that trickling headers (slowloris) cannot hold
	// connections for long. Zero means no limit.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections that carry no request. Default 120s:
	// longer than the idle timeout of common load balancers and clients (60s), so the
	// client side normally closes first and never races a request against our close.
	// Zero means no limit.
	IdleTimeout time.Duration
	// WriteTimeout is net/http's deadline for writing a whole response, counted from
	// the end of the request head. Default 0 (none): such a deadline cuts off
	// server-sent events, WebSockets and long downloads mid-stream. Request duration
	// is bounded per route instead (HTTPRoute timeouts), and stalled HTTP/2 readers by
	// HTTP2WriteByteTimeout.
	WriteTimeout time.Duration
	// TLSHandshakeTimeout bounds a TLS handshake. Default 10s, for the same reason as
	// ReadHeaderTimeout. Zero means the default.
	TLSHandshakeTimeout time.Duration
	// MaxHeaderBytes bounds the request line plus headers; net/http answers 431
	// beyond it. Default 64 KiB: roomy enough for large cookies and bearer tokens,
	// close to what other proxies allow (Envoy: 60 KiB), and far below net/http's
	// 1 MiB default, which costs memory per connection. For HTTP/2 it also bounds the
	// decoded header list. Zero means the default.
	MaxHeaderBytes int
	// MaxConcurrentStreams bounds open HTTP/2 streams per connection. Default 250:
	// enough for browsers' parallel requests, while capping the handler goroutines
	// one connection can start. Zero means the default.
	MaxConcurrentStreams uint32
	// HTTP2MaxReceiveBufferPerConnection is the HTTP/2 flow-control window of a
	// connection, the body bytes a client may send ahead of the handler. Default
	// 1 MiB. Zero means the default.
	HTTP2MaxReceiveBufferPerConnection int
	// HTTP2MaxReceiveBufferPerStream is the same window per stream. Default 1 MiB.
	// Zero means the default.
	HTTP2MaxReceiveBufferPerStream int
	// HTTP2WriteByteTimeout closes an HTTP/2 connection that accepts no bytes for
	// this long while data waits to be written; with the fast HTTP/2 server
	// (HTTP2Fast) it also resets a stream whose client grants it no flow-control
	// window for this long. Default 60s. Unlike WriteTimeout it only measures
	// progress, so long streams are unaffected. Zero means no limit.
	HTTP2WriteByteTimeout time.Duration
	// DrainTimeout bounds the graceful drain of a socket removed by Sync. Default 30s:
	// long enough for ordinary requests to finish, short enough that a removed port
	// does not linger. Long-lived streams still open then are closed. Zero means the
	// default.
	DrainTimeout time.Duration
	// HTTP1 chooses the HTTP/1.x server (see HTTP1Mode). "" means the choice of the
	// SWITCHYARD_HTTP1 environment variable, else HTTP1Fast; NewManager treats an
	// unknown value as HTTP1Fast.
	HTTP1 HTTP1Mode
	// HTTP2 chooses the HTTP/2 server when HTTP1 is HTTP1Fast (see HTTP2Mode). ""
	// means the choice of the SWITCHYARD_HTTP2 environment variable, else the
	// default; NewManager treats an unknown value as the default.
	HTTP2 HTTP2Mode
}

// DefaultLimits returns the limits documented on each Limits field.
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout:                  10 * time.Second,
		IdleTimeout:                        120 * time.Second,
		WriteTimeout:                       0,
		TLSHandshakeTimeout:                10 * time.Second,
		MaxHeaderBytes:                     64 << 10,
		MaxConcurrentStreams:               250,
		HTTP2MaxReceiveBufferPerConnection: 1 << 20,
		HTTP2MaxReceiveBufferPerStream:     1 << 20,
		HTTP2WriteByteTimeout:              60 * time.Second,
		DrainTimeout:                       30 * time.Second,
	}
}

// withDefaults fills the fields whose zero value means "the default".
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.TLSHandshakeTimeout <= 0 {
		l.TLSHandshakeTimeout = d.TLSHandshakeTimeout
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = d.MaxConcurrentStreams
	}
	if l.HTTP2MaxReceiveBufferPerConnection <= 0 {
		l.HTTP2MaxReceiveBufferPerConnection = d.HTTP2MaxReceiveBufferPerConnection
	}
	if l.HTTP2MaxReceiveBufferPerStream <= 0 {
		l.HTTP2MaxReceiveBufferPerStream = d.HTTP2MaxReceiveBufferPerStream
	}
	if l.DrainTimeout <= 0 {
		l.DrainTimeout = d.DrainTimeout
	}
	if mode, err := ParseHTTP1Mode(string(l.HTTP1)); err == nil {
		l.HTTP1 = mode
	} else {
		l.HTTP1 = HTTP1Fast
	}
	if mode, err := ParseHTTP2Mode(string(l.HTTP2)); err == nil {
		l.HTTP2 = mode
	} else {
		l.HTTP2 = DefaultHTTP2Mode
	}
	return l
}

// Spec is one socket to serve.
type Spec struct {
	// Name identifies the socket, "<address>:<port>".
	Name string
	// Address is the IP address to bind; "" means all interfaces.
	Address string
	// Port is the TCP port. Port 0 binds a free port; Addr reports which.
	Port int
	// TLS terminates TLS on the socket, serving HTTP/1.1 and HTTP/2 (ALPN).
	TLS bool
	// GetCertificate chooses the certificate by SNI; called per handshake. The data
	// plane swaps certificates without rebinding. Required when TLS is set.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// ClientValidation, when set, chooses per handshake (by SNI, typically) whether
	// and how the client must present a certificate; a nil result asks for none. Nil
	// means no client certificates on this socket.
	ClientValidation func(*tls.ClientHelloInfo) *ClientValidation
	// Handler serves the socket's requests. Required.
	Handler http.Handler
}

// socketKey is what a socket cannot change without rebinding.
type socketKey struct {
	address string
	port    int
	tls     bool
}

func keyOf(s *Spec) socketKey { return socketKey{s.Address, s.Port, s.TLS} }

// errManagerClosed is reported for every spec given to Sync after Shutdown.
var errManagerClosed = errors.New("server manager is shut down")

// Manager keeps a set of bound sockets equal to the data plane's configuration.
type Manager struct {
	limits   Limits
	logger   *slog.Logger
	inFlight atomic.Int64

	mu       sync.Mutex
	closed   bool
	sockets  map[string]*socket
	draining map[*socket]struct{}
	drains   sync.WaitGroup
}

// NewManager returns a Manager with no sockets. Zero fields of limits documented as
// "zero means the default" get the default; a nil logger discards logs.
func NewManager(limits Limits, logger *slog.Logger) *Manager {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		limits:   limits.withDefaults(),
		logger:   logger,
		sockets:  map[string]*socket{},
		draining: map[*socket]struct{}{},
	}
}

// Sync makes the bound sockets equal to specs. New sockets are bound; unchanged ones
// (same address, port and TLS mode) keep serving without interruption and only get
// the new Handler, GetCertificate and ClientValidation; removed ones stop accepting at
// once and drain their in-flight requests in the background, for up to
// Limits.DrainTimeout.
//
// Problems are reported per spec name and affect no other spec: a bind failure, a
// port already served by another spec of this Manager, or an invalid spec (including
// a name given twice). An invalid spec leaves an existing socket of that name as it
// was, so a bad update never takes a serving port down. The result is nil when all
// specs are served.
func (m *Manager) Sync(specs []Spec) map[string]error {
	m.mu.Lock()
	defer m.mu.Unlock()
	errs := map[string]error{}
	if m.closed {
		for _, s := range specs {
			errs[s.Name] = errManagerClosed
		}
		return errs
	}
	desired, order := validateSpecs(specs, errs)
	for name, s := range m.sockets {
		if errs[name] != nil {
			continue
		}
		if d, ok := desired[name]; !ok || keyOf(d) != s.key {
			delete(m.sockets, name)
			m.retire(s)
		}
	}
	for _, spec := range order {
		if err := m.apply(spec); err != nil {
			errs[spec.Name] = err
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// validateSpecs returns the valid specs by name and in their given order, and records
// an error for each invalid one.
func validateSpecs(specs []Spec, errs map[string]error) (map[string]*Spec, []*Spec) {
	byName := make(map[string]*Spec, len(specs))
	for i := range specs {
		spec := specs[i]
		if _, dup := byName[spec.Name]; dup || errs[spec.Name] != nil {
			errs[spec.Name] = fmt.Errorf("listener %q is given more than once", spec.Name)
			continue
		}
		if err := validateSpec(&spec); err != nil {
			errs[spec.Name] = err
			continue
		}
		byName[spec.Name] = &spec
	}
	order := make([]*Spec, 0, len(byName))
	for i := range specs {
		if s, ok := byName[specs[i].Name]; ok && errs[specs[i].Name] == nil {
			order = append(order, s)
		}
	}
	for name := range errs {
		delete(byName, name)
	}
	return byName, order
}

// validateSpec checks what Sync needs of one spec.
func validateSpec(s *Spec) error {
	switch {
	case s.Name == "":
		return errors.New("listener has no name")
	case s.Port < 0 || s.Port > 65535:
		return fmt.Errorf("listener %q: port %d out of range", s.Name, s.Port)
	case s.Address != "" && net.ParseIP(s.Address) == nil:
		return fmt.Errorf("listener %q: address %q is not an IP address", s.Name, s.Address)
	case s.Handler == nil:
		return fmt.Errorf("listener %q has no handler", s.Name)
	case s.TLS && s.GetCertificate == nil:
		return fmt.Errorf("listener %q: TLS without a certificate source", s.Name)
	}
	return nil
}

// apply swaps the spec into its socket, or binds a new socket for it.
func (m *Manager) apply(spec *Spec) error {
	if s, ok := m.sockets[spec.Name]; ok {
		s.spec.Store(spec)
		return nil
	}
	if err := m.portConflict(spec); err != nil {
		return err
	}
	s, err := m.open(spec)
	if err != nil {
		m.logger.Error("binding listener failed", "listener", spec.Name, "error", err)
		return err
	}
	m.sockets[spec.Name] = s
	m.logger.Info("listener bound", "listener", spec.Name, "address", s.ln.Addr().String(), "tls", spec.TLS)
	return nil
}

// portConflict reports a spec whose socket would share a port with one this Manager
// already serves. SO_REUSEPORT would let both bind and split connections between
// them at random, so the kernel cannot be relied on to refuse it.
func (m *Manager) portConflict(spec *Spec) error {
	if spec.Port == 0 {
		return nil
	}
	for name, s := range m.sockets {
		if s.key.port != spec.Port {
			continue
		}
		if s.key.address == spec.Address || isWildcard(s.key.address) || isWildcard(spec.Address) {
			return fmt.Errorf("listener %q: port %d is already served by listener %q", spec.Name, spec.Port, name)
		}
	}
	return nil
}

// isWildcard reports whether address binds all interfaces.
func isWildcard(address string) bool {
	if address == "" {
		return true
	}
	ip := net.ParseIP(address)
	return ip != nil && ip.IsUnspecified()
}

// retire stops a removed socket accepting at once, freeing its port, and drains it in
// the background.
func (m *Manager) retire(s *socket) {
	s.stopAccepting()
	m.draining[s] = struct{}{}
	m.drains.Add(1)
	m.logger.Info("listener removed; draining", "listener", s.name)
	go func() {
		defer m.drains.Done()
		ctx, cancel := context.WithTimeout(context.Background(), m.limits.DrainTimeout)
		defer cancel()
		if err := s.drain(ctx); err != nil {
			m.logger.Warn("listener drain cut short", "listener", s.name, "error", err)
		}
		m.mu.Lock()
		delete(m.draining, s)
		m.mu.Unlock()
	}()
}

// Bound returns the names of the sockets currently serving, sorted.
func (m *Manager) Bound() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.sockets))
	for name := range m.sockets {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Addr returns the address a socket is bound to, which tells the port chosen for a
// Spec with Port 0, or "" when no socket of that name is serving.
func (m *Manager) Addr(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sockets[name]; ok {
		return s.ln.Addr().String()
	}
	return ""
}

// InFlight returns the number of requests whose handlers are running, across all
// sockets, draining ones included. Upgraded connections (WebSockets) count while
// their handler runs.
func (m *Manager) InFlight() int64 { return m.inFlight.Load() }

// Shutdown hands each socket's port over to a replacement process that shares it
// (see HandOver), stops accepting on every socket, then waits for in-flight requests (and
// hijacked connections) to finish until ctx is done, then closes what remains. It
// returns ctx's error when it had to close connections. Later Syncs fail.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	sockets := make([]*socket, 0, len(m.sockets)+len(m.draining))
	for _, s := range m.sockets {
		sockets = append(sockets, s)
	}
	for s := range m.draining {
		sockets = append(sockets, s)
	}
	m.sockets = map[string]*socket{}
	m.mu.Unlock()

	m.handOver(ctx, sockets)
	for _, s := range sockets {
		s.stopAccepting()
	}
	errs := make([]error, len(sockets))
	var wg sync.WaitGroup
	for i, s := range sockets {
		wg.Go(func() { errs[i] = s.drain(ctx) })
	}
	wg.Wait()
	// Drains started by Sync run on their own clock; the sockets they drain were just
	// drained (or closed) above too, so they end promptly, but never wait past ctx.
	drained := make(chan struct{})
	go func() {
		m.drains.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-ctx.Done():
	}
	return errors.Join(errs...)
}

// socket is one bound listening socket and the HTTP server on it.
type socket struct {
	name string
	key  socketKey
	spec atomic.Pointer[Spec] // swapped by Sync; read per request and handshake
	ln   *listener
	srv  *http.Server
	// h1 serves HTTP/1.x in HTTP1Fast mode, and handoff passes connections to srv:
	// h2c ones from h1 and HTTP/2 over TLS from the listener, when h2 is nil. Both
	// are nil in HTTP1Std mode.
	h1      *h1.Server
	handoff *handoffListener
	// h2 serves HTTP/2 when the socket runs h1 and the limits ask for HTTP2Fast.
	h2       *h2.Server
	manager  *Manager
	inFlight atomic.Int64
	closing  atomic.Bool
	served   chan struct{} // closed when Serve returns
}

// open binds spec's socket and starts serving it.
func (m *Manager) open(spec *Spec) (*socket, error) {
	inner, err := bind(context.Background(), spec.Address, spec.Port)
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", spec.Name, err)
	}
	s := &socket{name: spec.Name, key: keyOf(spec), manager: m, served: make(chan struct{})}
	s.spec.Store(spec)
	var tlsConfig *tls.Config
	if spec.TLS {
		tlsConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"h2", "http/1.1"},
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				return s.spec.Load().GetCertificate(hello)
			},
		}
		tlsConfig.GetConfigForClient = s.configForClient(tlsConfig)
	}
	s.ln = newListener(inner, tlsConfig, m.limits, m.logger.With("listener", spec.Name))
	s.srv = m.newHTTPServer(s, tlsConfig)
	if m.limits.HTTP1 == HTTP1Fast {
		s.handoff = newHandoffListener(s.ln.Addr())
		s.h1 = m.newFastServer(s)
		if m.limits.HTTP2 == HTTP2Fast {
			s.h2 = m.newFastHTTP2Server(s)
		}
		go s.serveFast()
		return s, nil
	}
	go s.serve()
	return s, nil
}

// newHTTPServer configures net/http for one socket.
func (m *Manager) newHTTPServer(s *socket, tlsConfig *tls.Config) *http.Server {
	l := m.limits
	srv := &http.Server{
		Handler:           guardHandler(http.HandlerFunc(s.serveHTTP), m.logger.With("listener", s.name)),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		WriteTimeout:      l.WriteTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(m.logger.With("listener", s.name).Handler(), slog.LevelWarn),
		ConnContext:       guardConnContext,
		ConnState:         stopGuardOnHijack,
		// net/http answers "OPTIONS *" itself without calling the handler, which would
		// put the guard's request count behind the connection's real request index.
		DisableGeneralOptionsHandler: true,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          int(l.MaxConcurrentStreams),
			MaxReceiveBufferPerConnection: l.HTTP2MaxReceiveBufferPerConnection,
			MaxReceiveBufferPerStream:     l.HTTP2MaxReceiveBufferPerStream,
			WriteByteTimeout:              l.HTTP2WriteByteTimeout,
		},
	}
	if tlsConfig != nil {
		// The listener performs handshakes with tlsConfig; net/http only needs to see
		// "h2" here to enable HTTP/2, and may edit its own copy.
		srv.TLSConfig = tlsConfig.Clone()
	} else {
		// Cleartext listeners also take HTTP/2 with prior knowledge (h2c), as gRPC
		// clients and meshes send it; HTTP/1.1 clients are unaffected.
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	return srv
}

// serve runs the HTTP server until the socket is shut down.
func (s *socket) serve() {
	defer close(s.served)
	err := s.srv.Serve(s.ln)
	if err != nil && !errors.Is(err, http.ErrServerClosed) && !s.closing.Load() {
		s.manager.logger.Error("listener stopped serving", "listener", s.name, "error", err)
	}
}

// http1Handler is the handler of the fast HTTP/1.x path. Its parser refuses
// ambiguous framing itself, so the framing guard's handler is not in the way.
func http1Handler(s *socket) http.Handler { return http.HandlerFunc(s.serveHTTP) }

// serveHTTP counts the request in flight and hands it to the current handler.
func (s *socket) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.inFlight.Add(1)
	s.manager.inFlight.Add(1)
	defer func() {
		s.inFlight.Add(-1)
		s.manager.inFlight.Add(-1)
	}()
	s.spec.Load().Handler.ServeHTTP(w, r)
}

// stopAccepting closes the listening socket; open connections are untouched.
func (s *socket) stopAccepting() {
	s.closing.Store(true)
	_ = s.ln.Close()
}

// drain shuts the socket down gracefully: idle connections close at once, busy ones
// after their current request, HTTP/2 connections after their open streams (they
// are told at once, with GOAWAY), and hijacked connections when their handlers and
// connections are done. When ctx ends first, everything left is closed.
func (s *socket) drain(ctx context.Context) error {
	s.stopAccepting()
	// Package h2 starts first and on its own, so that HTTP/2 clients learn of the
	// drain at once rather than after the last HTTP/1.x request has finished.
	var h2Done chan error
	if s.h2 != nil {
		h2Done = make(chan error, 1)
		go func() { h2Done <- s.h2.Shutdown(ctx) }()
	}
	err := s.srv.Shutdown(ctx)
	if err == nil && s.h1 != nil {
		err = s.h1.Shutdown(ctx)
	}
	if h2Done != nil {
		// When ctx ended, the HTTP/2 shutdown ends too (closing what is left).
		if h2Err := <-h2Done; err == nil {
			err = h2Err
		}
	}
	if err == nil {
		err = s.waitQuiet(ctx)
	}
	if err != nil {
		_ = s.srv.Close()
		if s.h1 != nil {
			s.h1.Close()
		}
		if s.h2 != nil {
			s.h2.Close()
		}
		s.ln.conns.closeAll()
	}
	<-s.served
	return err
}

// waitQuiet waits until no handler runs and no connection is open, or ctx ends.
func (s *socket) waitQuiet(ctx context.Context) error {
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	for s.inFlight.Load() > 0 || s.ln.conns.len() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
	return nil
}
