package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// dialFloor serves a floor on loopback in front of backend and returns a
// client connection to it, closed when the test ends and bounded in time.
func dialFloor(t *testing.T, backend string) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go acceptLoop(ln, backend)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// startBackend serves h on loopback and counts the connections it accepted.
func startBackend(t *testing.T, h http.HandlerFunc) (string, *atomic.Int32) {
	t.Helper()
	conns := new(atomic.Int32)
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String(), conns
}

func TestForwardsExchangesOverOneBackendConnection(t *testing.T) {
	backend, conns := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			// A Content-Length of its own: net/http would frame a body this long
			// as chunked.
			answer := fmt.Sprintf("%s %s %s", r.Method, r.URL.Path, body)
			w.Header().Set("Content-Length", fmt.Sprint(len(answer)))
			io.WriteString(w, answer)
		}
	})
	c := dialFloor(t, backend)
	br := bufio.NewReader(c)
	cases := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/a", "", 200, "GET /a "},
		{"POST", "/b", strings.Repeat("x", 40000), 200, "POST /b " + strings.Repeat("x", 40000)},
		{"HEAD", "/c", "", 200, ""},
		{"GET", "/empty", "", 204, ""},
		{"GET", "/d", "", 200, "GET /d "},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, "http://floor"+tc.path, strings.NewReader(tc.body))
		if tc.body == "" {
			req.Body = nil
		}
		if err := req.Write(c); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		got, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != tc.status || string(got) != tc.want {
			t.Fatalf("%s %s: %d %.40q (%v), want %d %.40q", tc.method, tc.path, res.StatusCode, got, err, tc.status, tc.want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the backend saw %d connections, want 1 for one client connection", n)
	}
}

func TestPipelinedRequestsAreAnsweredInOrder(t *testing.T) {
	backend, _ := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	})
	c := dialFloor(t, backend)
	var batch strings.Builder
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&batch, "GET /p%d HTTP/1.1\r\nHost: floor\r\n\r\n", i)
	}
	if _, err := io.WriteString(c, batch.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i := 0; i < 20; i++ {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		got, _ := io.ReadAll(res.Body)
		if want := fmt.Sprintf("/p%d", i); string(got) != want {
			t.Fatalf("response %d: %q, want %q", i, got, want)
		}
	}
}

func TestUnframedResponseEndsTheConnection(t *testing.T) {
	backend, _ := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		// Flushing before the end makes net/http frame the body as chunked.
		io.WriteString(w, "part")
		w.(http.Flusher).Flush()
		io.WriteString(w, "rest")
	})
	c := dialFloor(t, backend)
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: floor\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the connection did not end cleanly: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("forwarded %q of a response it cannot frame", got)
	}
}

func TestContentLength(t *testing.T) {
	for head, want := range map[string]int64{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n":                                   -1,
		"GET / HTTP/1.1\r\ncontent-LENGTH:  12 \r\n\r\n":                      12,
		"GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n":    3,
		"GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n":    -2,
		"GET / HTTP/1.1\r\nContent-Length: -3\r\n\r\n":                        -2,
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n":               -2,
		"HTTP/1.1 200 OK\r\nX-Content-Length: 5\r\nContent-Length: 7\r\n\r\n": 7,
	} {
		got, err := contentLength([]byte(head))
		if err != nil {
			got = -2
		}
		if got != want {
			t.Errorf("%q: %d, want %d", head, got, want)
		}
	}
}

func TestResponseFramedByCloseIsForwardedWhole(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const answer = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until the end"
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err == nil {
			io.WriteString(c, answer)
		}
	}()
	c := dialFloor(t, ln.Addr().String())
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: floor\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != answer {
		t.Fatalf("got %q (%v), want %q and the end of the connection", got, err, answer)
	}
}
