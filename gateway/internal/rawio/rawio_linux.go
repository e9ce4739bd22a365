//go:build linux

package rawio

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// Conn reads and writes one socket. Reads and writes may run at once; reads are
// serialised among themselves, as are writes, as net.Conn does.
type Conn struct {
	raw           syscall.RawConn
	local, remote net.Addr

	readMu  sync.Mutex
	readBuf []byte
	readN   int
	readErr error
	readFn  func(fd uintptr) bool

	writeMu  sync.Mutex
	writeBuf []byte
	writeN   int
	writeErr error
	writeFn  func(fd uintptr) bool
}

// New returns a Conn for c, or nil when c is not a TCP or Unix socket.
func New(c net.Conn) *Conn {
	var sc syscall.Conn
	switch conn := c.(type) {
	case *net.TCPConn:
		sc = conn
	case *net.UnixConn:
		sc = conn
	default:
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	rc := &Conn{raw: raw, local: c.LocalAddr(), remote: c.RemoteAddr()}
	rc.readFn = rc.tryRead
	rc.writeFn = rc.tryWrite
	return rc
}

// Read reads as net.Conn.Read does, with the same kinds of errors, and honours the
// connection's read deadline.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.readMu.Lock()
	c.readBuf, c.readN, c.readErr = p, 0, nil
	err := c.raw.Read(c.readFn)
	n, readErr := c.readN, c.readErr
	c.readBuf = nil
	c.readMu.Unlock()
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case readErr != nil:
		return 0, c.opError("read", os.NewSyscallError("read", readErr))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
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
	c.writeMu.Lock()
	c.writeBuf, c.writeN, c.writeErr = p, 0, nil
	err := c.raw.Write(c.writeFn)
	n, writeErr := c.writeN, c.writeErr
	c.writeBuf = nil
	c.writeMu.Unlock()
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case writeErr != nil:
		return n, c.opError("write", os.NewSyscallError("write", writeErr))
	}
	return n, nil
}

// tryWrite writes what the socket takes; false asks the poller to wait until it
// takes more.
func (c *Conn) tryWrite(fd uintptr) bool {
	for c.writeN < len(c.writeBuf) {
		n, errno := rawCall(syscall.SYS_WRITE, fd, c.writeBuf[c.writeN:])
		switch errno {
		case 0:
			c.writeN += n
			continue
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

// opError wraps err as the net package's own reads and writes do, unless it is one
// already (the poller's deadline and closed-connection errors come wrapped).
func (c *Conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		oe.Op = op
		return oe
	}
	return &net.OpError{Op: op, Net: c.local.Network(), Source: c.local, Addr: c.remote, Err: err}
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
