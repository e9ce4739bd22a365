package h2

import (
	"errors"
	"net"
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
// running leave their bytes for it.

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

// releaseOutLocked gives the output buffers back to their pools when the
// connection is idle: its reader waits without a buffer, no handler runs,
// and nothing is queued, written, or about to be appended. wmu is held; the
// buffers are only ever used under wmu, except the one a flush is writing,
// which flushing guards. A writer that comes later takes new ones.
func (c *conn) releaseOutLocked() {
	if !c.readParked.Load() || c.handlers.Load() != 0 || c.writers.Load() != 0 || c.flushing || len(c.out.b) != 0 {
		return
	}
	putOutBuffer(c.out.b)
	putOutBuffer(c.spare)
	c.out.b, c.spare = nil, nil
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
// held, but releases it while writing.
func (c *conn) flushLocked() {
	if c.flushing {
		return
	}
	c.flushing = true
	for len(c.out.b) > 0 {
		if c.werr != nil {
			c.out.b = c.out.b[:0]
			break
		}
		buf := c.out.b
		c.out.b = c.spare[:0]
		c.spare = nil
		c.pendingCtl = 0
		c.wmu.Unlock()
		err := c.writeSocket(buf)
		if err != nil {
			// Closed before wmu is taken again: closing a socket waits for a
			// read in progress to return, and the reading goroutine may be
			// waiting for wmu inside its read (see onReadIdle).
			c.nc.Close()
		}
		c.wmu.Lock()
		if cap(buf) <= maxSpareBuffer {
			c.spare = buf[:0]
		}
		if err != nil && c.werr == nil {
			c.werr = err
		}
		c.wcond.Broadcast()
	}
	c.flushing = false
	// finalFlush may be waiting for this flush to end.
	c.wcond.Broadcast()
	c.releaseOutLocked()
}

// writeSocket writes buf, bounding each stall by WriteByteTimeout: the
// deadline is renewed whenever the peer has accepted some bytes.
func (c *conn) writeSocket(buf []byte) error {
	to := c.srv.writeByteTO
	for len(buf) > 0 {
		if to > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(to))
		}
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

// kickLocked makes sure output appended by the reading goroutine gets
// written. The reader must never block on the socket (a peer that writes
// without reading would deadlock us), so when no writer is around to flush,
// a short-lived goroutine does it.
func (c *conn) kickLocked() {
	if c.flushing || c.writers.Load() > 0 || len(c.out.b) == 0 || c.werr != nil {
		return
	}
	c.flushing = true
	go func() {
		c.wmu.Lock()
		c.flushing = false
		c.flushLocked()
		c.wmu.Unlock()
	}()
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

// finalFlush writes whatever is queued (such as a GOAWAY) before the
// connection is closed, bounded in time.
func (c *conn) finalFlush() {
	grace := closeWriteGrace
	if to := c.srv.writeByteTO; to > 0 && to < grace {
		grace = to
	}
	c.nc.SetWriteDeadline(time.Now().Add(grace))
	c.wmu.Lock()
	// A flush running elsewhere may still be writing; wait for it, so that
	// what we queued last (the GOAWAY) is written before the close.
	for i := 0; c.flushing && c.werr == nil && i < 1000; i++ {
		c.wcond.Wait()
	}
	c.flushLocked()
	c.wmu.Unlock()
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
