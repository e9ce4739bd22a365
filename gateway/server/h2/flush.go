package h2

import (
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// Flushing: how the output buffer reaches the socket (see write.go for how
// it is filled).
//
// The writer that flushes is usually a handler, and it writes to the socket
// itself: that saves waking another goroutine for every response. But a
// handler must never stay blocked in a socket write, where nothing aimed at
// its stream (the client's RST_STREAM, WriteTimeout, its context) could
// release it. So a handler writes with a short deadline, directWriteGrace,
// and when the socket has not taken everything by then, it hands the rest
// over to a flusher goroutine and returns; from then on it waits, if it has
// to, on c.wcond, which a reset or an expired deadline broadcasts. The
// flusher writes with the WriteByteTimeout deadline and carries on until the
// buffer is empty. Whoever flushes owns c.flushing, and only its owner
// writes to the socket, so the bytes of a frame written in part are never
// followed by anything but their rest.
//
// On a TLS connection a write that times out corrupts the connection for
// good (crypto/tls makes every write error permanent), so there the short
// deadline is not an option: every flush is handed to a flusher goroutine.

// directWriteGrace is how long a handler's socket write may take before the
// rest is handed over to a flusher goroutine. The deadline is renewed only
// once less than half of it is left, so that a busy connection does not
// reset its deadline at every write; a handler thus waits at least half of
// it.
const directWriteGrace = 4 * time.Millisecond

// flushState is the part of a connection's output side that concerns
// flushing, the count of streams whose last frames wait in the output
// buffer, and the bound on waiting for flow-control window.
type flushState struct {
	// ends packs, in one word so that a finishing handler can add to it
	// without wmu, the generation of the output buffer (how many buffers
	// have been swapped out for writing, in the high bits) and the count of
	// streams whose last frames are in it and that are still counted as
	// open (see holdOpen). It is swapped for the next generation when the
	// buffer is.
	ends atomic.Uint64
	// leaving counts the handlers that have queued their stream's end (or
	// a reset) and not yet taken the stream out of the table; a flush in
	// progress leaves the output to them (see writeOutLocked).
	leaving atomic.Int32
	// wdeadline is the write deadline set on the socket, owned by whoever
	// holds c.flushing; a zero time means none.
	wdeadline time.Time
	// cutoff, when not zero, is the time (in Unix nanoseconds) past which
	// no write may continue: the connection is being closed (see
	// finalFlush).
	cutoff atomic.Int64
	// windowTimer wakes the writers waiting for flow-control window when
	// one of them has waited WriteByteTimeout (see waitWindowLocked); it is
	// made at the first such wait. windowWake is when it fires next, or
	// zero. Both are guarded by wmu.
	windowTimer *time.Timer
	windowWake  time.Time
}

// waitLocked waits for a change in flow-control windows, the output buffer,
// or the stream and connection state. It is called by an announced writer
// holding wmu; while it waits it is not counted as a writer, and it flushes
// first if nobody else will, since the peer may be waiting for those bytes
// before it grants more window.
//
// A flush releases the lock, and a window update or reset that arrived
// meanwhile has already been broadcast; so after flushing it returns at once
// for the caller to re-check its condition, and waits only when it has held
// the lock since that check.
func (c *conn) waitLocked() {
	if c.writers.Add(-1) == 0 && len(c.out.b) > 0 && !c.flushing {
		c.flushLocked()
		c.writers.Add(1)
		return
	}
	if c.werr == nil {
		c.wcond.Wait()
	}
	c.writers.Add(1)
}

// flushLocked writes c.out to the socket unless another flush is running,
// which will then write it. It is called with wmu held and returns with wmu
// held, but releases it while writing. It returns once the socket has taken
// everything or has been handed over to a flusher goroutine.
func (c *conn) flushLocked() {
	if c.flushing {
		return
	}
	c.flushing = true
	if c.tlsState != nil {
		go c.flushBehind(nil, nil)
		return
	}
	c.writeOutLocked(flushDirect)
}

// flushMode says who is writing the output buffer out.
type flushMode int

const (
	// flushDirect is a handler flushing on its own goroutine, which holds
	// each write to directWriteGrace.
	flushDirect flushMode = iota
	// flushByGoroutine is a flusher goroutine, which waits for a slow socket.
	flushByGoroutine
	// flushFinal is the last flush before the connection closes, which
	// writes everything queued whoever else is about.
	flushFinal
)

// writeOutLocked writes c.out until it is empty; c.flushing is set and owned
// by the caller, and it is cleared on return unless the rest of the output
// has been handed over to a flusher goroutine. A direct writer (a handler)
// writes each buffer with a short deadline and hands over what the socket did
// not take in time; the flusher goroutine waits as long as WriteByteTimeout
// allows.
//
// Except for the final flush, it stops while a handler that queued its
// stream's end has not yet taken the stream out of the table: that end must
// not reach the client before, or a client at its concurrent stream limit
// that opens another stream at once would be refused for the stream still
// counted. The handler is an announced writer, so it, or the last writer
// announced after it, flushes when done (see unlockWrite).
func (c *conn) writeOutLocked(mode flushMode) {
	for len(c.out.b) > 0 {
		if mode != flushFinal && c.leaving.Load() > 0 && c.werr == nil {
			break
		}
		if c.werr != nil {
			// The connection is going down, and teardown forgets the open
			// streams, including those whose ends were still queued.
			c.out.b = c.out.b[:0]
			c.nextGenLocked()
			break
		}
		buf := c.out.b
		c.out.b = c.spare[:0]
		c.spare = nil
		c.pendingCtl = 0
		ends := c.nextGenLocked()
		c.wmu.Unlock()
		if ends > 0 {
			// These streams' last frames go out now; they no longer count
			// against the client's concurrent streams (see holdOpen).
			c.releaseOpen(ends)
		}
		var rest []byte
		var err error
		if mode == flushDirect {
			rest, err = c.writeDirect(buf)
		} else {
			err = c.writeSocket(buf)
		}
		if err != nil {
			// Closed before wmu is taken again: closing a socket waits for a
			// read in progress to return, and the reading goroutine may be
			// waiting for wmu inside its read (see onReadIdle).
			c.nc.Close()
		}
		c.wmu.Lock()
		if len(rest) > 0 {
			// The socket is slow: a flusher goroutine writes the rest, and
			// owns c.flushing until the buffer is empty.
			go c.flushBehind(buf, rest)
			return
		}
		c.wroteLocked(buf, err)
	}
	c.flushing = false
	// finalFlush may be waiting for this flush to end.
	c.wcond.Broadcast()
	c.releaseOutLocked()
}

// wroteLocked records the end of the write of buf, which may now be reused,
// and wakes the writers waiting for room in the buffer.
func (c *conn) wroteLocked(buf []byte, err error) {
	if cap(buf) <= maxSpareBuffer {
		c.spare = buf[:0]
	}
	if err != nil && c.werr == nil {
		c.werr = err
	}
	c.wcond.Broadcast()
}

// flushBehind is a flusher goroutine: it owns c.flushing, writes rest, the
// tail of buf whose head a handler wrote, if any, and then whatever has been
// queued, waiting for the socket as long as WriteByteTimeout allows.
func (c *conn) flushBehind(buf, rest []byte) {
	if buf != nil {
		err := c.writeSocket(rest)
		if err != nil {
			c.nc.Close()
		}
		c.wmu.Lock()
		c.wroteLocked(buf, err)
	} else {
		c.wmu.Lock()
	}
	c.writeOutLocked(flushByGoroutine)
	c.wmu.Unlock()
}

// writeDirect writes buf on behalf of a handler, for at most about
// directWriteGrace, and returns what the socket did not take by then.
func (c *conn) writeDirect(buf []byte) ([]byte, error) {
	now := time.Now()
	if left := c.wdeadline.Sub(now); left < directWriteGrace/2 || left > directWriteGrace {
		c.wdeadline = now.Add(directWriteGrace)
		c.nc.SetWriteDeadline(c.wdeadline)
	}
	n, err := c.nc.Write(buf)
	if err == nil {
		return nil, nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && c.cutoff.Load() == 0 {
		return buf[n:], nil
	}
	return nil, err
}

// writeSocket writes buf, bounding each stall by WriteByteTimeout: the
// deadline is renewed whenever the peer has accepted some bytes. Once the
// connection is being closed, the cutoff bounds it instead.
func (c *conn) writeSocket(buf []byte) error {
	for len(buf) > 0 {
		c.setWriteDeadline()
		n, err := c.nc.Write(buf)
		buf = buf[n:]
		if err != nil {
			var ne net.Error
			if n > 0 && errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
	}
	return nil
}

// setWriteDeadline sets the deadline of a flusher's write: WriteByteTimeout
// from now, or none, but never past the cutoff.
func (c *conn) setWriteDeadline() {
	var d time.Time
	if to := c.srv.writeByteTO; to > 0 {
		d = time.Now().Add(to)
	}
	cut := c.cutoff.Load()
	if cut != 0 && (d.IsZero() || d.UnixNano() > cut) {
		d = time.Unix(0, cut)
	}
	if d.IsZero() && c.wdeadline.IsZero() {
		return
	}
	c.wdeadline = d
	c.nc.SetWriteDeadline(d)
	if cut == 0 && c.cutoff.Load() != 0 {
		// finalFlush set the cutoff, and its deadline, meanwhile.
		c.nc.SetWriteDeadline(time.Unix(0, c.cutoff.Load()))
	}
}

// kickLocked makes sure output appended by the reading goroutine gets
// written. The reader must never block on the socket (a peer that writes
// without reading would deadlock us), so when no writer is around to flush,
// a short-lived goroutine does it.
func (c *conn) kickLocked() {
	if c.flushing || c.writers.Load() > 0 || len(c.out.b) == 0 || c.werr != nil {
		return
	}
	c.flushing = true
	go c.flushBehind(nil, nil)
}

// finalFlush writes whatever is queued (such as a GOAWAY) before the
// connection is closed, bounded in time: the cutoff also bounds a flush
// already running.
func (c *conn) finalFlush() {
	grace := closeWriteGrace
	if to := c.srv.writeByteTO; to > 0 && to < grace {
		grace = to
	}
	cut := time.Now().Add(grace)
	c.cutoff.Store(cut.UnixNano())
	c.nc.SetWriteDeadline(cut)
	c.wmu.Lock()
	// A flush running elsewhere may still be writing; wait for it, so that
	// what we queued last (the GOAWAY) is written before the close.
	for i := 0; c.flushing && c.werr == nil && i < 1000; i++ {
		c.wcond.Wait()
	}
	if !c.flushing {
		c.flushing = true
		c.writeOutLocked(flushFinal)
	}
	c.wmu.Unlock()
}

// releaseOpen stops counting n streams whose last frames are being written
// as open. It takes smu, so it is called without wmu.
func (c *conn) releaseOpen(n int) {
	c.smu.Lock()
	if !c.dead {
		c.open -= n
		if c.open == 0 && c.idleTimer != nil {
			c.idleSince = time.Now()
		}
	}
	c.smu.Unlock()
}

// endsGenShift places the output buffer's generation in c.ends; the count
// below it never exceeds the streams a connection may have.
const endsGenShift = 32

// nextGenLocked moves c.ends to the next output buffer and returns the count
// of streams held open for the one just swapped out; wmu is held.
func (c *conn) nextGenLocked() int {
	old := c.ends.Swap((c.ends.Load()>>endsGenShift + 1) << endsGenShift)
	return int(old & (1<<endsGenShift - 1))
}

// holdOpen keeps st, whose handler has finished and which is leaving the
// stream table, counted as open while its last frames wait in the output
// buffer, and reports whether it did; the flush that takes them releases
// it (see releaseOpen). smu is held; wmu need not be, since the count and
// the generation change together in one word: either the buffer is still
// the one st's end went into and the count that its swap takes includes
// st, or it has been swapped and st is not held.
//
// A stream's slot is what bounds the output a client that does not read
// can make us queue: a handler that writes a body waits for room in the
// buffer, but one whose response is only a header block (a 204, a 304, an
// error, the answer to HEAD) would otherwise end its stream at once, and the
// client could open streams, and have responses queued, without end. Held
// this way, its concurrent streams limit what is queued, as in x/net/http2,
// and the handler is not kept waiting. The slot is released when the buffer
// is swapped out for writing, before the client can see the stream end, so
// a client that opens a stream as soon as another ends is not refused.
func (c *conn) holdOpen(st *stream) bool {
	if !st.endQueued {
		return false
	}
	for i := 0; i < 100; i++ {
		v := c.ends.Load()
		if v>>endsGenShift != st.endGen {
			return false
		}
		if c.ends.CompareAndSwap(v, v+1) {
			return true
		}
	}
	return false
}

// queuedEndLocked notes, on the handler's goroutine, that st's last frame
// has just been appended to the output buffer; wmu is held.
func (c *conn) queuedEndLocked(st *stream) {
	st.endQueued = true
	st.endGen = c.ends.Load() >> endsGenShift
	c.countLeavingLocked(st)
}

// countLeavingLocked counts st, whose last frame (its end or a reset) has
// just been queued by its announced writer, in c.leaving until leftTable;
// wmu is held.
func (c *conn) countLeavingLocked(st *stream) {
	if !st.leaving {
		st.leaving = true
		c.leaving.Add(1)
	}
}

// leftTable ends what queuedEndLocked began, once the handler has taken st
// out of the stream table.
func (c *conn) leftTable(st *stream) {
	if st.leaving {
		st.leaving = false
		c.leaving.Add(-1)
	}
}

// errWindowStalled is what a write returns when the client granted no
// flow-control window for WriteByteTimeout.
var errWindowStalled = errors.New("h2: stream reset: no flow-control window granted in time")

// waitWindowLocked waits, as waitLocked does, for st's writer, which needs
// send window (the stream's or the connection's) and has none, and reports
// false once it has waited WriteByteTimeout since *since (set here at the
// first wait; the caller clears it whenever it gets window). A client that
// grants no window, like one that reads nothing, must not pin a handler
// beyond the limit documented for stalled readers. A timer broadcasts
// c.wcond when the first waiter's time is up; it is armed only here, so
// writes that find window cost nothing more.
func (c *conn) waitWindowLocked(since *time.Time) bool {
	to := c.srv.writeByteTO
	if to <= 0 {
		c.waitLocked()
		return true
	}
	now := time.Now()
	if since.IsZero() {
		*since = now
	}
	due := since.Add(to)
	if !now.Before(due) {
		return false
	}
	if c.windowWake.IsZero() || due.Before(c.windowWake) {
		c.windowWake = due
		if c.windowTimer == nil {
			c.windowTimer = time.AfterFunc(due.Sub(now), c.windowTimeUp)
		} else {
			c.windowTimer.Reset(due.Sub(now))
		}
	}
	c.waitLocked()
	return true
}

// windowTimeUp wakes the writers waiting for window, so that those that
// have waited too long give up; the others re-arm the timer for their own
// time.
func (c *conn) windowTimeUp() {
	c.wmu.Lock()
	if !c.windowWake.After(time.Now()) {
		// Not when the timer was re-armed for later meanwhile.
		c.windowWake = time.Time{}
	}
	c.wcond.Broadcast()
	c.wmu.Unlock()
}

// resetStalledLocked resets st, whose client granted it no window in time:
// it queues RST_STREAM CANCEL (the client broke no rule, so it is not a
// FLOW_CONTROL_ERROR; we just no longer want the stream) and closes it for
// writes. The caller, once it released wmu, takes it out of the stream
// table with closeStalled. wmu is held.
func (c *conn) resetStalledLocked(st *stream) error {
	c.wfr.WriteRSTStream(st.id, errCodeCancel)
	st.wclosed = true
	st.reset.Store(true)
	c.countLeavingLocked(st)
	return errWindowStalled
}

// closeStalled ends a stream reset by resetStalledLocked, as a client's
// reset would: it leaves the stream table, and its body reads fail and its
// context is cancelled.
func (c *conn) closeStalled(st *stream) {
	c.smu.Lock()
	c.closeStreamLocked(st, true)
	c.smu.Unlock()
	st.abort(errStreamClosed)
	// Nobody will read what the client sent; its connection window goes back.
	_ = c.giveBack(st.discardBody())
}
