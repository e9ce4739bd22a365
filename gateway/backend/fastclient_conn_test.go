package backend

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
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

// TestIdlePoolKeepsItsCountsUnderConcurrentUse runs requests to several backends
// from several goroutines through a pool with small caps and a short idle timeout,
// so that connections are taken, returned, turned away and swept all at once, and
// checks the pool's books: the count of idle connections is what the lists hold,
// within the caps, and the sweep leaves nothing once the requests stop.
func TestIdlePoolKeepsItsCountsUnderConcurrentUse(t *testing.T) {
	var addrs []string
	for range 3 {
		srv, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "ok")
		}))
		addrs = append(addrs, srv.URL)
	}
	f := newFast(t, Options{MaxIdleConnsPerHost: 2, MaxIdleConns: 4, IdleConnTimeout: 20 * time.Millisecond})
	check := func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		held := 0
		for addr, list := range f.hosts {
			if len(list.conns) > 2 {
				t.Errorf("%s holds %d idle connections, over its cap of 2", addr, len(list.conns))
			}
			held += len(list.conns)
		}
		if held != f.idle || f.idle > 4 {
			t.Errorf("the lists hold %d idle connections, the count says %d (cap 4)", held, f.idle)
		}
	}
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				req, _ := http.NewRequest(http.MethodGet, addrs[(g+i)%len(addrs)]+"/", nil)
				res, err := f.RoundTrip(req)
				if err != nil {
					t.Errorf("request: %v", err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
				if i%10 == 0 {
					check()
					time.Sleep(15 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	check()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		f.mu.Lock()
		idle, hosts, sweeping := f.idle, len(f.hosts), f.sweeping
		f.mu.Unlock()
		if idle == 0 && hosts == 0 && !sweeping {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the sweep: %d idle connections, %d addresses, sweeping %v", idle, hosts, sweeping)
		}
	}
}
