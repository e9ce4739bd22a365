package backend

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawPost is a request with a body, in its wire form, that may not be sent twice.
const rawPost = "POST /r HTTP/1.1\r\nHost: backend.test\r\nContent-Length: 7\r\n\r\npayload"

// TestRawForwardBodyChecksAnIdleConnection: a request with a body that may not be
// sent again goes out on an idle connection only once that connection is seen to be
// still open, as RoundTrip sends such a request: a connection the backend closed
// while idle is given up for a new one, and the request, body and all, reaches the
// backend once.
func TestRawForwardBodyChecksAnIdleConnection(t *testing.T) {
	closed := make(chan struct{}, 4)
	bodies := make(chan string, 4)
	addr, accepts := scriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(req.Body)
		bodies <- string(body)
		_, _ = io.WriteString(c, okResponse)
		_ = c.Close()
		closed <- struct{}{}
	})
	rc := newRawClient(t)
	leaveStale(t, rc, addr, closed)
	ctx, cancel := context.WithTimeout(context.Background(), rawWait)
	defer cancel()
	sink := &fakeSink{}
	res := relayed(rc.Forward(ctx, addr, []byte(rawPost), false, false, true, sink), sink)
	if res.Err != nil || sink.String() != okRelayed {
		t.Fatalf("request with a body after a stale connection: err %v, relayed %q", res.Err, sink.String())
	}
	if n := accepts.Load(); n != 2 {
		t.Fatalf("%d connections, want 2: the stale one and a new one", n)
	}
	for _, want := range []string{"", "payload"} {
		if got := <-bodies; got != want {
			t.Fatalf("backend got body %q, want %q", got, want)
		}
	}
}

// TestRawForwardBodyChecksAConnectionAsRoundTrip: a request with a body goes out on
// an idle connection only once that connection is seen silent, whether or not it
// may be sent again, as RoundTrip sends it: a connection on which the backend has
// since written an unasked-for answer (a 408 before it closes) is given up, and the
// request gets the answer of a new one on both clients.
func TestRawForwardBodyChecksAConnectionAsRoundTrip(t *testing.T) {
	script := func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, okResponse)
		time.Sleep(50 * time.Millisecond)
		_, _ = io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		_, _ = br.ReadByte()
	}
	const keyed = "POST /r HTTP/1.1\r\nHost: backend.test\r\nIdempotency-Key: k1\r\nContent-Length: 7\r\n\r\npayload"

	addr, _ := scriptedBackend(t, script)
	ft := newFast(t, Options{})
	get, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/r", nil)
	res, err := ft.RoundTrip(get)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	time.Sleep(200 * time.Millisecond) // The 408 has arrived on the idle connection.
	post, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/r", strings.NewReader("payload"))
	post.Header.Set("Idempotency-Key", "k1")
	res, err = ft.RoundTrip(post)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	addr, _ = scriptedBackend(t, script)
	rc := newRawClient(t)
	if r := forwardGet(t, rc, addr, false, true, &fakeSink{}); r.Err != nil {
		t.Fatal(r.Err)
	}
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), rawWait)
	defer cancel()
	sink := &fakeSink{}
	r := relayed(rc.Forward(ctx, addr, []byte(keyed), false, Replayable(http.MethodPost, true), true, sink), sink)
	if res.StatusCode != http.StatusOK || r.Status != res.StatusCode {
		t.Errorf("after an unasked-for 408: the raw client answered %d, RoundTrip %d; want 200 from both", r.Status, res.StatusCode)
	}
}
