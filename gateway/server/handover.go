package server

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A hand-over passes a port from a process that is stopping to its replacement, which
// has bound the same port with SO_REUSEPORT, without failing a connection. The kernel
// spreads new connections over the listening sockets of a reuseport group, and closing
// a listening socket resets the connections waiting in its accept queue (and the
// handshakes still in progress on it). So the stopping process first steers the
// group's new connections to another socket, then keeps accepting until its queue has
// stayed empty for a while, and only then closes its socket. Before the HTTP server's
// own graceful shutdown starts, the connections it accepted get time to send their
// first request (see connSet.waitAnswered); the shutdown then answers in-flight
// requests with Connection: close and closes idle connections.
//
// Steering is a classic BPF program attached to the group (SO_ATTACH_REUSEPORT_CBPF);
// its return value is the index of the socket that gets each new connection, and an
// index past the end of the group falls back to the kernel's hash. Sockets join the
// group in the order they start listening, and closing one moves the last socket into
// its slot. In the usual hand-over the stopping socket is index 0 and the replacement
// index 1, but the stopping process cannot ask which index is its own, so it finds
// out: it briefly steers everything to index 0 and connects to itself. If that probe
// connection arrives on its own socket it is index 0 and steers to index 1; otherwise
// index 0 is another socket, and it steers there. A second probe, sent once the
// steering is in place, tells whether it worked: when that probe arrives on the
// stopping socket too, the socket is alone in its group (index 1 is past the end, so
// the hash chooses the only socket) and there is nobody to wait for.
//
// The program stays on the group after the stopping socket closes. Steering to index
// 1 then falls back to the hash (index 1 no longer exists), and steering to index 0
// chooses the socket that took over. The next replacement's bind removes the program.

const (
	// probeWait is how long a probe connection is given to arrive on the stopping
	// socket before the hand-over concludes that it went to another socket. A probe
	// to the socket itself arrives in well under a millisecond on an idle host.
	probeWait = 250 * time.Millisecond
	// handOverSettle is how long the accept queue must stay empty, with nothing
	// accepted, before the socket is closed. It covers handshakes that were in
	// progress on the socket when steering began: their final ACK takes one round
	// trip.
	handOverSettle = 100 * time.Millisecond
	// handOverLimit bounds the wait for a quiet accept queue. It is reached only when
	// steering has no effect (a socket alone in its group under load), where waiting
	// longer gains nothing.
	handOverLimit = time.Second
	// queuePollInterval is how often the accept queue is looked at.
	queuePollInterval = 2 * time.Millisecond
)

// errSteeringUnsupported is returned where the platform cannot steer a reuseport
// group's connections; the hand-over then does nothing and closing behaves as before.
var errSteeringUnsupported = errors.New("steering a reuseport group is not supported on this platform")

// reusableListener is a TCP listener bound with SO_REUSEPORT. It hides the probe
// connections a hand-over sends to itself and counts the connections it accepts.
type reusableListener struct {
	*net.TCPListener
	probe    atomic.Pointer[selfProbe]
	accepted atomic.Int64
}

// Accept returns the next connection that is not a hand-over probe.
func (l *reusableListener) Accept() (net.Conn, error) {
	for {
		c, err := l.TCPListener.Accept()
		if err != nil {
			return nil, err
		}
		if p := l.probe.Load(); p != nil && p.owns(c) {
			p.arrive()
			_ = c.Close()
			continue
		}
		l.accepted.Add(1)
		return c, nil
	}
}

// selfProbe is a connection the hand-over opens to its own port; arrived is closed
// when the listener accepts it.
type selfProbe struct {
	local   *net.TCPAddr
	arrived chan struct{}
	once    sync.Once
}

// owns reports whether c is the probe's connection, seen from the listener.
func (p *selfProbe) owns(c net.Conn) bool {
	remote, ok := c.RemoteAddr().(*net.TCPAddr)
	return ok && remote.Port == p.local.Port && remote.IP.Equal(p.local.IP)
}

func (p *selfProbe) arrive() { p.once.Do(func() { close(p.arrived) }) }

// HandOver prepares ln, returned by Listen, for closing without losing connections:
// it steers the new connections of ln's reuseport group to another socket of the
// group (a replacement process's) and waits, while ln keeps being served, until ln's
// accept queue has stayed empty for a moment. Close ln next. It returns at once, doing
// nothing, for other listeners and where the platform cannot steer; an error says why
// the hand-over could not be done, and closing ln is still the thing to do.
func HandOver(ctx context.Context, ln net.Listener) error {
	l, ok := ln.(*reusableListener)
	if !ok {
		return nil
	}
	return l.handOver(ctx)
}

// handOver steers and then waits for a quiet accept queue. While it waits, a second
// probe checks the steering: when that probe arrives on this socket as well, the
// socket is alone in its group (or steering did not take), so there is no other
// socket to wait for and it returns at once.
func (l *reusableListener) handOver(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeWait+handOverLimit)
	defer cancel()
	target, err := l.chooseTarget(ctx)
	if err != nil {
		if errors.Is(err, errSteeringUnsupported) || errors.Is(err, net.ErrClosed) {
			return nil
		}
		return err
	}
	if err := l.steer(target); err != nil {
		return err
	}
	check, stop, err := l.startProbe(ctx)
	if err != nil {
		return err
	}
	defer stop()
	return l.waitQuietQueue(ctx, check.arrived)
}

// chooseTarget returns the group index to steer new connections to: one that is not
// this socket's, when the group has another socket (see the comment at the top).
func (l *reusableListener) chooseTarget(ctx context.Context) (uint32, error) {
	if err := l.steer(0); err != nil {
		return 0, err
	}
	p, stop, err := l.startProbe(ctx)
	if err != nil {
		return 0, err
	}
	defer stop()
	timer := time.NewTimer(probeWait)
	defer timer.Stop()
	select {
	case <-p.arrived:
		return 1, nil
	case <-timer.C:
		return 0, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// startProbe connects to the listener's own address; the probe's arrived channel is
// closed if this listener accepts the connection. stop closes the probe.
func (l *reusableListener) startProbe(ctx context.Context) (*selfProbe, func(), error) {
	p := &selfProbe{arrived: make(chan struct{})}
	dialCtx, cancel := context.WithTimeout(ctx, probeWait)
	defer cancel()
	conn, err := dialProbe(dialCtx, selfAddress(l.Addr().(*net.TCPAddr)), func(local *net.TCPAddr) {
		p.local = local
		l.probe.Store(p)
	})
	if err != nil {
		l.probe.CompareAndSwap(p, nil)
		return nil, nil, err
	}
	stop := func() {
		l.probe.CompareAndSwap(p, nil)
		_ = conn.Close()
	}
	return p, stop, nil
}

// selfAddress is where a connection to a listener bound to addr can be sent from this
// host: 127.0.0.1 for a wildcard address, which our dual-stack wildcard sockets
// accept whichever family they were given.
func selfAddress(addr *net.TCPAddr) *net.TCPAddr {
	if !addr.IP.IsUnspecified() {
		return addr
	}
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: addr.Port}
}

// waitQuietQueue returns once the accept queue has been empty, with nothing accepted,
// for handOverSettle, or after handOverLimit, or when alone is closed or ctx ends.
func (l *reusableListener) waitQuietQueue(ctx context.Context, alone <-chan struct{}) error {
	start := time.Now()
	lastArrival := start
	accepted := l.accepted.Load()
	ticker := time.NewTicker(queuePollInterval)
	defer ticker.Stop()
	for {
		queued, err := l.queueLen()
		if err != nil {
			return err
		}
		now := time.Now()
		if n := l.accepted.Load(); n != accepted || queued > 0 {
			accepted, lastArrival = n, now
		}
		if now.Sub(lastArrival) >= handOverSettle || now.Sub(start) >= handOverLimit {
			return nil
		}
		select {
		case <-alone:
			return nil
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// handOver hands every socket's port over before Shutdown closes them, all at once,
// and then gives the connections the sockets accepted time to be answered once.
// net/http drops, unanswered, a request it reads after its Shutdown began, and a
// client may not retry a request sent on a new connection. Failures are logged: the
// sockets are closed regardless.
func (m *Manager) handOver(ctx context.Context, sockets []*socket) {
	var wg sync.WaitGroup
	for _, s := range sockets {
		if s.closing.Load() {
			continue
		}
		inner, ok := s.ln.Listener.(*reusableListener)
		if !ok {
			continue
		}
		wg.Go(func() {
			if err := inner.handOver(ctx); err != nil {
				m.logger.Warn("hand-over of the port failed; closing it anyway", "listener", s.name, "error", err)
			}
			s.ln.conns.waitAnswered(ctx)
		})
	}
	wg.Wait()
}

// waitAnswered returns once every open connection has completed its TLS handshake, if
// it has one, and has since written something (an answer, or HTTP/2's settings) or
// read something at least handOverSettle ago (a request whose handler runs), or after
// handOverLimit, or when ctx ends. A connection that has done neither may carry a first request the server
// has not read yet.
func (s *connSet) waitAnswered(ctx context.Context) {
	start := time.Now()
	firstReadSeen := map[*trackedConn]time.Time{}
	ticker := time.NewTicker(queuePollInterval)
	defer ticker.Stop()
	for {
		now := time.Now()
		if s.allAnswered(now, firstReadSeen) || now.Sub(start) >= handOverLimit {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// allAnswered reports whether every open connection is answered, as waitAnswered
// defines it, noting in firstReadSeen when a connection was first seen to have read.
func (s *connSet) allAnswered(now time.Time, firstReadSeen map[*trackedConn]time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := true
	for c := range s.conns {
		if c.handshaking.Load() {
			all = false
			continue
		}
		if c.answered.Load() {
			continue
		}
		if c.reads.Load() > 0 {
			if seen, ok := firstReadSeen[c]; !ok {
				firstReadSeen[c] = now
			} else if now.Sub(seen) >= handOverSettle {
				continue
			}
		}
		all = false
	}
	return all
}
