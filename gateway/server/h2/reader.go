package h2

import (
	"net"
	"sync"
)

// idleReader is a connection that can wait for input without holding a
// buffer: package server's connections, whose sockets are read with raw
// system calls. An HTTP/2 connection waiting for its client's next frame
// then hands its read buffer back to a pool, and its output buffers with it,
// so that an idle connection costs little more than its goroutine and its
// protocol state. A connection whose next frame is there when it looks keeps
// its buffers, and no connection makes more system calls for it.
type idleReader interface {
	// CanWaitIdle reports whether the connection offers ReadIdle.
	CanWaitIdle() bool
	// ReadIdle reads into p; when nothing has arrived it gives the buffer to
	// release before waiting, and reads into one from acquire once something
	// has. It returns the buffer read into (nil when it failed holding none).
	ReadIdle(p []byte, release func([]byte), acquire func() []byte) ([]byte, int, error)
}

// readBuffers holds the read buffers of connections waiting for input.
var readBuffers = sync.Pool{New: func() any { return new([readBufferSize]byte) }}

func getReadBuffer() []byte { return readBuffers.Get().(*[readBufferSize]byte)[:] }

// putReadBuffer returns a read buffer to its pool. Only buffers of the pool's
// size come and go, but the check keeps a foreign one out.
func putReadBuffer(b []byte) {
	if cap(b) == readBufferSize {
		readBuffers.Put((*[readBufferSize]byte)(b[:readBufferSize]))
	}
}

// connReader is a connection's buffered reader, in place of a bufio.Reader
// because it may give its buffer back between frames (see await). It is
// used only by the connection's reading goroutine.
type connReader struct {
	nc net.Conn
	// idle is nc when it can wait without a buffer, else nil.
	idle idleReader
	// buf holds bytes read but not consumed, in buf[r:w]; it is nil while
	// given back.
	buf  []byte
	r, w int
	// err is a read error that arrived with the last bytes read, or while
	// awaiting the next frame; Read returns it once the bytes are consumed.
	err error
	// delivered counts the bytes Read has returned, so that the connection
	// can tell how large a frame it just read (see conn.readFrame).
	delivered int64
	// released is set when the last await gave its buffer back, that is,
	// when the connection waited with nothing to read.
	released bool
	// releaseFn and acquireFn are the callbacks of ReadIdle, made once.
	releaseFn func([]byte)
	acquireFn func() []byte
}

func (rd *connReader) init(nc net.Conn, onRelease func()) {
	rd.nc = nc
	if ir, ok := nc.(idleReader); ok && ir.CanWaitIdle() {
		rd.idle = ir
	}
	rd.releaseFn = func(b []byte) {
		putReadBuffer(b)
		rd.buf = nil
		rd.released = true
		onRelease()
	}
	rd.acquireFn = getReadBuffer
}

// Read reads as bufio.Reader's Read does: from the buffer when it holds
// bytes, else with one read of the connection, straight into p when p is at
// least as large as the buffer.
func (rd *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if rd.r == rd.w {
		if err := rd.err; err != nil {
			rd.err = nil
			return 0, err
		}
		if len(p) >= readBufferSize {
			n, err := rd.nc.Read(p)
			rd.delivered += int64(n)
			return n, err
		}
		if rd.buf == nil {
			rd.buf = getReadBuffer()
		}
		n, err := rd.nc.Read(rd.buf)
		rd.r, rd.w = 0, n
		if n == 0 {
			return 0, err
		}
		rd.err = err
	}
	n := copy(p, rd.buf[rd.r:rd.w])
	rd.r += n
	rd.delivered += int64(n)
	return n, nil
}

// buffered reports whether bytes (or an error) wait to be consumed.
func (rd *connReader) buffered() bool { return rd.r < rd.w || rd.err != nil }

// await waits for the next bytes when nothing is buffered, on a connection
// that can wait without its buffer: if nothing has arrived, the buffer goes
// back to the pool before the wait (and the release callback lets the
// connection give back more). It is called between frames only, so a
// partial frame always keeps the buffer. It reports whether the buffer was
// given back; an error is kept for Read.
func (rd *connReader) await() bool {
	if rd.idle == nil || rd.buffered() {
		return false
	}
	rd.released = false
	buf, n, err := rd.idle.ReadIdle(rd.buf, rd.releaseFn, rd.acquireFn)
	rd.buf = buf
	rd.r, rd.w, rd.err = 0, n, err
	return rd.released
}

// close gives the buffer back for good; the connection reads no more.
func (rd *connReader) close() {
	if rd.buf != nil {
		putReadBuffer(rd.buf)
		rd.buf = nil
	}
	rd.r, rd.w = 0, 0
}
