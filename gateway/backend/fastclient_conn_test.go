package backend

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/internal/deadline"
)

var errTestTimeout = errors.New("test timeout")

// A deadline.Context bounds a request through the socket's deadlines: a backend
// slower than the deadline fails the request with the context's error and cause.
func TestFastClientEnforcesDeadlineContexts(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	f := newFast(t, Options{})
	// A connection in the pool first, so that no dial (which waits on Done) is made.
	do(t, f, newReq(http.MethodGet, srv.URL+"/", nil))

	ctx := deadline.New(context.Background(), 50*time.Millisecond, errTestTimeout)
	defer ctx.Release()
	start := time.Now()
	_, err := f.RoundTrip(newReq(http.MethodGet, srv.URL+"/slow", nil).WithContext(ctx))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if !errors.Is(deadline.Cause(ctx), errTestTimeout) {
		t.Fatalf("cause = %v", deadline.Cause(ctx))
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("the deadline took %v to apply", elapsed)
	}
}

// A connection that served a request under a deadline goes back to the pool
// without it: a later request on it, after that deadline, succeeds.
func TestFastClientClearsDeadlinesBeforePooling(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			time.Sleep(20 * time.Millisecond)
		}
		_, _ = io.WriteString(w, "ok")
	}))
	f := newFast(t, Options{ResponseHeaderTimeout: time.Second})
	ctx := deadline.New(context.Background(), 100*time.Millisecond, errTestTimeout)
	// The backend waits, so the client's read waits too and the deadline is set.
	do(t, f, newReq(http.MethodGet, srv.URL+"/wait", nil).WithContext(ctx))
	ctx.Release()
	time.Sleep(150 * time.Millisecond)
	for range 3 {
		if _, body := do(t, f, newReq(http.MethodGet, srv.URL+"/wait", nil)); body != "ok" {
			t.Fatalf("body %q", body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want the first one reused", n)
	}
}

// A connection whose responses outgrow its read buffer moves to a larger one; one
// whose responses fit keeps the small buffer.
func TestFastClientGrowsTheReadBufferForLargeResponses(t *testing.T) {
	large := strings.Repeat("x", 10<<10)
	srv, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/large" {
			_, _ = io.WriteString(w, large)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	bufferOfIdle := func(f *fastTransport) int {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, list := range f.hosts {
			for _, cc := range list.conns {
				return len(cc.rbuf)
			}
		}
		return -1
	}
	small := newFast(t, Options{})
	for range 3 {
		do(t, small, newReq(http.MethodGet, srv.URL+"/small", nil))
	}
	if n := bufferOfIdle(small); n != clientBufferSize {
		t.Fatalf("read buffer after small responses: %d, want %d", n, clientBufferSize)
	}
	big := newFast(t, Options{})
	for range 3 {
		if _, body := do(t, big, newReq(http.MethodGet, srv.URL+"/large", nil)); body != large {
			t.Fatalf("body of %d bytes, want %d", len(body), len(large))
		}
	}
	if n := bufferOfIdle(big); n != largeReadBuffer {
		t.Fatalf("read buffer after large responses: %d, want %d", n, largeReadBuffer)
	}

	// A small body that arrives after its head drains the buffer without filling it.
	late := rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for readHead(br) == nil {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
			time.Sleep(20 * time.Millisecond)
			_, _ = io.WriteString(c, "ok")
		}
	})
	slow := newFast(t, Options{})
	for range 3 {
		if _, body := do(t, slow, newReq(http.MethodGet, late+"/", nil)); body != "ok" {
			t.Fatalf("body %q", body)
		}
	}
	if n := bufferOfIdle(slow); n != clientBufferSize {
		t.Fatalf("read buffer after late small bodies: %d, want %d", n, clientBufferSize)
	}
}
