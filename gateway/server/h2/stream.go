package h2

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/switchyard-dev/switchyard/gateway/internal/reqcontext"
)

// stream is one request and its response.
type stream struct {
	c  *conn
	id uint32

	// sendWindow and wclosed are guarded by c.wmu.
	sendWindow int64
	wclosed    bool
	// endQueued is set, on the handler's goroutine, once it appended the
	// stream's last frame, into output buffer endGen (see holdOpen).
	endQueued bool
	endGen    uint64
	// leaving is set while the stream counts in conn.leaving.
	leaving bool
	// reset mirrors wclosed for checks that do not take the lock.
	reset atomic.Bool

	// remoteClosed is set by the reading goroutine once the client ended its
	// side (END_STREAM), after which no DATA may come.
	remoteClosed atomic.Bool
	// declLen and recvLen are the declared and received body lengths; only
	// the reading goroutine uses them. declLen is -1 when not declared.
	declLen int64
	recvLen int64
	// inflow is the stream receive window we still grant; unacked counts
	// body bytes the handler consumed but we have not yet granted back.
	inflow  atomic.Int64
	unacked atomic.Int64

	// The request body buffer, guarded by mu.
	mu         sync.Mutex
	cond       sync.Cond
	buf        []byte
	off        int
	bodyErr    error // io.EOF after END_STREAM, or why reads fail
	bodyClosed bool
	// needsContinue is set when the client sent "Expect: 100-continue"; the
	// first body read then sends the interim 100 response it waits for.
	needsContinue bool
	// The deadlines set through http.ResponseController (deadline.go),
	// guarded by mu.
	readTimer   *time.Timer
	readGen     uint64
	readExpired bool
	writeTimer  *time.Timer

	// ended is set once the handler's end has been accounted for; only the
	// handler's goroutine uses it.
	ended bool

	// ctx is the request's context, ended by Cancel: when the handler
	// returns, the client resets the stream, or the connection ends.
	ctx  reqcontext.Context
	req  *http.Request
	body requestBody
	rw   responseWriter
}

// abort closes the stream for the handler: writes and body reads fail with
// err, and its context is cancelled.
func (st *stream) abort(err error) {
	c := st.c
	st.reset.Store(true)
	c.wmu.Lock()
	st.wclosed = true
	c.wcond.Broadcast()
	c.wmu.Unlock()
	st.mu.Lock()
	if st.bodyErr == nil {
		st.bodyErr = err
	}
	st.cond.Broadcast()
	st.mu.Unlock()
	st.ctx.Cancel()
}

// requestBody is the handler's view of the DATA the client sends.
type requestBody struct {
	st *stream
}

var errBodyAfterClose = http.ErrBodyReadAfterClose

// Read returns body bytes as they arrive, io.EOF after END_STREAM, or an
// error if the stream or connection died first.
func (b *requestBody) Read(p []byte) (int, error) {
	st := b.st
	st.mu.Lock()
	if st.needsContinue {
		st.needsContinue = false
		st.mu.Unlock()
		st.c.send100Continue(st)
		st.mu.Lock()
	}
	for st.off == len(st.buf) && st.bodyErr == nil && !st.readExpired {
		st.cond.Wait()
	}
	if st.off == len(st.buf) && st.bodyErr == nil {
		st.mu.Unlock()
		return 0, errReadDeadline
	}
	if st.bodyErr != nil && st.bodyErr != io.EOF {
		err := st.bodyErr
		st.mu.Unlock()
		return 0, err
	}
	if st.off == len(st.buf) {
		st.mu.Unlock()
		return 0, io.EOF
	}
	n := copy(p, st.buf[st.off:])
	st.off += n
	if st.off == len(st.buf) {
		st.releaseDrainedLocked()
	}
	st.mu.Unlock()
	st.c.consumed(st, int64(n))
	return n, nil
}

// Close discards the body; later DATA is discarded too, and its connection
// window given back.
func (b *requestBody) Close() error {
	st := b.st
	st.mu.Lock()
	discarded := int64(len(st.buf) - st.off)
	st.buf = nil
	st.off = 0
	st.bodyClosed = true
	st.needsContinue = false
	if st.bodyErr == nil || st.bodyErr == io.EOF {
		st.bodyErr = errBodyAfterClose
	}
	st.mu.Unlock()
	if discarded > 0 {
		st.c.giveBack(discarded)
	}
	return nil
}

// consumed grants back window for n body bytes the handler has read,
// batched so that WINDOW_UPDATEs go out per quarter window, not per frame.
func (c *conn) consumed(st *stream, n int64) {
	var streamInc int64
	if !st.remoteClosed.Load() {
		if st.unacked.Add(n) >= int64(c.srv.streamWindow)/4 {
			streamInc = st.unacked.Swap(0)
			st.inflow.Add(streamInc)
		}
	}
	connInc := c.takeConnCredit(n)
	if streamInc <= 0 && connInc <= 0 {
		return
	}
	c.lockWrite()
	if c.werr == nil {
		if streamInc > 0 && !st.wclosed {
			c.wfr.WriteWindowUpdate(st.id, uint32(streamInc))
		}
		if connInc > 0 {
			c.wfr.WriteWindowUpdate(0, uint32(connInc))
		}
	}
	c.unlockWrite()
}

// takeConnCredit adds n consumed bytes to the connection's pending credit
// and returns the increment to send now, if the batch is big enough.
func (c *conn) takeConnCredit(n int64) int64 {
	if c.unacked.Add(n) < int64(c.srv.connWindow)/4 {
		return 0
	}
	inc := c.unacked.Swap(0)
	c.inflow.Add(inc)
	return inc
}

// giveBack returns connection window for bytes discarded rather than read;
// it may run on the reading goroutine, so it queues without flushing itself.
func (c *conn) giveBack(n int64) error {
	inc := c.takeConnCredit(n)
	if inc <= 0 {
		return nil
	}
	if !c.queueControl(func() { c.wfr.WriteWindowUpdate(0, uint32(inc)) }) {
		return errFlood
	}
	return nil
}

// processData appends a DATA frame's payload to its stream's body, enforcing
// both receive windows and the declared content length.
func (c *conn) processData(f *http2.DataFrame) error {
	id := f.StreamID
	n := int64(f.Length)
	if c.inflow.Add(-n) < 0 {
		return http2.ConnectionError(errCodeFlowControl)
	}
	data := f.Data()
	c.smu.Lock()
	st := c.streams[id]
	if st == nil || st.remoteClosed.Load() {
		idle := st == nil && id > c.maxStreamID
		_, resetHere := c.closed.lookup(id)
		c.smu.Unlock()
		if err := c.giveBack(n); err != nil {
			return err
		}
		switch {
		case idle:
			return http2.ConnectionError(errCodeProtocol)
		case st == nil && resetHere:
			// Sent before the client saw our RST_STREAM (RFC 9113 §5.1).
			return nil
		}
		return http2.StreamError{StreamID: id, Code: errCodeStreamClose}
	}
	if st.inflow.Add(-n) < 0 {
		c.smu.Unlock()
		c.giveBack(n)
		return http2.StreamError{StreamID: id, Code: errCodeFlowControl}
	}
	st.recvLen += int64(len(data))
	end := f.StreamEnded()
	if st.declLen >= 0 && (st.recvLen > st.declLen || end && st.recvLen != st.declLen) {
		c.smu.Unlock()
		c.giveBack(n)
		return http2.StreamError{StreamID: id, Code: errCodeProtocol, Cause: errors.New("content-length mismatch")}
	}
	st.mu.Lock()
	kept := !st.bodyClosed
	if kept {
		st.appendBodyLocked(data)
	}
	if end {
		st.remoteClosed.Store(true)
		if st.bodyErr == nil {
			st.bodyErr = io.EOF
		}
	}
	st.cond.Signal()
	st.mu.Unlock()
	c.smu.Unlock()
	// Padding, and data nobody will read, count against the windows but are
	// given back at once.
	if !kept {
		st.inflow.Add(n)
		return c.giveBack(n)
	}
	if pad := n - int64(len(data)); pad > 0 {
		return c.giveBackPadding(st, pad)
	}
	return nil
}

// appendBodyLocked buffers request body bytes; st.mu is held. The bytes the
// handler has already read are dropped first whenever the buffer would
// otherwise grow: a reader that never quite catches up leaves the buffer
// never empty, and it must hold at most a window's worth, not the whole body.
func (st *stream) appendBodyLocked(data []byte) {
	if st.off > 0 && len(st.buf)+len(data) > cap(st.buf) {
		n := copy(st.buf, st.buf[st.off:])
		st.buf = st.buf[:n]
		st.off = 0
	}
	st.buf = append(st.buf, data...)
}

// giveBackPadding returns the window a kept DATA frame's padding used. The
// client counts padding against the stream window too (RFC 9113 §6.1) and
// no body read gives it back, so the stream needs its WINDOW_UPDATE as well,
// or a client that pads runs out of window and stalls. It runs on the
// reading goroutine, so it queues without flushing itself.
func (c *conn) giveBackPadding(st *stream, n int64) error {
	var streamInc int64
	if !st.remoteClosed.Load() && st.unacked.Add(n) >= int64(c.srv.streamWindow)/4 {
		streamInc = st.unacked.Swap(0)
		st.inflow.Add(streamInc)
	}
	connInc := c.takeConnCredit(n)
	if streamInc <= 0 && connInc <= 0 {
		return nil
	}
	if !c.queueControl(func() {
		if streamInc > 0 && !st.wclosed {
			c.wfr.WriteWindowUpdate(st.id, uint32(streamInc))
		}
		if connInc > 0 {
			c.wfr.WriteWindowUpdate(0, uint32(connInc))
		}
	}) {
		return errFlood
	}
	return nil
}

// processHeaders opens a stream, or takes a stream's trailers.
func (c *conn) processHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return http2.ConnectionError(errCodeProtocol)
	}
	// A stream cannot depend on itself (RFC 9113 §5.3.1). The check comes
	// once the id is recorded as used, so that the refused stream cannot be
	// opened again.
	selfDependent := f.HasPriority() && f.Priority.StreamDep == id
	c.smu.Lock()
	if st := c.streams[id]; st != nil {
		c.smu.Unlock()
		if selfDependent {
			return http2.StreamError{StreamID: id, Code: errCodeProtocol}
		}
		if f.Truncated {
			return http2.StreamError{StreamID: id, Code: errCodeProtocol, Cause: errors.New("trailers too large")}
		}
		return c.processTrailers(st, f)
	}
	if id <= c.maxStreamID {
		err := c.headersOnClosedStreamLocked(id)
		c.smu.Unlock()
		return err
	}
	c.maxStreamID = id
	switch {
	case selfDependent:
		c.smu.Unlock()
		return http2.StreamError{StreamID: id, Code: errCodeProtocol}
	case c.goingAway:
		c.smu.Unlock()
		return http2.StreamError{StreamID: id, Code: errCodeRefused}
	case c.running >= 2*int(c.srv.maxStreams):
		// Handlers of streams the client reset have not finished: a client
		// that keeps opening and resetting streams (CVE-2023-44487) would
		// otherwise make us run handlers without bound.
		c.smu.Unlock()
		return errFlood
	case c.open >= int(c.srv.maxStreams):
		c.smu.Unlock()
		return http2.StreamError{StreamID: id, Code: errCodeRefused}
	}
	c.smu.Unlock()
	if f.Truncated {
		return c.answerHeaderListTooLong(id, f.StreamEnded())
	}

	st := c.newStream(id)
	if err := c.buildRequest(st, f); err != nil {
		st.ctx.Cancel()
		return err
	}
	c.smu.Lock()
	c.streams[id] = st
	c.open++
	c.running++
	c.handlers.Add(1)
	c.smu.Unlock()
	c.srv.workers.submit(st)
	return nil
}

// answerHeaderListTooLong answers a request whose header list exceeded
// SETTINGS_MAX_HEADER_LIST_SIZE with 431, as net/http does, without running
// a handler; the HPACK state is intact (the Framer decoded the whole block),
// so the connection and its other streams carry on.
func (c *conn) answerHeaderListTooLong(id uint32, ended bool) error {
	ok := c.queueControl(func() {
		c.writeHeaderBlockLocked(id, http.StatusRequestHeaderFieldsTooLarge, nil, "0", true, true)
		if !ended {
			// We will not read its body (RFC 9113 §8.1).
			c.wfr.WriteRSTStream(id, errCodeNo)
		}
	})
	if !ok {
		return errFlood
	}
	return nil
}

// newStream allocates a stream with its windows set.
func (c *conn) newStream(id uint32) *stream {
	st := &stream{c: c, id: id, declLen: -1}
	st.cond.L = &st.mu
	st.inflow.Store(int64(c.srv.streamWindow))
	c.wmu.Lock()
	st.sendWindow = int64(c.peerWindow)
	c.wmu.Unlock()
	st.ctx.Init(c.baseCtx)
	st.body.st = st
	st.rw.st = st
	return st
}

// processTrailers fills the request's trailers from a trailing HEADERS
// frame, which must end the stream and carry no pseudo-header.
func (c *conn) processTrailers(st *stream, f *http2.MetaHeadersFrame) error {
	if st.remoteClosed.Load() {
		return http2.StreamError{StreamID: st.id, Code: errCodeStreamClose}
	}
	if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
		return http2.StreamError{StreamID: st.id, Code: errCodeProtocol}
	}
	if st.declLen >= 0 && st.recvLen != st.declLen {
		return http2.StreamError{StreamID: st.id, Code: errCodeProtocol, Cause: errors.New("content-length mismatch")}
	}
	st.mu.Lock()
	for _, hf := range f.RegularFields() {
		if !validRegularField(hf) {
			st.mu.Unlock()
			return http2.StreamError{StreamID: st.id, Code: errCodeProtocol}
		}
		key := canonicalKey(hf.Name)
		if st.req.Trailer != nil {
			if _, declared := st.req.Trailer[key]; declared {
				st.req.Trailer[key] = append(st.req.Trailer[key], hf.Value)
			}
		}
	}
	st.remoteClosed.Store(true)
	if st.bodyErr == nil {
		st.bodyErr = io.EOF
	}
	st.cond.Signal()
	st.mu.Unlock()
	return nil
}

// send100Continue tells a client that waits before sending its body to go
// ahead (RFC 9110 §10.1.1).
func (c *conn) send100Continue(st *stream) {
	c.lockWrite()
	if c.writableLocked(st) == nil {
		c.writeHeaderBlockLocked(st.id, http.StatusContinue, nil, "", false, false)
	}
	c.unlockWrite()
}
