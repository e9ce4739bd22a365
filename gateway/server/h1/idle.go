package h1

import "sync"

// idleReader is a connection that can read without holding a buffer while nothing
// has arrived: package server's connections, where their sockets are read with raw
// system calls. A connection waiting for its client's next request then hands its
// buffers back to a pool, so that an idle keep-alive connection costs little more
// than its goroutine; a busy one, whose next request is there when it looks, keeps
// them, and no connection makes more system calls for it.
type idleReader interface {
	// CanWaitIdle reports whether the connection offers ReadIdle.
	CanWaitIdle() bool
	// ReadIdle reads into p; when nothing has arrived it gives the buffer to
	// release before waiting, and reads into one from acquire once something has.
	// It returns the buffer read into (nil when it failed holding none).
	ReadIdle(p []byte, release func([]byte), acquire func() []byte) ([]byte, int, error)
}

// buffers holds the read and write buffers of idle connections' next requests.
var buffers = sync.Pool{New: func() any { return new([initialBuffer]byte) }}

func getBuffer() []byte { return buffers.Get().(*[initialBuffer]byte)[:] }

// putBuffer returns a buffer of the pool's size; a grown one is left to the
// collector, so that a connection that once needed more starts small again.
func putBuffer(b []byte) {
	if cap(b) == initialBuffer {
		buffers.Put((*[initialBuffer]byte)(b[:initialBuffer]))
	}
}

// fillIdle is fill for a connection awaiting its next request with nothing
// buffered: when nothing has arrived yet, it waits without its buffers.
func (c *conn) fillIdle() error {
	if c.idle == nil {
		return c.fill()
	}
	buf, n, err := c.idle.ReadIdle(c.rbuf, c.releaseIdleFn, getBuffer)
	c.rbuf = buf
	return c.filled(n, err)
}

// releaseIdle takes the read buffer a waiting connection gives back, and the
// response's buffers with it.
func (c *conn) releaseIdle(rbuf []byte) {
	putBuffer(rbuf)
	putBuffer(c.resp.wbuf)
	putBuffer(c.resp.head)
	c.rbuf, c.resp.wbuf, c.resp.head = nil, nil, nil
}

// CanWaitIdle reports whether the connection handed over can wait without a
// buffer, so that the server it goes to (HTTP/2 for h2c) may do so too.
func (rc *replayConn) CanWaitIdle() bool {
	ir, ok := rc.Conn.(idleReader)
	return ok && ir.CanWaitIdle()
}

// ReadIdle is the connection's ReadIdle, after the bytes read ahead have been
// returned (into p, or a buffer from acquire when p is nil); only when
// CanWaitIdle.
func (rc *replayConn) ReadIdle(p []byte, release func([]byte), acquire func() []byte) ([]byte, int, error) {
	if len(rc.pending) > 0 {
		if p == nil {
			p = acquire()
		}
		n, err := rc.Read(p)
		return p, n, err
	}
	return rc.Conn.(idleReader).ReadIdle(p, release, acquire)
}
