package h2

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// The output side of a connection. Every frame we send is appended to one
// buffer, c.out, under c.wmu: handlers append their HEADERS and DATA frames
// themselves, and the reading goroutine appends its control replies. HPACK
// encoding happens under the same lock, so the encoder's dynamic table and the
// order of frames on the wire agree.
//
// Socket writes are coalesced. A writer announces itself in c.writers before
// taking the lock; when it is done appending it flushes only if no other
// writer has announced itself, since that one will flush (the last one out
// flushes). The flush itself swaps the buffer out and writes it without
// holding the lock, so other writers keep appending meanwhile; the flusher
// loops until the buffer is empty, and writers that arrive while a flush is
// running leave their bytes for it. A handler never waits long in a socket
// write, though: see flush.go.

const (
	// highWater is how much unflushed output a handler may add to while a
	// flush is already running; above it, handlers wait for the flush, so that
	// a fast handler cannot grow the buffer without bound.
	highWater = 256 << 10
	// maxQueuedControl bounds control replies (SETTINGS and PING acks,
	// RST_STREAMs) queued since the last flush. A client that sends more of
	// them than it reads back is flooding us.
	maxQueuedControl = 10000
	// maxSpareBuffer is the largest output buffer kept for reuse; a larger
	// one, grown by a burst, is dropped so that an idle connection does not
	// hold it.
	maxSpareBuffer = 64 << 10
	// closeWriteGrace bounds the final flush when a connection is torn down,
	// so that a client that reads nothing cannot hold the teardown.
	closeWriteGrace = time.Second
)

var (
	errConnClosed   = errors.New("h2: connection closed")
	errStreamClosed = errors.New("h2: stream reset")
)

// outBuf is the connection's output buffer: the io.Writer the output Framer
// and the HPACK encoder append to, and what DATA and HEADERS frames are
// appended to directly. Its memory comes from a pool when the first frame is
// appended and may go back to it when the connection is idle (see
// releaseOutLocked).
type outBuf struct{ b []byte }

func (o *outBuf) Write(p []byte) (int, error) {
	if len(p) > cap(o.b)-len(o.b) {
		o.grow(len(p))
	}
	o.b = append(o.b, p...)
	return len(p), nil
}

// writeFrame appends a frame, header and payload, in one copy; DATA frames
// do not go through the Framer, which would copy them twice and keep a
// buffer the size of the largest one.
func (o *outBuf) writeFrame(t http2.FrameType, flags http2.Flags, id uint32, payload []byte) {
	if n := frameHeaderLen + len(payload); n > cap(o.b)-len(o.b) {
		o.grow(n)
	}
	o.b = appendFrameHeader(o.b, t, flags, id, len(payload))
	o.b = append(o.b, payload...)
}

// frameHeaderLen is the length of a frame header (RFC 9113 §4.1).
const frameHeaderLen = 9

// appendFrameHeader appends the header of a frame with a payload of n bytes.
func appendFrameHeader(b []byte, t http2.FrameType, flags http2.Flags, id uint32, n int) []byte {
	return append(b, byte(n>>16), byte(n>>8), byte(n), byte(t), byte(flags),
		byte(id>>24)&0x7f, byte(id>>16), byte(id>>8), byte(id))
}

// Output buffers come in two pooled sizes: a small one, which the control
// frames and a small response fit, and a large one for bursts. A buffer that
// outgrows the large size is left to the collector once written.
const (
	smallOutBuffer = 4 << 10
	largeOutBuffer = maxSpareBuffer
)

var (
	smallOutBuffers = sync.Pool{New: func() any { return new([smallOutBuffer]byte) }}
	largeOutBuffers = sync.Pool{New: func() any { return new([largeOutBuffer]byte) }}
)

// grow makes room for n more bytes, moving to the next size of buffer.
func (o *outBuf) grow(n int) {
	need := len(o.b) + n
	var nb []byte
	switch {
	case need <= smallOutBuffer:
		nb = smallOutBuffers.Get().(*[smallOutBuffer]byte)[:0]
	case need <= largeOutBuffer:
		nb = largeOutBuffers.Get().(*[largeOutBuffer]byte)[:0]
	default:
		nb = make([]byte, 0, max(need, 2*cap(o.b)))
	}
	nb = append(nb, o.b...)
	putOutBuffer(o.b)
	o.b = nb
}

// putOutBuffer returns a buffer of one of the pooled sizes to its pool; the
// caller holds no other reference to it.
func putOutBuffer(b []byte) {
	switch cap(b) {
	case smallOutBuffer:
		smallOutBuffers.Put((*[smallOutBuffer]byte)(b[:smallOutBuffer]))
	case largeOutBuffer:
		largeOutBuffers.Put((*[largeOutBuffer]byte)(b[:largeOutBuffer]))
	}
}

// releaseOutLocked gives output buffers back to their pools once nothing is
// queued, written, or about to be appended: the large ones always, so that a
// connection that never waits idle (over TLS, or with a long-lived stream
// open) does not keep two of them after a burst; the small ones only when the
// connection is idle, its reader waiting without a buffer and no handler
// running, since a busy connection would take them straight back. wmu is
// held; the buffers are only ever used under wmu, except the one a flush is
// writing, which flushing guards. A writer that comes later takes new ones.
func (c *conn) releaseOutLocked() {
	if c.writers.Load() != 0 || c.flushing || len(c.out.b) != 0 {
		return
	}
	idle := c.readParked.Load() && c.handlers.Load() == 0
	if idle || cap(c.out.b) == largeOutBuffer {
		putOutBuffer(c.out.b)
		c.out.b = nil
	}
	if idle || cap(c.spare) == largeOutBuffer {
		putOutBuffer(c.spare)
		c.spare = nil
	}
}

// lockWrite announces a writer and takes the output lock.
func (c *conn) lockWrite() {
	c.writers.Add(1)
	c.wmu.Lock()
}

// unlockWrite releases the output lock, flushing first if no other writer
// has announced itself.
func (c *conn) unlockWrite() {
	if c.writers.Add(-1) == 0 {
		if len(c.out.b) > 0 {
			c.flushLocked()
		} else {
			c.releaseOutLocked()
		}
	}
	c.wmu.Unlock()
}

// queueControl runs fn, which appends one control frame, on behalf of the
// reading goroutine, and reports false if the peer is flooding us with
// frames that need replies it does not read.
func (c *conn) queueControl(fn func()) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return true
	}
	fn()
	c.pendingCtl++
	if c.pendingCtl > maxQueuedControl {
		return false
	}
	c.kickLocked()
	return true
}

// failWrites marks the output side dead and wakes every waiting writer.
func (c *conn) failWrites(err error) {
	c.wmu.Lock()
	if c.werr == nil {
		c.werr = err
	}
	c.wcond.Broadcast()
	c.wmu.Unlock()
}
