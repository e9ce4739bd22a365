package dataplane

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBackendCutShortReachesTheClientAsCutShort has a backend start a chunked answer
// and then close its connection. The client must not be told the body is complete:
// the gateway aborts its response (no terminating chunk), on either HTTP/1 server.
func TestBackendCutShortReachesTheClientAsCutShort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serveCutShort(ln)
	e := newTestEngine(t)
	mustApply(t, e, snapshotFor("cut", ln.Addr().String()))

	conn, err := net.DialTimeout("tcp", e.Addr("127.0.0.1:0"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /stream HTTP/1.1\r\nHost: app.example.com\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "hello") {
		t.Fatalf("got %d %q, want 200 starting with hello", res.StatusCode, body)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reading the body ended with %v, want io.ErrUnexpectedEOF: the client was told a cut-short body was whole", err)
	}
}

// serveCutShort answers every connection's first request with the start of a
// chunked body, then closes the connection.
func serveCutShort(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(c)
			if _, err := http.ReadRequest(r); err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
			time.Sleep(50 * time.Millisecond)
		}()
	}
}
