package backend

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
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
	if res := forwardGet(t, rc, addr, false, true, &fakeSink{}); res.Err != nil {
		t.Fatalf("first exchange: %v", res.Err)
	}
	select {
	case <-closed:
	case <-time.After(rawWait):
		t.Fatal("the backend did not close its connection")
	}
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
