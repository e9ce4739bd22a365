package h2

import "golang.org/x/net/http2"

// bigFrame is the frame size above which the read Framer's buffer, which
// grows to the largest frame read and never shrinks, is dropped with the
// Framer when the connection goes idle. Smaller buffers cost less than making
// a new Framer at each wake-up would.
const bigFrame = 1 << 10

// readFrame reads the next frame. Between frames, on a connection that can
// wait without its buffers, it first waits for the next bytes that way (see
// connReader.await).
func (c *conn) readFrame() (http2.Frame, error) {
	if c.rd.idle != nil && !c.rd.buffered() {
		c.awaitInput()
	}
	before := c.rd.delivered
	f, err := c.fr.ReadFrame()
	if hf, ok := f.(*http2.HeadersFrame); ok && err == nil {
		var mh *http2.MetaHeadersFrame
		if mh, err = c.hblock.read(c.fr, hf); err == nil {
			f = mh
		} else {
			f = nil
			c.hblock.release()
		}
	}
	if c.rd.delivered-before > bigFrame {
		c.frBig = true
	}
	return f, err
}

// awaitInput waits for input between frames, without the buffers if the
// connection can (see connReader.await), and takes a new read Framer if the
// wait dropped the old one.
func (c *conn) awaitInput() {
	if c.rd.await() {
		c.readParked.Store(false)
	}
	if c.fr == nil {
		c.fr = c.newReadFramer()
	}
}

// onReadIdle runs on the reading goroutine when it is about to wait for input
// with nothing buffered, having given its read buffer back: the output buffers
// follow if nothing uses them, and so does a read Framer grown by a large frame
// unless a request body is still arriving, whose next frames would grow a new
// one again.
//
// It runs inside the read, in the poller's callback, where the socket cannot be
// closed: closing it waits for the read to return. So no one may close the
// socket while holding smu or wmu, which this takes in turn (see flushLocked).
func (c *conn) onReadIdle() {
	if c.frBig && !c.receivingBody() {
		// Between frames the Framer holds no state but its buffer: the HPACK
		// decoder, which does, is the connection's, and a header block is
		// always read whole.
		c.fr = nil
		c.frBig = false
	}
	c.readParked.Store(true)
	c.wmu.Lock()
	c.releaseOutLocked()
	c.wmu.Unlock()
}

// receivingBody reports whether a stream's request body is still arriving.
func (c *conn) receivingBody() bool {
	c.smu.Lock()
	defer c.smu.Unlock()
	for _, st := range c.streams {
		if !st.remoteClosed.Load() {
			return true
		}
	}
	return false
}
