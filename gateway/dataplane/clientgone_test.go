package dataplane

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// TestClientGoneEndsBackendExchange has a client send a request to a backend that
// never answers, then go away. The gateway must give up the exchange with the
// backend: the backend sees its connection closed. With a request timeout the
// request's context is bounded by a deadline as well, which the backend client
// watches differently; both must follow the client.
func TestClientGoneEndsBackendExchange(t *testing.T) {
	for _, tc := range []struct {
		name     string
		timeouts *config.Timeouts
	}{
		{name: "no timeout"},
		{name: "request timeout", timeouts: &config.Timeouts{Request: config.Duration(time.Minute)}},
		{name: "both timeouts", timeouts: &config.Timeouts{Request: config.Duration(time.Minute), BackendRequest: config.Duration(50 * time.Second)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			received, closed := make(chan struct{}), make(chan struct{})
			ln := holdingBackend(t, received, closed)
			snap := snapshotFor("gone", ln.Addr().String())
			snap.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Timeouts = tc.timeouts
			e := newTestEngine(t)
			mustApply(t, e, snap)

			conn, err := net.DialTimeout("tcp", e.Addr("127.0.0.1:0"), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(conn, "GET /hold HTTP/1.1\r\nHost: app.example.com\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, received, "the backend to receive the request")
			conn.Close()
			waitFor(t, closed, "the gateway to close its connection to the backend")
		})
	}
}

// holdingBackend accepts one connection, reads a request from it and never answers;
// it signals received once the request arrived, and closed once the connection
// reads end of stream or fails.
func holdingBackend(t *testing.T, received, closed chan struct{}) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReader(c)
		if _, err := http.ReadRequest(r); err != nil {
			return
		}
		close(received)
		if _, err := r.ReadByte(); err != nil {
			close(closed)
		}
	}()
	return ln
}

func waitFor(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}
