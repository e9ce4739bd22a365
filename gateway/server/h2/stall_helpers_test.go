package h2

import (
	"net"
	"net/http"
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

// startServerWrapped is startServer with each accepted conn wrapped.
func startServerWrapped(t testing.TB, h http.Handler, mod func(*Config), wrap func(net.Conn) net.Conn) *testServer {
	t.Helper()
	cfg := Config{Handler: h, HTTPServer: &http.Server{}}
	if mod != nil {
		mod(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: New(cfg), ln: ln, addr: ln.Addr().String()}
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ts.wg.Add(1)
			go func() {
				defer ts.wg.Done()
				ts.srv.ServeConn(wrap(c))
			}()
		}
	}()
	t.Cleanup(ts.close)
	return ts
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
