package h2

import (
	"net"
	"strconv"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
)

// Helpers for the tests of stalled clients, closed streams and GOAWAY.

// onlyConn returns the server's single connection, waiting for it.
func (ts *testServer) onlyConn(t testing.TB) *conn {
	t.Helper()
	var c *conn
	waitFor(t, "the server to register the connection", func() bool {
		ts.srv.mu.Lock()
		defer ts.srv.mu.Unlock()
		for x := range ts.srv.conns {
			c = x
		}
		return c != nil
	})
	return c
}

// goAwayString describes a GOAWAY frame, or its absence.
func goAwayString(ga *http2.GoAwayFrame) string {
	if ga == nil {
		return "none"
	}
	return ga.ErrCode.String() + " last-stream-id " + strconv.Itoa(int(ga.LastStreamID))
}

// writeGauge is a net.Conn that records the size of the buffer handed to
// a Write still in progress: output the server holds but the kernel has not
// taken yet.
type writeGauge struct {
	net.Conn
	inWrite atomic.Int64
	written atomic.Int64
}

func (g *writeGauge) Write(p []byte) (int, error) {
	g.inWrite.Store(int64(len(p)))
	n, err := g.Conn.Write(p)
	g.written.Add(int64(n))
	g.inWrite.Store(0)
	return n, err
}
