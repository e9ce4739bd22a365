//go:build linux

package rawio

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Conn reads and writes one socket. Reads and writes may run at once; reads are
// serialised among themselves, as are writes, as net.Conn does.
type Conn struct {
	conn          net.Conn
	raw           syscall.RawConn
	network       string
	local, remote net.Addr

	readMu  sync.Mutex
	readBuf []byte
	readN   int
	readErr error
	readFn  func(fd uintptr) bool
	// readIdleFn, release and acquire serve ReadIdle.
	readIdleFn func(fd uintptr) bool
	release    func([]byte)
	acquire    func() []byte

	writeMu  sync.Mutex
	writeBuf []byte
	writeN   int
	writeErr error
	writeFn  func(fd uintptr) bool

	// vecs and vecLen hold the iovecs of a gathered write (WriteBuffers) that
	// tryWritev works through; vecFn is tryWritev, made once.
	vecs    [maxVecs]syscall.Iovec
	vecBufs [maxVecs][]byte
	vecLen  int
	vecFn   func(fd uintptr) bool
}

// maxVecs is how many buffers one gathered write takes; a response head, its body
// and a chunk's end fit.
const maxVecs = 4

// New returns a Conn for c, or nil when c is not a TCP or Unix socket in
// non-blocking mode. (A socket turns blocking when its File method is called; a
// raw read on it could then wait with the scheduler unaware, stalling the
// process.)
func New(c net.Conn) *Conn {
	var sc syscall.Conn
	var network string
	switch conn := c.(type) {
	case *net.TCPConn:
		sc, network = conn, "tcp"
	case *net.UnixConn:
		sc, network = conn, "unix"
	default:
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil || !nonBlocking(raw) {
		return nil
	}
	rc := &Conn{conn: c, raw: raw, network: network, local: c.LocalAddr(), remote: c.RemoteAddr()}
	rc.readFn = rc.tryRead
	rc.readIdleFn = rc.tryReadIdle
	rc.writeFn = rc.tryWrite
	rc.vecFn = rc.tryWritev
	return rc
}

// nonBlocking reports whether the socket is in non-blocking mode.
func nonBlocking(raw syscall.RawConn) bool {
	var flags uintptr
	var errno syscall.Errno
	err := raw.Control(func(fd uintptr) {
		flags, _, errno = syscall.RawSyscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
	})
	return err == nil && errno == 0 && flags&syscall.O_NONBLOCK != 0
}

// Read reads as net.Conn.Read does, with the same kinds of errors, and honours the
// connection's read deadline.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return c.conn.Read(p)
	}
	c.readMu.Lock()
	_, n, err := c.readLocked(p, c.readFn)
	c.readMu.Unlock()
	return n, err
}

// readLocked reads into p through the poller with try, under readMu. It returns
// the buffer read into (try may swap p for another, see ReadIdle), the count, and
// the error as net.Conn.Read has it: io.EOF at the end of the stream.
func (c *Conn) readLocked(p []byte, try func(fd uintptr) bool) ([]byte, int, error) {
	c.readBuf, c.readN, c.readErr = p, 0, nil
	waitErr := c.raw.Read(try)
	buf, n, readErr := c.readBuf, c.readN, c.readErr
	c.readBuf = nil
	if err := c.callError("read", waitErr, readErr); err != nil {
		return buf, 0, err
	}
	if n == 0 {
		return buf, 0, io.EOF
	}
	return buf, n, nil
}

// tryRead reads once; false asks the poller to wait until the socket is readable.
func (c *Conn) tryRead(fd uintptr) bool {
	for {
		n, errno := rawCall(syscall.SYS_READ, fd, c.readBuf)
		switch errno {
		case 0:
			c.readN = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.readErr = errno
		return true
	}
}

// Write writes all of p as net.Conn.Write does, waiting for room in the socket's
// buffer as needed, and honours the connection's write deadline.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) > maxRawWrite {
		return c.conn.Write(p)
	}
	c.writeMu.Lock()
	c.writeBuf, c.writeN, c.writeErr = p, 0, nil
	err := c.raw.Write(c.writeFn)
	n, writeErr := c.writeN, c.writeErr
	c.writeBuf = nil
	c.writeMu.Unlock()
	return n, c.callError("write", err, writeErr)
}

// tryWrite writes what the socket takes; false asks the poller to wait until it
// takes more.
func (c *Conn) tryWrite(fd uintptr) bool {
	for c.writeN < len(c.writeBuf) {
		rest := c.writeBuf[c.writeN:]
		n, errno := rawCall(syscall.SYS_WRITE, fd, rest)
		switch {
		case errno == 0 && n > 0 && n <= len(rest):
			c.writeN += n
			continue
		case errno == 0:
			// A write that took nothing without failing, or claims more than it
			// was given: the net package reports io.ErrUnexpectedEOF as well.
			c.writeErr = io.ErrUnexpectedEOF
			return true
		}
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.writeErr = errno
		return true
	}
	return true
}

// callError is the error of a read or write: the poller's (a deadline, a closed
// connection), else the system call's, wrapped as the net package does; nil when
// neither failed.
func (c *Conn) callError(op string, waitErr, callErr error) error {
	switch {
	case waitErr != nil:
		return c.opError(op, waitErr)
	case callErr != nil:
		return c.opError(op, os.NewSyscallError(op, callErr))
	}
	return nil
}

// opError wraps err as the net package's own reads and writes do, unless it is one
// already (the poller's deadline and closed-connection errors come wrapped).
func (c *Conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		oe.Op = op
		return oe
	}
	return &net.OpError{Op: op, Net: c.network, Source: c.local, Addr: c.remote, Err: err}
}

// ReadFD reads fd once into p, for callers that drive the poller themselves (a
// syscall.RawConn's Read callback).
func ReadFD(fd uintptr, p []byte) (int, error) {
	n, errno := rawCall(syscall.SYS_READ, fd, p)
	if errno != 0 {
		return -1, errno
	}
	return n, nil
}

// WriteBuffers writes the buffers in one system call where the socket takes them
// all at once, as net.Buffers.WriteTo does on a TCP connection, and consumes them.
// Many buffers, or many bytes, go through net.Buffers.WriteTo on the connection.
func (c *Conn) WriteBuffers(bufs *net.Buffers) (int64, error) {
	total := 0
	for _, b := range *bufs {
		total += len(b)
	}
	if len(*bufs) > maxVecs || total > maxRawWrite {
		return bufs.WriteTo(c.conn)
	}
	c.writeMu.Lock()
	c.vecLen = 0
	for _, b := range *bufs {
		if len(b) > 0 {
			c.vecBufs[c.vecLen] = b
			c.vecLen++
		}
	}
	c.writeN, c.writeErr = 0, nil
	err := c.raw.Write(c.vecFn)
	n, writeErr := c.writeN, c.writeErr
	// Neither the buffers nor the iovecs pointing into them stay reachable from an
	// idle connection.
	clear(c.vecBufs[:])
	clear(c.vecs[:])
	c.writeMu.Unlock()
	consume(bufs, n)
	return int64(n), c.callError("writev", err, writeErr)
}

// tryWritev writes what the socket takes of the remaining buffers; false asks the
// poller to wait until it takes more.
func (c *Conn) tryWritev(fd uintptr) bool {
	for {
		// The buffers still to write, from the first byte not yet written.
		skip, n := c.writeN, 0
		for _, b := range c.vecBufs[:c.vecLen] {
			if skip >= len(b) {
				skip -= len(b)
				continue
			}
			rest := b[skip:]
			skip = 0
			c.vecs[n].Base = unsafe.SliceData(rest)
			c.vecs[n].SetLen(len(rest))
			n++
		}
		if n == 0 {
			return true
		}
		written, errno := rawWritev(fd, c.vecs[:n])
		switch {
		case errno == 0 && written > 0:
			c.writeN += written
			continue
		case errno == 0:
			c.writeErr = io.ErrUnexpectedEOF
			return true
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			return false
		}
		c.writeErr = errno
		return true
	}
}

// consume drops the first n written bytes from bufs, as net.Buffers.WriteTo does.
func consume(bufs *net.Buffers, n int) {
	for len(*bufs) > 0 {
		first := (*bufs)[0]
		if n < len(first) {
			(*bufs)[0] = first[n:]
			return
		}
		n -= len(first)
		(*bufs)[0] = nil
		*bufs = (*bufs)[1:]
	}
}
