//go:build linux

package rawio

import "io"

// ReadIdle reads into p as Read does, for a connection that may wait long for its
// next bytes and should not hold a buffer meanwhile: when the socket has nothing to
// read, it hands the buffer it holds to release before waiting, and once the socket
// is readable reads into a buffer from acquire. It returns the buffer it read into
// (p, or one from acquire; nil when it failed while holding none) and the count.
// Taking the buffer back inside the poller's wait costs no system call beyond the
// reads a Read makes.
func (c *Conn) ReadIdle(p []byte, release func([]byte), acquire func() []byte) ([]byte, int, error) {
	c.readMu.Lock()
	c.readBuf, c.readN, c.readErr = p, 0, nil
	c.release, c.acquire = release, acquire
	waitErr := c.raw.Read(c.readIdleFn)
	buf, n, readErr := c.readBuf, c.readN, c.readErr
	c.readBuf, c.release, c.acquire = nil, nil, nil
	c.readMu.Unlock()
	if err := c.callError("read", waitErr, readErr); err != nil {
		return buf, 0, err
	}
	if n == 0 {
		return buf, 0, io.EOF
	}
	return buf, n, nil
}

// tryReadIdle reads once, into a buffer from acquire when the last wait gave the
// buffer back; with nothing to read it gives the buffer back and asks the poller to
// wait.
func (c *Conn) tryReadIdle(fd uintptr) bool {
	if c.readBuf == nil {
		c.readBuf = c.acquire()
	}
	if c.tryRead(fd) {
		return true
	}
	c.release(c.readBuf)
	c.readBuf = nil
	return false
}
