package h2

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Error codes, named here so the code reads like the RFC.
const (
	errCodeNo          = http2.ErrCodeNo
	errCodeProtocol    = http2.ErrCodeProtocol
	errCodeInternal    = http2.ErrCodeInternal
	errCodeFlowControl = http2.ErrCodeFlowControl
	errCodeStreamClose = http2.ErrCodeStreamClosed
	errCodeFrameSize   = http2.ErrCodeFrameSize
	errCodeRefused     = http2.ErrCodeRefusedStream
	errCodeCancel      = http2.ErrCodeCancel
	errCodeCalm        = http2.ErrCodeEnhanceYourCalm
)

// maxFrameWrite caps the DATA and header-block frames we send. 16 KiB is the
// smallest SETTINGS_MAX_FRAME_SIZE a peer may have, and larger frames save
// little.
const maxFrameWrite = 16384

// maxFrameRead is the largest frame payload we accept: the initial
// SETTINGS_MAX_FRAME_SIZE (RFC 9113 §6.5.2), which we never raise.
const maxFrameRead = 16384

// conn is one HTTP/2 connection.
type conn struct {
	srv        *Server
	nc         net.Conn
	tlsState   *tls.ConnectionState
	remoteAddr string
	baseCtx    context.Context

	// The read side, used only by the serve goroutine. fr is nil while an
	// idle connection waits without it (see onReadIdle); hdec is its HPACK
	// decoder, kept across Framers.
	rd   connReader
	fr   *http2.Framer
	hdec *hpack.Decoder
	// hblock decodes header blocks with hdec (see headerBlock).
	hblock headerBlock
	// frBig is set when a frame larger than bigFrame was read: the read
	// Framer's buffer, which grows to the largest frame and never shrinks,
	// is then worth dropping with the Framer when the connection goes idle.
	frBig bool

	// The output side; see write.go.
	wmu      sync.Mutex
	wcond    sync.Cond // signalled on window, buffer and state changes
	out      outBuf
	spare    []byte
	wfr      *http2.Framer // write side, appending control frames to out
	henc     *hpack.Encoder
	flushing bool
	// readParked is set while the reading goroutine waits for input without
	// its read buffer; the output buffers may then go back to their pool too
	// (see releaseOutLocked).
	readParked atomic.Bool
	// handlers mirrors running, for readers holding wmu rather than smu.
	handlers   atomic.Int32
	werr       error
	pendingCtl int
	writers    atomic.Int32
	sendWindow int64  // connection-level send window
	peerWindow int32  // peer's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrame  uint32 // peer's SETTINGS_MAX_FRAME_SIZE, capped at maxFrameWrite
	flushState        // see flush.go

	// The stream table.
	smu         sync.Mutex
	streams     map[uint32]*stream
	maxStreamID uint32 // highest stream id the client has opened
	open        int    // streams open or half-closed
	running     int    // handlers running, including those of reset streams
	goingAway   bool   // GOAWAY sent; no new streams
	// goAwayID is the last-stream-id of the first GOAWAY sent; later ones
	// repeat it, since it may never increase (RFC 9113 §6.8).
	goAwayID  uint32
	closed    closedStreams
	dead      bool // torn down
	idleSince time.Time
	idleTimer *time.Timer

	// Inbound flow control: the receive windows we still grant, and bytes
	// consumed but not yet given back in a WINDOW_UPDATE.
	inflow  atomic.Int64
	unacked atomic.Int64

	prefaceDone atomic.Bool
	closeOnce   sync.Once
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		srv:        s,
		nc:         nc,
		remoteAddr: nc.RemoteAddr().String(),
		streams:    make(map[uint32]*stream),
		peerWindow: initialWindow,
		peerFrame:  maxFrameWrite,
		sendWindow: initialWindow,
	}
	c.wcond.L = &c.wmu
	// A small read buffer, taken from a pool when bytes arrive and, on a
	// connection that can wait without it, given back while it waits; a
	// frame's payload larger than it holds is read straight into the
	// Framer's own buffer.
	c.rd.init(nc, c.onReadIdle)
	c.hdec = hpack.NewDecoder(4096, nil)
	c.hblock.init(c.hdec, s.maxHeaderList)
	c.fr = c.newReadFramer()
	c.wfr = http2.NewFramer(&c.out, nil)
	// Header blocks are encoded straight into the output buffer, behind the
	// header of their frame (see writeHeaderBlockLocked).
	c.henc = hpack.NewEncoder(&c.out)
	c.tlsState = connTLSState(nc)
	ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, nc.LocalAddr())
	if s.httpServer != nil {
		ctx = context.WithValue(ctx, http.ServerContextKey, s.httpServer)
	}
	c.baseCtx = ctx
	c.inflow.Store(int64(s.connWindow))
	return c
}

// connTLSState returns the TLS state of nc, or nil when it is not a TLS
// connection. It looks through wrappers that name the connection they wrap
// with NetConn, as the HTTP/1 server's hand-over of a connection that began
// with the HTTP/2 preface does: requests must see the TLS state, and writes
// on TLS must never be given a deadline that could break the connection.
func connTLSState(nc net.Conn) *tls.ConnectionState {
	for range 4 {
		if cs, ok := nc.(interface{ ConnectionState() tls.ConnectionState }); ok {
			st := cs.ConnectionState()
			return &st
		}
		inner, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		nc = inner.NetConn()
	}
	return nil
}

// newReadFramer returns a Framer that reads frames from the connection's
// reader. It decodes no header blocks: readFrame does, with the connection's
// HPACK decoder (see headerBlock), so that a Framer dropped while the
// connection is idle is replaced without losing the decoder's state.
func (c *conn) newReadFramer() *http2.Framer {
	fr := http2.NewFramer(io.Discard, &c.rd)
	// We advertise no SETTINGS_MAX_FRAME_SIZE, so the initial 16 KiB is the
	// most a peer may send; the Framer's default (16 MiB) would also let one
	// frame header make us allocate that much.
	fr.SetMaxReadFrameSize(maxFrameRead)
	fr.SetReuseFrames()
	return fr
}

// serve runs the connection's reading goroutine until the connection ends.
func (c *conn) serve() {
	defer c.teardown()
	if !c.handshake() {
		return
	}
	if c.srv.idleTO > 0 {
		// Under smu, so that a timer that fires at once sees itself set.
		c.smu.Lock()
		c.idleSince = time.Now()
		c.idleTimer = time.AfterFunc(c.srv.idleTO, c.onIdle)
		c.smu.Unlock()
	}
	for {
		f, err := c.readFrame()
		if err == nil {
			err = c.processFrame(f)
		}
		if _, ok := f.(*http2.MetaHeadersFrame); ok {
			c.hblock.release()
		}
		if err == nil {
			continue
		}
		var se http2.StreamError
		if errors.As(err, &se) {
			c.srv.debug("h2: stream error", "remote", c.remoteAddr, "stream", se.StreamID, "code", se.Code, "cause", se.Cause)
			if err := c.resetStream(se.StreamID, se.Code); err != nil {
				c.endWithError(err)
				return
			}
			continue
		}
		c.endWithError(err)
		return
	}
}

// endWithError ends the connection after a read or protocol error, sending
// GOAWAY with the error's code when it is a protocol error.
func (c *conn) endWithError(err error) {
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &ce):
		c.srv.debug("h2: connection error", "remote", c.remoteAddr, "code", http2.ErrCode(ce), "detail", c.fr.ErrorDetail())
		c.goAway(http2.ErrCode(ce), false)
	case errors.Is(err, http2.ErrFrameTooLarge):
		// A frame larger than we allow (RFC 9113 §4.2).
		c.srv.debug("h2: frame too large", "remote", c.remoteAddr)
		c.goAway(errCodeFrameSize, false)
	case errors.Is(err, errFlood):
		c.srv.debug("h2: flood", "remote", c.remoteAddr)
		c.goAway(errCodeCalm, false)
	case c.isGracefulEnd():
		// Shutdown or idleness sent GOAWAY and the last stream finished; the
		// read was interrupted on purpose.
	default:
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			c.srv.debug("h2: read error", "remote", c.remoteAddr, "err", err)
		}
		return
	}
	c.finalFlush()
	c.lingerClose()
}

// lingerClose half-closes the connection and briefly discards what the
// client still sends, so that our GOAWAY is not destroyed by the TCP reset
// that closing a socket with unread input provokes. It is bounded in time
// and bytes. A conn that cannot half-close is drained all the same: the
// client sees no EOF then, but it closes on our GOAWAY. (A dead connection
// ends the drain at once.)
func (c *conn) lingerClose() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(closeWriteGrace))
	io.CopyN(io.Discard, &c.rd, 1<<20)
}

var errFlood = errors.New("h2: peer is flooding us")

// readBufferSize is the size of a connection's read buffer.
const readBufferSize = 4 << 10

// handshake reads the client preface and the first SETTINGS frame, and sends
// our SETTINGS and connection window.
func (c *conn) handshake() bool {
	if to := c.srv.readHeaderTO; to > 0 {
		c.nc.SetReadDeadline(time.Now().Add(to))
	}
	// Shutdown may come while we wait for the preface; closing the conn then
	// interrupts the read.
	stop := context.AfterFunc(doneContext{c.srv.done}, func() { c.nc.Close() })
	defer stop()
	// A client that connects and stays silent does not make us hold a
	// buffer either.
	c.awaitInput()
	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(&c.rd, preface[:]); err != nil || string(preface[:]) != http2.ClientPreface {
		return false
	}
	c.lockWrite()
	c.wfr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: c.srv.maxStreams},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(c.srv.streamWindow)},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.srv.maxHeaderList},
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
	)
	if d := c.srv.connWindow - initialWindow; d > 0 {
		c.wfr.WriteWindowUpdate(0, uint32(d))
	}
	c.unlockWrite()
	f, err := c.readFrame()
	if err != nil {
		return false
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		c.goAway(errCodeProtocol, false)
		c.finalFlush()
		return false
	}
	if err := c.processSettings(sf); err != nil {
		c.endWithError(err)
		return false
	}
	if c.srv.readHeaderTO > 0 {
		c.nc.SetReadDeadline(time.Time{})
	}
	c.prefaceDone.Store(true)
	return true
}

// doneContext adapts a channel to a context, for context.AfterFunc.
type doneContext struct{ done chan struct{} }

func (d doneContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (d doneContext) Done() <-chan struct{}       { return d.done }
func (d doneContext) Value(any) any               { return nil }
func (d doneContext) Err() error {
	select {
	case <-d.done:
		return context.Canceled
	default:
		return nil
	}
}

// processFrame dispatches one frame read from the peer.
func (c *conn) processFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.MetaHeadersFrame:
		return c.processHeaders(f)
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		return c.processSettings(f)
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		data := f.Data
		if !c.queueControl(func() { c.wfr.WritePing(true, data) }) {
			return errFlood
		}
		return nil
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.RSTStreamFrame:
		return c.processReset(f)
	case *http2.GoAwayFrame:
		// The client will open no more streams; finish the ones it has.
		c.goAway(errCodeNo, true)
		return nil
	case *http2.PriorityFrame:
		// Priorities are advice we ignore, but a stream may not depend on
		// itself (RFC 9113 §5.3.1).
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: errCodeProtocol}
		}
		return nil
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(errCodeProtocol)
	case *http2.ContinuationFrame:
		// The Framer assembles header blocks itself; a stray CONTINUATION
		// is rejected by it before we see one.
		return http2.ConnectionError(errCodeProtocol)
	}
	// Unknown frame types are ignored (RFC 9113 §4.1).
	return nil
}

// processSettings applies the peer's settings and acknowledges them.
func (c *conn) processSettings(f *http2.SettingsFrame) error {
	if err := f.ForeachSetting(func(s http2.Setting) error { return s.Valid() }); err != nil {
		return err
	}
	c.smu.Lock()
	c.wmu.Lock()
	err := f.ForeachSetting(c.applySettingLocked)
	c.wcond.Broadcast()
	c.wmu.Unlock()
	c.smu.Unlock()
	if err != nil {
		return err
	}
	if !c.queueControl(func() { c.wfr.WriteSettingsAck() }) {
		return errFlood
	}
	return nil
}

// applySettingLocked applies one setting; smu and wmu are held.
func (c *conn) applySettingLocked(s http2.Setting) error {
	switch s.ID {
	case http2.SettingHeaderTableSize:
		c.henc.SetMaxDynamicTableSizeLimit(s.Val)
	case http2.SettingInitialWindowSize:
		// A change applies to every open stream's window, which may go
		// negative (RFC 9113 §6.9.2).
		delta := int64(s.Val) - int64(c.peerWindow)
		c.peerWindow = int32(s.Val)
		for _, st := range c.streams {
			st.sendWindow += delta
			if st.sendWindow > maxWindow {
				return http2.ConnectionError(errCodeFlowControl)
			}
		}
	case http2.SettingMaxFrameSize:
		c.peerFrame = min(s.Val, maxFrameWrite)
	}
	return nil
}

// processWindowUpdate credits a send window and wakes writers.
func (c *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		c.wmu.Lock()
		c.sendWindow += inc
		over := c.sendWindow > maxWindow
		c.wcond.Broadcast()
		c.wmu.Unlock()
		if over {
			return http2.ConnectionError(errCodeFlowControl)
		}
		return nil
	}
	c.smu.Lock()
	st := c.streams[f.StreamID]
	idle := st == nil && f.StreamID > c.maxStreamID
	if st != nil {
		c.wmu.Lock()
		st.sendWindow += inc
		if st.sendWindow > maxWindow {
			st.sendWindow = maxWindow
			c.wmu.Unlock()
			c.smu.Unlock()
			return http2.StreamError{StreamID: f.StreamID, Code: errCodeFlowControl}
		}
		c.wcond.Broadcast()
		c.wmu.Unlock()
	}
	c.smu.Unlock()
	if idle {
		// WINDOW_UPDATE on an idle stream (RFC 9113 §5.1).
		return http2.ConnectionError(errCodeProtocol)
	}
	return nil
}

// processReset handles the client's RST_STREAM: the stream is closed, its
// handler's context is cancelled and its body reads and writes fail.
func (c *conn) processReset(f *http2.RSTStreamFrame) error {
	c.smu.Lock()
	st := c.streams[f.StreamID]
	if st == nil {
		idle := f.StreamID > c.maxStreamID
		c.smu.Unlock()
		if idle {
			return http2.ConnectionError(errCodeProtocol)
		}
		return nil
	}
	c.closeStreamLocked(st, false)
	c.smu.Unlock()
	st.abort(errStreamClosed)
	return c.giveBack(st.discardBody())
}

// resetStream sends RST_STREAM with code for stream id and closes the stream
// if it is open.
func (c *conn) resetStream(id uint32, code http2.ErrCode) error {
	c.smu.Lock()
	st := c.streams[id]
	if st != nil {
		c.closeStreamLocked(st, true)
	} else {
		c.markResetLocked(id)
	}
	c.smu.Unlock()
	if st != nil {
		st.abort(errStreamClosed)
		if err := c.giveBack(st.discardBody()); err != nil {
			return err
		}
	}
	if !c.queueControl(func() { c.wfr.WriteRSTStream(id, code) }) {
		return errFlood
	}
	return nil
}

// closeStreamLocked removes st from the stream table; smu is held.
// resetHere says this side reset the stream, or is about to.
func (c *conn) closeStreamLocked(st *stream, resetHere bool) {
	if c.streams[st.id] != st {
		return
	}
	delete(c.streams, st.id)
	c.closed.add(st.id, resetHere)
	c.open--
	if c.open == 0 && c.idleTimer != nil {
		c.idleSince = time.Now()
	}
}

// goAway sends GOAWAY with code and stops new streams. When graceful, the
// connection ends once its running handlers finish; otherwise the caller
// ends it.
func (c *conn) goAway(code http2.ErrCode, graceful bool) {
	if !c.prefaceDone.Load() {
		c.closeNow()
		return
	}
	c.smu.Lock()
	already := c.goingAway
	if !already {
		c.goingAway = true
		c.goAwayID = c.maxStreamID
	}
	last := c.goAwayID
	c.smu.Unlock()
	if !already || code != errCodeNo {
		c.wmu.Lock()
		if c.werr == nil {
			c.wfr.WriteGoAway(last, code, nil)
			c.kickLocked()
		}
		c.wmu.Unlock()
	}
	if graceful {
		c.maybeFinish()
	}
}

// isGracefulEnd reports whether GOAWAY was sent and no handler is running,
// so the connection may close.
func (c *conn) isGracefulEnd() bool {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.goingAway && c.running == 0
}

// maybeFinish interrupts the reading goroutine's read if the connection is
// going away and has nothing left running.
func (c *conn) maybeFinish() {
	if c.isGracefulEnd() {
		c.nc.SetReadDeadline(time.Now())
	}
}

// onIdle runs when the idle timer fires; it sends GOAWAY on a connection
// without open streams, or re-arms the timer.
func (c *conn) onIdle() {
	c.smu.Lock()
	if c.dead {
		c.smu.Unlock()
		return
	}
	idleFor := time.Since(c.idleSince)
	idle := c.open == 0 && c.running == 0 && idleFor >= c.srv.idleTO
	if !idle {
		wait := c.srv.idleTO - idleFor
		if c.open > 0 || c.running > 0 || wait <= 0 {
			wait = c.srv.idleTO
		}
		c.idleTimer.Reset(wait)
	}
	c.smu.Unlock()
	if idle {
		c.goAway(errCodeNo, true)
	}
}

// closeNow closes the connection; the reading goroutine then tears it down.
func (c *conn) closeNow() {
	c.nc.Close()
}

// teardown runs when the reading goroutine ends: it fails every stream so
// that handlers see their contexts cancelled, and closes the socket.
func (c *conn) teardown() {
	c.smu.Lock()
	c.dead = true
	c.goingAway = true
	streams := make([]*stream, 0, len(c.streams))
	for _, st := range c.streams {
		streams = append(streams, st)
	}
	clear(c.streams)
	c.open = 0
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	c.smu.Unlock()
	for _, st := range streams {
		st.abort(errConnClosed)
	}
	c.failWrites(errConnClosed)
	c.nc.Close()
	c.rd.close()
}
