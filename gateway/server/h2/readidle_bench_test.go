//go:build linux

package h2

import (
	"net"

	"github.com/switchyard-dev/switchyard/gateway/internal/rawio"
)

func init() { readIdleConn = newReadIdleConn }

// readIdleBenchConn is a connection that can wait without a buffer, as package
// server's are, for measuring the busy path of such connections.
type readIdleBenchConn struct {
	net.Conn
	raw *rawio.Conn
}

// newReadIdleConn wraps c, or returns it as it is when its socket cannot be
// read with raw system calls.
func newReadIdleConn(c net.Conn) net.Conn {
	if raw := rawio.New(c); raw != nil {
		return &readIdleBenchConn{Conn: c, raw: raw}
	}
	return c
}

func (c *readIdleBenchConn) Read(p []byte) (int, error) { return c.raw.Read(p) }
func (c *readIdleBenchConn) CanWaitIdle() bool          { return true }

func (c *readIdleBenchConn) ReadIdle(p []byte, release func([]byte), acquire func() []byte) ([]byte, int, error) {
	return c.raw.ReadIdle(p, release, acquire)
}
