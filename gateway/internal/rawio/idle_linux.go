//go:build linux

package rawio

// ReadIdle reads into p as Read does, for a connection that may wait long for its
// next bytes and should not hold a buffer meanwhile: when the socket has nothing to
// read, it hands the buffer it holds to release before waiting, and once the socket
// is readable reads into a buffer from acquire. It returns the buffer it read into
// (p, or one from acquire; nil when it failed while holding none) and the count.
// Taking the buffer back inside the poller's wait costs no system call beyond the
// reads a Read makes.
func (c *Conn) ReadIdle(p []byte, release func([]byte), acquire func() []byte) ([]byte, int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	c.release, c.acquire = release, acquire
	buf, n, err := c.readLocked(p, c.readIdleFn)
	c.release, c.acquire = nil, nil
	return buf, n, err
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
