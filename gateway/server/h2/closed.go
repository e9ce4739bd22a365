package h2

import (
	"io"

	"golang.org/x/net/http2"
)

// closedStreams remembers the streams closed most recently, so that frames
// arriving for them are answered as RFC 9113 §5.1 asks rather than all alike:
//
//   - frames on a stream this side reset (a stream error, or a response that
//     ended while the client was still sending) may have been sent before the
//     client saw the reset, and are ignored;
//   - a HEADERS frame on a stream closed otherwise is a connection error
//     STREAM_CLOSED;
//   - a HEADERS frame on an id below the highest opened that no stream had,
//     or that is too old to be remembered, is an unexpected stream identifier:
//     a connection error PROTOCOL_ERROR (§5.1.1).
//
// The memory is a small ring, so a client cannot make it grow; streams that
// fell out of it are treated as never used, which is also a connection
// error. It is guarded by the connection's smu.
type closedStreams struct {
	ids   [closedStreamMemory]uint32
	reset [closedStreamMemory]bool
	next  int
}

// closedStreamMemory is how many closed streams are remembered: more than a
// client has in flight when it sees them end (the server allows
// maxStreams at once, but frames in flight after a reset are those of the
// last few streams).
const closedStreamMemory = 64

// add records that stream id closed; resetHere says this side reset it.
func (cs *closedStreams) add(id uint32, resetHere bool) {
	cs.ids[cs.next] = id
	cs.reset[cs.next] = resetHere
	cs.next = (cs.next + 1) % closedStreamMemory
}

// lookup reports whether stream id is remembered as closed and whether this
// side reset it.
func (cs *closedStreams) lookup(id uint32) (closed, resetHere bool) {
	for i, v := range cs.ids {
		if v == id && id != 0 {
			return true, cs.reset[i]
		}
	}
	return false, false
}

// markResetLocked records that this side reset stream id, which is no longer
// in the table (or never was: a refused stream); smu is held.
func (c *conn) markResetLocked(id uint32) {
	cs := &c.closed
	for i, v := range cs.ids {
		if v == id {
			cs.reset[i] = true
			return
		}
	}
	cs.add(id, true)
}

// headersOnClosedStreamLocked answers a HEADERS frame for an id at or below the
// highest stream opened that has no stream in the table; smu is held.
func (c *conn) headersOnClosedStreamLocked(id uint32) error {
	closed, resetHere := c.closed.lookup(id)
	switch {
	case resetHere:
		// Trailers the client sent before our RST_STREAM reached it.
		return nil
	case closed:
		return http2.ConnectionError(errCodeStreamClose)
	}
	return http2.ConnectionError(errCodeProtocol)
}

// discardBody drops the request body bytes buffered and not yet read, and
// returns their count, for a stream that ended before its handler read them:
// their connection window goes back to the client at once, not when the
// handler returns.
func (st *stream) discardBody() int64 {
	st.mu.Lock()
	n := int64(len(st.buf) - st.off)
	st.buf = nil
	st.off = 0
	st.mu.Unlock()
	return n
}

// releaseDrainedLocked lets go of a drained body buffer that a burst grew past
// keptBodyBuffer, or that no more bytes will follow; st.mu is held. Without
// it, a stream that once buffered a window's worth would hold that much until
// its handler returns.
func (st *stream) releaseDrainedLocked() {
	if cap(st.buf) > keptBodyBuffer || st.bodyErr == io.EOF {
		st.buf = nil
	} else {
		st.buf = st.buf[:0]
	}
	st.off = 0
}

// keptBodyBuffer is the largest drained request body buffer a stream keeps
// for its next DATA frames: a frame of the default size and one more.
const keptBodyBuffer = 32 << 10
