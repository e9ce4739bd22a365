package h2

import (
	"fmt"
	"os"
	"time"
)

// errReadDeadline is what a body read returns once the read deadline set
// through http.ResponseController has passed. It wraps
// os.ErrDeadlineExceeded, like net/http's.
var errReadDeadline = fmt.Errorf("h2: request body read: %w", os.ErrDeadlineExceeded)

// SetReadDeadline makes body reads fail with an error wrapping
// os.ErrDeadlineExceeded once t has passed and no body bytes are buffered;
// a zero t clears it. Unlike net/http's, a later deadline lets reads resume,
// as on a net.Conn.
func (rw *responseWriter) SetReadDeadline(t time.Time) error {
	rw.st.setReadDeadline(t)
	return nil
}

// SetWriteDeadline resets the stream (RST_STREAM INTERNAL_ERROR) once t has
// passed, as net/http does: writes blocked or made after that fail, and the
// request body and context end too. A zero t clears it.
func (rw *responseWriter) SetWriteDeadline(t time.Time) error {
	rw.st.setWriteDeadline(t)
	return nil
}

// setReadDeadline arms, moves or clears the body read deadline.
func (st *stream) setReadDeadline(t time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.readGen++
	if st.readTimer != nil {
		st.readTimer.Stop()
		st.readTimer = nil
	}
	st.readExpired = false
	if t.IsZero() {
		return
	}
	d := time.Until(t)
	if d <= 0 {
		st.readExpired = true
		st.cond.Broadcast()
		return
	}
	gen := st.readGen
	st.readTimer = time.AfterFunc(d, func() {
		st.mu.Lock()
		if st.readGen == gen {
			st.readExpired = true
			st.cond.Broadcast()
		}
		st.mu.Unlock()
	})
}

// setWriteDeadline arms, moves or clears the write deadline. A timer that
// has already fired has reset the stream for good.
func (st *stream) setWriteDeadline(t time.Time) {
	st.mu.Lock()
	if st.writeTimer != nil {
		st.writeTimer.Stop()
		st.writeTimer = nil
	}
	if t.IsZero() {
		st.mu.Unlock()
		return
	}
	d := time.Until(t)
	if d > 0 {
		st.writeTimer = time.AfterFunc(d, func() { st.c.expireWrite(st) })
	}
	st.mu.Unlock()
	if d <= 0 {
		st.c.expireWrite(st)
	}
}

// stopTimers stops the deadline timers when the handler has returned.
func (st *stream) stopTimers() {
	st.mu.Lock()
	st.readGen++
	if st.readTimer != nil {
		st.readTimer.Stop()
	}
	if st.writeTimer != nil {
		st.writeTimer.Stop()
	}
	st.mu.Unlock()
}

// expireWrite resets a stream whose write deadline passed, unless its
// response is already complete.
func (c *conn) expireWrite(st *stream) {
	c.smu.Lock()
	c.closeStreamLocked(st, true)
	c.smu.Unlock()
	c.lockWrite()
	if c.writableLocked(st) == nil {
		c.wfr.WriteRSTStream(st.id, errCodeInternal)
		st.wclosed = true
	}
	c.unlockWrite()
	st.abort(errStreamClosed)
}
