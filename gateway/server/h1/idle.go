package h1

import "sync"

// idleWaiter is a connection that can wait for input without a buffer to read it
// into: package server's connections, where their sockets are read with raw system
// calls. A connection waiting for its client's next request then hands its read
// and write buffers back to a pool, so that an idle keep-alive connection costs
// little more than its goroutine; a busy one, whose next request is there when it
// looks, keeps them.
type idleWaiter interface {
	// CanWaitIdle reports whether the connection offers the two methods below.
	CanWaitIdle() bool
	// TryRead reads what is there without waiting; ok is false when nothing is.
	TryRead(p []byte) (n int, ok bool, err error)
	// WaitReadable waits, within the read deadline, until a read would find
	// something (bytes, the end of the stream or an error), without reading.
	WaitReadable() error
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
	n, ok, err := c.idle.TryRead(c.rbuf)
	if ok {
		return c.filled(n, err)
	}
	putBuffer(c.rbuf)
	putBuffer(c.resp.wbuf)
	putBuffer(c.resp.head)
	c.rbuf, c.resp.wbuf, c.resp.head = nil, nil, nil
	if err := c.idle.WaitReadable(); err != nil {
		return err
	}
	c.rbuf = getBuffer()
	return c.fill()
}
