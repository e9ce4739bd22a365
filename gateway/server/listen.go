package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/internal/rawio"
)

// bind opens a TCP listening socket on address and port; see Listen.
func bind(ctx context.Context, address string, port int) (*reusableListener, error) {
	return listenReusable(ctx, net.JoinHostPort(address, strconv.Itoa(port)))
}

// Listen binds address ("host:port", as net.Listen takes it) for TCP the way the data
// plane's listeners are bound: with SO_REUSEADDR and SO_REUSEPORT, so that a
// replacement process can bind the same address while this one still runs (hand-over).
// Give the listener to HandOver before closing it, so that no connection waiting in
// its accept queue is lost.
func Listen(ctx context.Context, address string) (net.Listener, error) {
	return listenReusable(ctx, address)
}

// listenReusable binds address with SO_REUSEADDR and SO_REUSEPORT. A steering program
// left on the address's reuseport group by an earlier hand-over is removed, so that
// each generation of processes starts from the kernel's even spread of connections.
func listenReusable(ctx context.Context, address string) (*reusableListener, error) {
	lc := net.ListenConfig{Control: func(network, addr string, raw syscall.RawConn) error {
		var sockErr error
		err := raw.Control(func(fd uintptr) { sockErr = setReuseOptions(fd) })
		if err != nil {
			return err
		}
		return sockErr
	}}
	// Go listens with Multipath TCP where the kernel offers it; a reuseport group of
	// MPTCP sockets cannot be steered (their TCP subflows are not ours to program),
	// and clients that do not speak MPTCP, nearly all, get plain TCP anyway.
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	l := &reusableListener{TCPListener: ln.(*net.TCPListener)}
	l.clearSteering()
	return l, nil
}

// connSet tracks every accepted connection until it is closed, whoever closes it. It
// is how connections that net/http no longer tracks (hijacked ones, WebSockets) are
// still closed when a drain runs out of time.
type connSet struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func newConnSet() *connSet { return &connSet{conns: map[*trackedConn]struct{}{}} }

// track wraps c so that closing it removes it from the set.
func (s *connSet) track(c net.Conn) *trackedConn {
	return s.add(&trackedConn{Conn: c, set: s, raw: rawio.New(c)})
}

// trackHandshaking tracks c as track does, as a connection whose TLS handshake has
// yet to complete (see trackedConn.handshaking).
func (s *connSet) trackHandshaking(c net.Conn) *trackedConn {
	tc := &trackedConn{Conn: c, set: s, raw: rawio.New(c)}
	tc.handshaking.Store(true)
	return s.add(tc)
}

func (s *connSet) add(tc *trackedConn) *trackedConn {
	s.mu.Lock()
	s.conns[tc] = struct{}{}
	s.mu.Unlock()
	return tc
}

// len returns the number of open connections.
func (s *connSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// closeAll closes every open connection.
func (s *connSet) closeAll() {
	s.mu.Lock()
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// trackedConn is a raw accepted connection that leaves its connSet on Close. It also
// notes whether it has read and written anything, which tells a hand-over whether the
// connection may still carry a first request that the server has not read (see
// connSet.waitAnswered).
type trackedConn struct {
	net.Conn
	// raw reads and writes the connection, where the platform allows (see rawio).
	raw  *rawio.Conn
	set  *connSet
	once sync.Once
	// reads counts the Reads that returned data; answered is set by the first Write
	// that wrote any.
	reads    atomic.Int64
	answered atomic.Bool
	// handshaking is set while a TLS handshake runs. Its writes answer no request,
	// and a client whose handshake completes just as a hand-over begins sends its
	// first request right after it, so a hand-over waits for the handshake too.
	handshaking atomic.Bool
}

// Read reads from the connection and counts reads that returned data.
func (c *trackedConn) Read(p []byte) (int, error) {
	var n int
	var err error
	if c.raw != nil {
		n, err = c.raw.Read(p)
	} else {
		n, err = c.Conn.Read(p)
	}
	if n > 0 {
		c.reads.Add(1)
	}
	return n, err
}

// CanWaitIdle reports whether ReadIdle works: it does where the socket is read
// with raw system calls.
func (c *trackedConn) CanWaitIdle() bool { return c.raw != nil }

// ReadIdle reads, giving the buffer back while there is nothing to read (see
// rawio.Conn.ReadIdle); only when CanWaitIdle.
func (c *trackedConn) ReadIdle(p []byte, release func([]byte), acquire func() []byte) ([]byte, int, error) {
	buf, n, err := c.raw.ReadIdle(p, release, acquire)
	if n > 0 {
		c.reads.Add(1)
	}
	return buf, n, err
}

// Write writes to the connection and notes the first write of data.
func (c *trackedConn) Write(p []byte) (int, error) {
	var n int
	var err error
	if c.raw != nil {
		n, err = c.raw.Write(p)
	} else {
		n, err = c.Conn.Write(p)
	}
	if n > 0 && !c.answered.Load() {
		c.answered.Store(true)
	}
	return n, err
}

// WriteBuffers writes bufs with one gathered write where it can, which
// net.Buffers.WriteTo cannot do through this wrapper, and notes the first write of
// data as Write does.
func (c *trackedConn) WriteBuffers(bufs *net.Buffers) (int64, error) {
	var n int64
	var err error
	if c.raw != nil {
		n, err = c.raw.WriteBuffers(bufs)
	} else {
		n, err = bufs.WriteTo(c.Conn)
	}
	if n > 0 && !c.answered.Load() {
		c.answered.Store(true)
	}
	return n, err
}

// forgetHandshake forgets the reads and writes so far: those of a TLS handshake
// answer no request.
func (c *trackedConn) forgetHandshake() {
	c.reads.Store(0)
	c.answered.Store(false)
	c.handshaking.Store(false)
}

// Close closes the connection and forgets it.
func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.set.mu.Lock()
		delete(c.set.conns, c)
		c.set.mu.Unlock()
	})
	return c.Conn.Close()
}

// listener hands net/http connections that are tracked and, for HTTP/1.x, guarded.
// For TLS it performs the handshake itself, in a goroutine per connection, because
// the guard must observe the decrypted stream: connections that negotiated h2 are
// returned as the bare *tls.Conn (net/http only serves HTTP/2 on a *tls.Conn, and
// HTTP/2 framing has no Content-Length/Transfer-Encoding ambiguity); all others are
// wrapped so their plaintext reads are scanned.
type listener struct {
	net.Listener
	conns            *connSet
	tlsConfig        *tls.Config // nil for cleartext
	handshakeTimeout time.Duration
	maxHeaderBytes   int
	logger           *slog.Logger

	ready     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	ctx       context.Context // canceled on Close, aborting handshakes
	cancel    context.CancelFunc
}

func newListener(inner net.Listener, tlsConfig *tls.Config, limits Limits, logger *slog.Logger) *listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{
		Listener:         inner,
		conns:            newConnSet(),
		tlsConfig:        tlsConfig,
		handshakeTimeout: limits.TLSHandshakeTimeout,
		maxHeaderBytes:   limits.MaxHeaderBytes,
		logger:           logger,
		ready:            make(chan net.Conn),
		closed:           make(chan struct{}),
		ctx:              ctx,
		cancel:           cancel,
	}
	if tlsConfig != nil {
		go l.acceptTLS()
	}
	return l
}

// Accept returns the next connection ready for HTTP.
func (l *listener) Accept() (net.Conn, error) {
	if l.tlsConfig == nil {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		return newGuardConn(l.conns.track(c), l.maxHeaderBytes), nil
	}
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and aborts handshakes in progress. Connections already handed
// to net/http stay open; they are drained by the server.
func (l *listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closed)
		l.cancel()
		err = l.Listener.Close()
	})
	return err
}

// acceptTLS accepts raw connections and starts their handshakes until Close. Accept
// errors other than closing (running out of file descriptors, for example) are logged
// and retried with a growing pause, as net/http does for its own accept loop.
func (l *listener) acceptTLS() {
	var pause time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			l.logger.Error("accept failed; retrying", "listener", l.Addr().String(), "error", err, "pause", pause)
			select {
			case <-time.After(pause):
				continue
			case <-l.closed:
				return
			}
		}
		pause = 0
		go l.handshake(l.conns.trackHandshaking(c))
	}
}

// handshake completes the TLS handshake of raw and hands the connection to Accept.
func (l *listener) handshake(raw net.Conn) {
	tc := tls.Server(raw, l.tlsConfig)
	if l.handshakeTimeout > 0 {
		_ = raw.SetDeadline(time.Now().Add(l.handshakeTimeout))
	}
	if err := tc.HandshakeContext(l.ctx); err != nil {
		answerPlaintextOnTLS(err)
		l.logger.Debug("TLS handshake failed", "remote", raw.RemoteAddr().String(), "error", err)
		_ = raw.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	if tracked, ok := raw.(*trackedConn); ok {
		tracked.forgetHandshake()
	}
	var c net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		c = newGuardConn(tc, l.maxHeaderBytes)
	}
	select {
	case l.ready <- c:
	case <-l.closed:
		_ = c.Close()
	}
}

// answerPlaintextOnTLS tells a client that spoke cleartext HTTP to a TLS port what
// went wrong, as net/http does when it performs the handshake itself.
func answerPlaintextOnTLS(err error) {
	var rhe tls.RecordHeaderError
	if !errors.As(err, &rhe) || rhe.Conn == nil || !looksLikeHTTP(rhe.RecordHeader[:]) {
		return
	}
	_, _ = rhe.Conn.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"))
}

// looksLikeHTTP reports whether the first bytes of a connection look like the start
// of a cleartext HTTP request.
func looksLikeHTTP(hdr []byte) bool {
	switch string(hdr) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH", "CONNE":
		return true
	}
	return false
}
