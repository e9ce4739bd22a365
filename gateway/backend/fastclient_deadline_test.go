//go:build unix

package backend

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/internal/deadline"
)

// stallingBackend accepts connections and never reads from them or answers, until
// the test ends. Its receive buffers are as small as the system allows, so that a
// client's write of a few tens of KiB fills them and waits.
func stallingBackend(t *testing.T) string {
	t.Helper()
	lc := net.ListenConfig{Control: smallBuffer(syscall.SO_RCVBUF)}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		_ = ln.Close()
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				<-done
				_ = conn.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// smallBuffer returns a socket's Control function that makes the buffer opt names
// (SO_RCVBUF or SO_SNDBUF) as small as the system allows.
func smallBuffer(opt int) func(_, _ string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, 1024)
		})
		return errors.Join(err, serr)
	}
}

// TestFastClientDeadlineEndsAStalledExchange sends requests under a deadline.Context
// to a backend that neither reads nor answers. The client enforces such a deadline
// with the socket's deadlines alone, arming no timer: a body too large for the
// socket's buffers must be cut off by the write deadline, and a request without a
// body, whose wait for the answer starts the watch, by the read deadline. The body
// is the largest the fast client sends itself.
func TestFastClientDeadlineEndsAStalledExchange(t *testing.T) {
	addr := stallingBackend(t)
	f := newFast(t, Options{})
	// Small buffers on both ends, so that the body cannot all be written.
	f.dialer.Control = smallBuffer(syscall.SO_SNDBUF)
	const timeout = 300 * time.Millisecond
	for _, c := range []struct {
		name string
		body []byte
	}{
		{name: "body that cannot be written", body: bytes.Repeat([]byte("x"), fastBodyLimit)},
		{name: "answer that never comes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Timed from before the deadline is set, so that the exchange cannot
			// seem to end before it.
			began := time.Now()
			ctx := deadline.New(context.Background(), timeout, errors.New("test timeout"))
			defer ctx.Release()
			method := http.MethodGet
			if c.body != nil {
				method = http.MethodPut
			}
			req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+"/", bytes.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			res, err := f.RoundTrip(req)
			took := time.Since(began)
			if err == nil {
				res.Body.Close()
				t.Fatalf("got %d from a backend that never answers", res.StatusCode)
			}
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("error %v, want the deadline's", err)
			}
			if took < timeout || took > 10*timeout {
				t.Errorf("the exchange ended after %v, want about %v", took, timeout)
			}
		})
	}
}

// TestRawForwardDeadlineEndsAStalledBodyWrite is TestFastClientDeadlineEndsAStalledExchange
// for the raw path: a request whose head and body are written in one go to a backend
// that does not read must end at the request's deadline, not hang in the write.
func TestRawForwardDeadlineEndsAStalledBodyWrite(t *testing.T) {
	addr := stallingBackend(t)
	f := newFast(t, Options{})
	f.dialer.Control = smallBuffer(syscall.SO_SNDBUF)
	rc := &RawClient{t: f}
	const timeout = 300 * time.Millisecond
	body := bytes.Repeat([]byte("x"), 64<<10)
	req := append([]byte("PUT / HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"), body...)
	began := time.Now()
	ctx := deadline.New(context.Background(), timeout, errors.New("test timeout"))
	defer ctx.Release()
	done := make(chan RawResult, 1)
	go func() { done <- rc.Forward(ctx, addr, req, false, false, true, &fakeSink{}) }()
	select {
	case res := <-done:
		if took := time.Since(began); res.Err == nil || took < timeout {
			t.Fatalf("Forward ended after %v with %v, want the deadline's error after %v", took, res.Err, timeout)
		}
	case <-time.After(10 * timeout):
		// The stalled backend is closed at the end of the test, which ends the write.
		t.Fatalf("Forward with a %d-byte body still blocked after %v, past its %v deadline", len(body), time.Since(began), timeout)
	}
}
