//go:build linux

package rawio

import (
	"io"
	"syscall"
	"unsafe"
)

// TryRead reads what the socket holds into p without waiting for more: ok is false,
// with nothing read and no error, when it holds nothing yet. End of stream reads
// as ok with n zero and io.EOF.
func (c *Conn) TryRead(p []byte) (n int, ok bool, err error) {
	c.readMu.Lock()
	c.readBuf, c.readN, c.readErr, c.wouldBlock = p, 0, nil, false
	waitErr := c.raw.Read(c.tryOnceFn)
	n, readErr, wouldBlock := c.readN, c.readErr, c.wouldBlock
	c.readBuf = nil
	c.readMu.Unlock()
	if err := c.callError("read", waitErr, readErr); err != nil {
		return 0, true, err
	}
	if wouldBlock {
		return 0, false, nil
	}
	if n == 0 {
		return 0, true, io.EOF
	}
	return n, true, nil
}

// tryReadOnce reads once and never asks the poller to wait.
func (c *Conn) tryReadOnce(fd uintptr) bool {
	if !c.tryRead(fd) {
		c.wouldBlock = true
	}
	return true
}

// WaitReadable waits, within the read deadline, until the socket has bytes to read,
// its peer closed it or it failed, without reading anything: a server holds no
// buffer for a connection while it idles. What it found is for the next Read to
// report.
func (c *Conn) WaitReadable() error {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	return c.callError("read", c.raw.Read(c.peekFn), nil)
}

// peek reports whether the socket has something for a read: bytes, the end of the
// stream or an error. It looks at one byte without taking it.
func (c *Conn) peek(fd uintptr) bool {
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.peekByte[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		return true
	}
}
