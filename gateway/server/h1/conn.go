package h1

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/internal/reqcontext"
)

// Connection states, as Shutdown sees them.
const (
	// stateActive: a request head is being read or a handler runs.
	stateActive int32 = iota
	// stateIdle: waiting for the first byte of the next request.
	stateIdle
	// stateGone: hijacked, handed off or closed; the server no longer owns it.
	stateGone
)

// initialBuffer is the read and write buffer size of a connection, as net/http's.
const initialBuffer = 4 << 10

var errLineTooLong = errors.New("line too long")

// aLongTimeAgo is a deadline in the past, which interrupts blocked reads at once.
var aLongTimeAgo = time.Unix(1, 0)

// conn is one HTTP/1.x client connection.
type conn struct {
	srv *Server
	rwc net.Conn
	// state is one of the state* constants; Shutdown reads it.
	state atomic.Int32
	// rbuf holds bytes read but not consumed, in rbuf[r:w].
	rbuf []byte
	r, w int
	// readDeadline is the deadline last set on rwc for reads (zero: none).
	readDeadline time.Time
	// broken is set when the connection cannot carry another request: a read or
	// write failed, or the framing of a body could not be followed.
	broken bool
	// requests counts the requests read, to tell the first one.
	requests int
	parser   parser
	head     head
	resp     response
	// tmpl is the next request, filled from its head; handlers get copies. next is
	// what the next request allocates of its own.
	tmpl http.Request
	next *requestState
	// baseCtx carries the connection's values; each request derives its own.
	baseCtx  context.Context
	tlsState *tls.ConnectionState
	remote   string
	// remoteHost is remote without its port, worked out once (see
	// Exchange.RemoteHost).
	remoteHost string
	// remoteIP is the peer's IP address in canonical form, worked out by the first
	// request that asks (see Exchange.RemoteIP); remoteIPRead says it was.
	remoteIP     string
	remoteIPRead bool
	// yieldFirst is set when a goroutine should let others run before reading
	// the next request (rawio.YieldPays).
	yieldFirst bool
	// watch follows the client while a long handler runs; see watcher.
	watch watcher
	// exchange is what the forwarder gets of each request it is offered.
	exchange Exchange
	// idle, when the connection is one, lets it wait for a request without its
	// buffers (see fillIdle); releaseIdleFn is releaseIdle, made once.
	idle          idleReader
	releaseIdleFn func([]byte)
}

// serve reads requests and runs the handler until the connection ends.
func (c *conn) serve() {
	defer c.srv.forget(c)
	if c.srv.readHeaderTimeout > 0 {
		c.setReadDeadline(time.Now().Add(c.srv.readHeaderTimeout))
	}
	for {
		perr, err := c.readRequest()
		if err != nil {
			if err == errHandedOff {
				return
			}
			c.close()
			return
		}
		if perr != nil {
			c.refuse(perr)
			return
		}
		if !c.serveRequest() {
			return
		}
	}
}

// errHandedOff ends serve for a connection given to the fallback server.
var errHandedOff = errors.New("connection handed off")

// readRequest waits for and parses the next request head. It returns a protocol
// error for a head that must be refused, and another error when the connection
// must simply be closed (the client went away or timed out, or the server drains).
func (c *conn) readRequest() (*protocolError, error) {
	if err := c.awaitRequest(); err != nil {
		return nil, err
	}
	end, err := c.readHead()
	if err != nil || end < 0 {
		if end == -2 {
			return errHeadTooLarge, nil
		}
		return nil, err
	}
	if c.requests == 0 && bytes.HasPrefix(c.rbuf[c.r:c.w], []byte(h2Preface+"\r\n")) && c.srv.handoff != nil {
		c.handOff()
		return nil, errHandedOff
	}
	c.requests++
	headBytes := c.rbuf[c.r : c.r+end]
	c.r += end
	c.next = new(requestState)
	if perr := c.parser.parse(headBytes, &c.head); perr != nil {
		return perr, nil
	}
	return c.newRequest(), nil
}

// awaitRequest waits, within the idle timeout, for the first byte of the next
// request. It returns an error when the connection should close instead.
func (c *conn) awaitRequest() error {
	if c.r < c.w {
		return nil
	}
	c.r, c.w = 0, 0
	if c.requests > 0 {
		if d := c.srv.idleTimeout; d > 0 {
			c.setReadDeadline(time.Now().Add(d))
		} else if c.srv.readHeaderTimeout > 0 {
			c.setReadDeadline(time.Time{})
		}
	}
	// The state is published after the deadline is set and before draining is
	// checked, so that Shutdown either sees the connection idle and interrupts the
	// read, or has already set draining, which is seen here.
	c.state.Store(stateIdle)
	if c.srv.draining.Load() {
		return errDraining
	}
	// The client sends its next request only after reading this response, so a read
	// now would most likely find nothing and cost a system call before parking. Other
	// connections' work runs first instead, where that pays (see rawio.YieldPays),
	// which gives the request time to arrive.
	if c.yieldFirst {
		runtime.Gosched()
	}
	err := c.fillIdle()
	c.state.Store(stateActive)
	return err
}

var errDraining = errors.New("server is draining")

// readHead reads until rbuf[r:] holds a whole head, and returns its length. It
// returns -2 when the head outgrows the limit.
func (c *conn) readHead() (int, error) {
	from := 0
	deadlineSet := false
	for {
		end, next := findHeadEnd(c.rbuf[c.r:c.w], from)
		if end >= 0 {
			return end, nil
		}
		from = next
		if c.w-c.r >= c.srv.maxHead {
			return -2, nil
		}
		if !deadlineSet && c.requests > 0 && c.srv.readHeaderTimeout > 0 {
			// Waiting for the first byte used the idle timeout; the rest of the head
			// must come within the header timeout.
			c.setReadDeadline(time.Now().Add(c.srv.readHeaderTimeout))
			deadlineSet = true
		}
		if err := c.fill(); err != nil {
			return -1, err
		}
	}
}

// fill reads more bytes into rbuf, making room first: consumed bytes are dropped
// and, when a head fills the buffer, it grows up to what the head limit needs.
func (c *conn) fill() error {
	if c.r > 0 && c.w == len(c.rbuf) {
		c.w = copy(c.rbuf, c.rbuf[c.r:c.w])
		c.r = 0
	}
	if c.w == len(c.rbuf) {
		grown := make([]byte, min(2*len(c.rbuf), c.srv.maxHead+initialBuffer))
		copy(grown, c.rbuf[:c.w])
		c.rbuf = grown
	}
	n, err := c.rwc.Read(c.rbuf[c.w:])
	return c.filled(n, err)
}

// filled takes in the n bytes a read put after rbuf[:w]; a read that brought
// nothing fails, with its error or else io.ErrNoProgress.
func (c *conn) filled(n int, err error) error {
	c.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// readBody reads up to limit body bytes into p, from the buffer or else the socket.
func (c *conn) readBody(p []byte, limit int64) (int, error) {
	if int64(len(p)) > limit {
		p = p[:limit]
	}
	if c.r < c.w {
		n := copy(p, c.rbuf[c.r:c.w])
		c.r += n
		return n, nil
	}
	if len(p) >= len(c.rbuf) {
		// Large reads skip the buffer.
		n, err := c.rwc.Read(p)
		if n > 0 {
			return n, nil
		}
		return 0, unexpectedEOF(err)
	}
	c.r, c.w = 0, 0
	if err := c.fill(); err != nil {
		return 0, unexpectedEOF(err)
	}
	n := copy(p, c.rbuf[c.r:c.w])
	c.r += n
	return n, nil
}

// unexpectedEOF turns the end of the stream inside a body into the error it is.
func unexpectedEOF(err error) error {
	if err == io.EOF || err == nil {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readLine returns the next line, with its LF, from the buffer; it is valid until
// the next read. Lines longer than limit are refused.
func (c *conn) readLine(limit int) ([]byte, error) {
	from := c.r
	for {
		if i := bytes.IndexByte(c.rbuf[from:c.w], '\n'); i >= 0 {
			end := from + i + 1
			if end-c.r > limit {
				return nil, errLineTooLong
			}
			line := c.rbuf[c.r:end]
			c.r = end
			return line, nil
		}
		if c.w-c.r > limit {
			return nil, errLineTooLong
		}
		scanned := c.w - c.r
		if c.r > 0 && c.w == len(c.rbuf) {
			c.w = copy(c.rbuf, c.rbuf[c.r:c.w])
			c.r = 0
		}
		if c.w == len(c.rbuf) {
			grown := make([]byte, 2*len(c.rbuf))
			copy(grown, c.rbuf[:c.w])
			c.rbuf = grown
		}
		n, err := c.rwc.Read(c.rbuf[c.w:])
		c.w += n
		if n == 0 {
			return nil, unexpectedEOF(err)
		}
		from = c.r + scanned
	}
}

// setReadDeadline sets the read deadline unless the one in force is close enough:
// within a sixteenth of the idle timeout (at most a second) of t, so that a busy
// keep-alive connection does not pay for a deadline per request.
func (c *conn) setReadDeadline(t time.Time) {
	if t.IsZero() != c.readDeadline.IsZero() || t.Sub(c.readDeadline) > c.srv.deadlineSlack || c.readDeadline.Sub(t) > 0 {
		_ = c.rwc.SetReadDeadline(t)
		c.readDeadline = t
	}
}

// handOff gives the connection, with the bytes already read, to the fallback
// server.
func (c *conn) handOff() {
	c.state.Store(stateGone)
	c.setReadDeadline(time.Time{})
	rc := &replayConn{Conn: c.rwc, pending: append([]byte(nil), c.rbuf[c.r:c.w]...)}
	c.srv.handoff(rc)
}

// replayConn returns bytes read ahead before reading from the connection again. It
// only ever wraps what is read: h2c connections handed over (cleartext), and the
// reader of a hijacked connection, whose hijacker gets the connection itself.
type replayConn struct {
	net.Conn
	pending []byte
}

// NetConn returns the connection replayConn wraps, so that a server it is
// handed to can find what that connection is (its TLS state, say).
func (rc *replayConn) NetConn() net.Conn { return rc.Conn }

func (rc *replayConn) Read(p []byte) (int, error) {
	if len(rc.pending) > 0 {
		n := copy(p, rc.pending)
		rc.pending = rc.pending[n:]
		if len(rc.pending) == 0 {
			// The bytes are not kept for as long as the connection lives.
			rc.pending = nil
		}
		return n, nil
	}
	return rc.Conn.Read(p)
}

// CloseWrite shuts the connection's write side where it has one, so that a server
// handed the connection can close it gracefully (HTTP/2 sends GOAWAY, then stops
// writing and drains what the client still sends).
func (rc *replayConn) CloseWrite() error {
	if cw, ok := rc.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// close closes the connection, after sending what is buffered.
func (c *conn) close() {
	c.state.Store(stateGone)
	_ = c.rwc.Close()
}

// closeAfterReply closes a connection whose client may still be sending: the write
// side first, then, after a short wait for the client to read the answer, the rest,
// so that unread input does not make the kernel reset the connection before the
// answer arrives (net/http does the same).
func (c *conn) closeAfterReply() {
	c.state.Store(stateGone)
	if tc, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
		_ = c.rwc.SetReadDeadline(time.Now().Add(closeLinger))
		var scratch [512]byte
		for range 64 {
			if _, err := c.rwc.Read(scratch[:]); err != nil {
				break
			}
		}
	}
	_ = c.rwc.Close()
}

// closeLinger bounds how long a refused client's remaining input is read and dropped.
const closeLinger = 500 * time.Millisecond

// refuse answers a head that cannot be served and closes the connection.
func (c *conn) refuse(perr *protocolError) {
	if c.srv.logger != nil {
		c.srv.logger.Debug("refused malformed request", "remote", c.remote, "reason", perr.reason)
	}
	text := http.StatusText(perr.status)
	msg := "HTTP/1.1 " + itoa(perr.status) + " " + text +
		"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" +
		itoa(perr.status) + " " + text + ": " + perr.reason + "\n"
	if c.srv.writeTimeout > 0 {
		_ = c.rwc.SetWriteDeadline(time.Now().Add(c.srv.writeTimeout))
	}
	_, _ = io.WriteString(c.rwc, msg)
	c.closeAfterReply()
}

// itoa formats a non-negative integer.
func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// watcher notices a client that goes away while a long handler runs, and cancels
// the request's context, as net/http does. Reading the socket for that costs a
// goroutine and a system call, so it starts only for handlers that run longer than
// a sweep of the server (see Server.sweep), once the request body has been read.
type watcher struct {
	mu sync.Mutex
	// running is set while a handler runs; bodyDone once its body is read.
	running  bool
	bodyDone atomic.Bool
	started  time.Time
	ctx      *reqcontext.Context
	// active is set while the watching goroutine reads; done is closed when it ends.
	active bool
	done   chan struct{}
	// got is a byte the watcher read (the start of a pipelined request), gone is set
	// when it saw the client close or the connection fail.
	got     [1]byte
	gotByte bool
	gone    bool
}

// begin marks a handler as running.
func (w *watcher) begin(now time.Time, ctx *reqcontext.Context) {
	w.mu.Lock()
	w.running, w.started, w.ctx = true, now, ctx
	w.mu.Unlock()
}

// maybeStart starts watching c when its handler has run since before cutoff and
// has read its body.
func (w *watcher) maybeStart(c *conn, cutoff time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.running || w.active || !w.bodyDone.Load() || w.started.After(cutoff) {
		return
	}
	w.active = true
	w.done = make(chan struct{})
	_ = c.rwc.SetReadDeadline(time.Time{})
	go w.watch(c.rwc, w.done, w.ctx)
}

// watch reads one byte: a client that closes or resets the connection ends the
// request's context.
func (w *watcher) watch(rwc net.Conn, done chan struct{}, ctx *reqcontext.Context) {
	defer close(done)
	n, err := rwc.Read(w.got[:])
	if n == 1 {
		w.gotByte = true
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return // stopped by end
	}
	w.gone = true
	ctx.Cancel()
}

// end stops watching after the handler returned (or hijacked). It reports a byte the
// watcher read, which belongs to the next request, and whether the client is gone.
func (w *watcher) end(c *conn) (got []byte, gone bool) {
	w.mu.Lock()
	w.running = false
	// The request's context has ended; the connection keeps nothing of it.
	w.ctx = nil
	active := w.active
	w.active = false
	w.mu.Unlock()
	w.bodyDone.Store(false)
	if !active {
		return nil, false
	}
	_ = c.rwc.SetReadDeadline(aLongTimeAgo)
	<-w.done
	_ = c.rwc.SetReadDeadline(time.Time{})
	c.readDeadline = time.Time{}
	if w.gotByte {
		w.gotByte = false
		return w.got[:], w.gone
	}
	gone = w.gone
	w.gone = false
	return nil, gone
}
