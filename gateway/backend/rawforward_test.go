package backend

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawWait bounds every wait of the raw client's tests, so that a hung exchange fails
// the test instead of stalling the run.
const rawWait = 5 * time.Second

// rawGet is the request head most raw tests forward: a bodiless GET, as the server
// passes it on.
const rawGet = "GET /r HTTP/1.1\r\nHost: backend.test\r\n\r\n"

// okResponse is a plain response the raw client relays itself, and okRelayed what the
// client should then see of it (the fake sink's Date added).
const (
	okResponse = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
	okRelayed  = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nDate: X\r\n\r\nok"
)

// fakeSink collects what a raw exchange writes to its client. It is safe for a test
// to read while Forward runs on another goroutine, and signals each write on writes
// when that channel is set.
type fakeSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	closing bool
	writes  chan struct{}
	// fail, when set, is the error of every write: the client has gone away.
	fail error
}

func (s *fakeSink) Write(p []byte) (int, error) {
	if s.fail != nil {
		return 0, s.fail
	}
	s.mu.Lock()
	s.buf.Write(p)
	s.mu.Unlock()
	if s.writes != nil {
		select {
		case s.writes <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

func (s *fakeSink) DateLine() []byte { return []byte("Date: X\r\n") }

func (s *fakeSink) Closing() bool { return s.closing }

func (s *fakeSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// scriptedBackend runs serve on each connection accepted on a loopback port, and
// counts the connections, which tells whether the raw client reused one. Each
// connection has a deadline so that a test that goes wrong cannot leave it blocked.
func scriptedBackend(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var accepts atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(rawWait))
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().String(), &accepts
}

// answers returns a backend script that answers the i'th request head on a
// connection with responses[i % len(responses)], until the client closes.
func answers(responses ...string) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		for i := 0; ; i++ {
			if readHead(br) != nil {
				return
			}
			if _, err := io.WriteString(c, responses[i%len(responses)]); err != nil {
				return
			}
		}
	}
}

// newRawClient returns a raw client over a fast transport with default options.
func newRawClient(t *testing.T) *RawClient {
	t.Helper()
	rc := RawClientFor(newFast(t, Options{}))
	if rc == nil {
		t.Fatal("RawClientFor refused the fast transport")
	}
	return rc
}

// forwardGet forwards rawGet (or a HEAD when head is set) within rawWait. The
// context lasts until the test ends, since the body of a Response the raw client
// leaves to its caller is read under it.
func forwardGet(t *testing.T, rc *RawClient, addr string, head, idempotent bool, sink RawSink) RawResult {
	ctx, cancel := context.WithTimeout(context.Background(), rawWait)
	t.Cleanup(cancel)
	req := rawGet
	if head {
		req = strings.Replace(rawGet, "GET", "HEAD", 1)
	}
	return relayed(rc.Forward(ctx, addr, []byte(req), head, idempotent, false, sink), sink)
}

// relayed finishes what Forward began, as the proxy does: a final response the raw
// client relays itself is relayed, and the result tells how that went.
func relayed(res RawResult, sink RawSink) RawResult {
	if res.Status == 0 || res.Response != nil || res.Err != nil {
		return res
	}
	res.Wrote = true
	_, res.ClientFailed, res.Err = res.Relay(sink, nil)
	return res
}

func TestRawClientForTakesOnlyTheUncappedFastTransport(t *testing.T) {
	if RawClientFor(newFast(t, Options{})) == nil {
		t.Error("no raw client for the fast transport")
	}
	if RawClientFor(newFast(t, Options{MaxConnsPerHost: 2})) != nil {
		t.Error("a raw client for a transport with capped connections, which it would not count")
	}
	if RawClientFor(http.DefaultTransport) != nil {
		t.Error("a raw client for http.Transport")
	}
}

// TestRawForwardRelaysExactly checks the bytes the client gets for responses the raw
// client relays itself: the status line rewritten with the standard reason, the
// fields as they came, a Date only when missing, and "Connection: close" when the
// client's connection ends. Each case also checks the request reached the backend
// unchanged and that the connection went back to the pool.
func TestRawForwardRelaysExactly(t *testing.T) {
	cases := []struct {
		name, response, want string
		head, closing        bool
	}{
		{"plain", okResponse, okRelayed, false, false},
		{"reason rewritten", "HTTP/1.1 200 Fine\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok", okRelayed, false, false},
		{"no reason", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nDate: X\r\n\r\n", false, false},
		{"date kept", "HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: a/b\r\nContent-Length: 1\r\n\r\nz",
			"HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: a/b\r\nContent-Length: 1\r\n\r\nz", false, false},
		{"closing client", okResponse, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nDate: X\r\nConnection: close\r\n\r\nok", false, true},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 2\n\nok", okRelayed, false, false},
		{"HEAD with length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\nDate: X\r\n\r\n", true, false},
		{"HEAD without type", "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nDate: X\r\n\r\n", true, false},
		{"204 without length", "HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n", "HTTP/1.1 204 No Content\r\nX-A: b\r\nDate: X\r\n\r\n", false, false},
		{"304", "HTTP/1.1 304 Not Modified\r\nEtag: \"e\"\r\n\r\n", "HTTP/1.1 304 Not Modified\r\nEtag: \"e\"\r\nDate: X\r\n\r\n", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			heads := make(chan string, 4)
			addr, accepts := scriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
				for {
					head, err := readHeadText(br)
					if err != nil {
						return
					}
					heads <- head
					if _, err := io.WriteString(c, tc.response); err != nil {
						return
					}
				}
			})
			rc := newRawClient(t)
			wantReq := rawGet
			if tc.head {
				wantReq = strings.Replace(rawGet, "GET", "HEAD", 1)
			}
			// The second exchange runs on the same connection: the first must have
			// consumed its response exactly, body included and nothing more.
			for i := range 2 {
				sink := &fakeSink{closing: tc.closing}
				res := forwardGet(t, rc, addr, tc.head, true, sink)
				if res.Err != nil || res.Response != nil || !res.Wrote {
					t.Fatalf("exchange %d: err %v response %v wrote %v", i, res.Err, res.Response, res.Wrote)
				}
				if got := sink.String(); got != tc.want {
					t.Fatalf("exchange %d relayed\n%q\nwant\n%q", i, got, tc.want)
				}
				if got := <-heads; got != wantReq {
					t.Fatalf("backend got %q, want %q", got, wantReq)
				}
			}
			if n := accepts.Load(); n != 1 {
				t.Fatalf("%d backend connections for two exchanges, want 1", n)
			}
		})
	}
}

// TestRawForwardLargeBody relays a body far larger than the connection's buffer,
// which takes many reads, and checks the connection is reusable after it.
func TestRawForwardLargeBody(t *testing.T) {
	body := make([]byte, 100<<10)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	head := "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 102400\r\n\r\n"
	addr, accepts := scriptedBackend(t, answers(head+string(body), okResponse))
	rc := newRawClient(t)
	sink := &fakeSink{}
	res := forwardGet(t, rc, addr, false, true, sink)
	if res.Err != nil || res.Status != 200 || !res.Wrote {
		t.Fatalf("large body: %+v", res)
	}
	want := "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 102400\r\nDate: X\r\n\r\n" + string(body)
	if got := sink.String(); got != want {
		t.Fatalf("relayed %d bytes, want %d (equal: %v)", len(got), len(want), got == want)
	}
	sink = &fakeSink{}
	if res = forwardGet(t, rc, addr, false, true, sink); res.Err != nil || sink.String() != okRelayed {
		t.Fatalf("after the large body: %v %q", res.Err, sink.String())
	}
	if n := accepts.Load(); n != 1 {
		t.Fatalf("%d backend connections, want 1", n)
	}
}

// TestRawForwardDropsHopByHopFields checks that the fields that concern the backend's
// connection (hop-by-hop ones and those Connection names) stay out of the client's
// response, and that a backend that said close does not get its connection reused.
func TestRawForwardDropsHopByHopFields(t *testing.T) {
	response := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close, X-Drop\r\nX-Drop: 1\r\n" +
		"Keep-Alive: timeout=5\r\nX-Keep: yes\r\nProxy-Connection: keep-alive\r\nx-drop: 2\r\nContent-Length: 2\r\n\r\nok"
	want := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Keep: yes\r\nContent-Length: 2\r\nDate: X\r\n\r\nok"
	// The backend keeps its side open: only the raw client's decision closes it.
	addr, accepts := scriptedBackend(t, answers(response))
	rc := newRawClient(t)
	for i := range 2 {
		sink := &fakeSink{}
		res := forwardGet(t, rc, addr, false, true, sink)
		if res.Err != nil || res.Status != 200 {
			t.Fatalf("exchange %d: %+v", i, res)
		}
		if got := sink.String(); got != want {
			t.Fatalf("exchange %d relayed\n%q\nwant\n%q", i, got, want)
		}
	}
	if n := accepts.Load(); n != 2 {
		t.Fatalf("%d backend connections, want 2: a connection the backend closes was reused", n)
	}
}

// TestRawForwardExtraBytesCloseTheConnection checks that a connection on which the
// backend sent more than the response is not reused: those bytes would be taken for
// the next response.
func TestRawForwardExtraBytesCloseTheConnection(t *testing.T) {
	addr, accepts := scriptedBackend(t, answers(okResponse+"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale"))
	rc := newRawClient(t)
	for i := range 2 {
		sink := &fakeSink{}
		if res := forwardGet(t, rc, addr, false, true, sink); res.Err != nil || sink.String() != okRelayed {
			t.Fatalf("exchange %d: %v %q", i, res.Err, sink.String())
		}
	}
	if n := accepts.Load(); n != 2 {
		t.Fatalf("%d backend connections, want 2", n)
	}
}

// TestRawForwardRelaysEarlyHintsAsTheyCome checks that a 103 reaches the client
// before the final response exists, unchanged but for its status line, and that the
// final response follows it.
func TestRawForwardRelaysEarlyHintsAsTheyCome(t *testing.T) {
	release := make(chan struct{})
	hints := "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
	addr, _ := scriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
		if readHead(br) != nil {
			return
		}
		_, _ = io.WriteString(c, hints)
		select {
		case <-release:
		case <-time.After(rawWait):
		}
		_, _ = io.WriteString(c, okResponse)
	})
	rc := newRawClient(t)
	sink := &fakeSink{writes: make(chan struct{}, 1)}
	done := make(chan RawResult, 1)
	go func() { done <- forwardGet(t, rc, addr, false, true, sink) }()
	select {
	case <-sink.writes:
	case <-time.After(rawWait):
		t.Fatal("the 103 was not relayed before the final response")
	}
	if got := sink.String(); got != hints {
		t.Fatalf("relayed before the final response: %q", got)
	}
	close(release)
	var res RawResult
	select {
	case res = <-done:
	case <-time.After(rawWait):
		t.Fatal("Forward did not return")
	}
	if res.Err != nil || res.Status != 200 || !res.Wrote {
		t.Fatalf("after hints: %+v", res)
	}
	if got := sink.String(); got != hints+okRelayed {
		t.Fatalf("relayed %q", got)
	}
}

// TestRawForwardFallsBack checks the responses the raw client leaves to its caller:
// each comes back parsed, with nothing written to the client and its body readable
// from the connection.
func TestRawForwardFallsBack(t *testing.T) {
	cases := []struct {
		name, response string
		// closes is set when the backend's close ends the body.
		closes       bool
		status       int
		body         string
		trailerValue string
	}{
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
			"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n", false, 200, "hello world", "11"},
		{"close-delimited", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", true, 200, "all of it", ""},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nold", false, 200, "old", ""},
		{"no Content-Type", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n<html", false, 200, "<html", ""},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\ntwo", false, 200, "two", ""},
		{"204 with length", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false, 204, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := scriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
				if readHead(br) != nil {
					return
				}
				_, _ = io.WriteString(c, tc.response)
				if !tc.closes {
					// Hold the connection open until the client is done with it.
					_, _ = br.ReadByte()
				}
			})
			sink := &fakeSink{}
			res := forwardGet(t, newRawClient(t), addr, false, true, sink)
			if res.Err != nil || res.Response == nil || res.Wrote || res.Status != tc.status {
				t.Fatalf("err %v response %v wrote %v status %d", res.Err, res.Response != nil, res.Wrote, res.Status)
			}
			defer res.Response.Body.Close()
			if sink.String() != "" {
				t.Fatalf("wrote %q to the client for a response it does not relay", sink.String())
			}
			if res.Response.StatusCode != tc.status {
				t.Fatalf("Response.StatusCode %d, want %d", res.Response.StatusCode, tc.status)
			}
			body, err := io.ReadAll(res.Response.Body)
			if err != nil || string(body) != tc.body {
				t.Fatalf("body %q, %v; want %q", body, err, tc.body)
			}
			if got := res.Response.Trailer.Get("X-Sum"); got != tc.trailerValue {
				t.Fatalf("trailer X-Sum %q, want %q", got, tc.trailerValue)
			}
		})
	}
}

// TestRawForwardHintsThenFallback: a final response the raw client does not relay may
// follow an interim one it did relay; the caller must then know the client has been
// written to.
func TestRawForwardHintsThenFallback(t *testing.T) {
	hints := "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
	addr, _ := scriptedBackend(t, answers(hints+"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"))
	sink := &fakeSink{}
	res := forwardGet(t, newRawClient(t), addr, false, true, sink)
	if res.Err != nil || res.Response == nil || !res.Wrote {
		t.Fatalf("err %v response %v wrote %v", res.Err, res.Response != nil, res.Wrote)
	}
	defer res.Response.Body.Close()
	if sink.String() != hints {
		t.Fatalf("relayed %q, want the hints alone", sink.String())
	}
	if body, err := io.ReadAll(res.Response.Body); err != nil || string(body) != "ok" {
		t.Fatalf("body %q, %v", body, err)
	}
}

// TestRawForwardKeepsFraming: a Connection field may name any field, the framing
// ones included. The relayed head must still frame the body it is followed by, or
// the client's connection loses track of where the next response starts; else the
// response must be left to the caller.
func TestRawForwardKeepsFraming(t *testing.T) {
	addr, _ := scriptedBackend(t, answers("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: Content-Length\r\nContent-Length: 2\r\n\r\nok"))
	sink := &fakeSink{}
	res := forwardGet(t, newRawClient(t), addr, false, true, sink)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if res.Response != nil {
		res.Response.Body.Close()
		return
	}
	got := sink.String()
	parsed, err := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil)
	if err != nil {
		t.Fatalf("relayed %q: %v", got, err)
	}
	if parsed.ContentLength != 2 {
		t.Fatalf("relayed %q: the body of 2 bytes is not framed (length %d): a keep-alive client would wait for the close", got, parsed.ContentLength)
	}
}

// TestRawForwardBackendClosesMidBody: once the head has gone to the client, a body
// cut short can only be reported, with Wrote set for the caller to abandon the
// response.
func TestRawForwardBackendClosesMidBody(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"
	addr, _ := scriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
		if readHead(br) == nil {
			_, _ = io.WriteString(c, head+"partial")
		}
	})
	sink := &fakeSink{}
	res := forwardGet(t, newRawClient(t), addr, false, true, sink)
	if !errors.Is(res.Err, io.ErrUnexpectedEOF) || !res.Wrote || res.Status != 200 || res.Response != nil || res.ClientFailed {
		t.Fatalf("err %v wrote %v status %d client failed %v", res.Err, res.Wrote, res.Status, res.ClientFailed)
	}
	if want := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\nDate: X\r\n\r\npartial"; sink.String() != want {
		t.Fatalf("relayed %q", sink.String())
	}
}

// TestRawForwardClientFails: a client that goes away while the response is relayed
// is told apart from a failing backend, and the backend connection, left with part
// of a response unread, is not reused.
func TestRawForwardClientFails(t *testing.T) {
	addr, accepts := scriptedBackend(t, answers(okResponse))
	rc := newRawClient(t)
	gone := errors.New("client went away")
	res := forwardGet(t, rc, addr, false, true, &fakeSink{fail: gone})
	if !errors.Is(res.Err, gone) || !res.ClientFailed || res.Status != 200 {
		t.Fatalf("err %v client failed %v status %d", res.Err, res.ClientFailed, res.Status)
	}
	sink := &fakeSink{}
	if res = forwardGet(t, rc, addr, false, true, sink); res.Err != nil || res.ClientFailed || sink.String() != okRelayed {
		t.Fatalf("next exchange: err %v client failed %v relayed %q", res.Err, res.ClientFailed, sink.String())
	}
	if n := accepts.Load(); n != 2 {
		t.Fatalf("%d backend connections, want 2: the failed exchange's was reused", n)
	}
}

// TestRawForwardStaleConnection: a backend that closes an idle connection leaves a
// stale one in the pool. An idempotent request is sent again on a new connection; any
// other must fail, since the backend might have acted on it.
// leaveStale makes one exchange with a backend that closes its connection after
// answering, and waits for that close (closed), so that rc holds a pooled
// connection the backend has closed.
func leaveStale(t *testing.T, rc *RawClient, addr string, closed <-chan struct{}) {
	t.Helper()
	if res := forwardGet(t, rc, addr, false, true, &fakeSink{}); res.Err != nil {
		t.Fatalf("first exchange: %v", res.Err)
	}
	select {
	case <-closed:
	case <-time.After(rawWait):
		t.Fatal("the backend did not close its connection")
	}
}

func TestRawForwardStaleConnection(t *testing.T) {
	for _, idempotent := range []bool{true, false} {
		closed := make(chan struct{}, 4)
		addr, accepts := scriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
			if readHead(br) != nil {
				return
			}
			_, _ = io.WriteString(c, okResponse)
			_ = c.Close()
			closed <- struct{}{}
		})
		rc := newRawClient(t)
		leaveStale(t, rc, addr, closed)
		sink := &fakeSink{}
		res := forwardGet(t, rc, addr, false, idempotent, sink)
		if idempotent {
			if res.Err != nil || sink.String() != okRelayed || accepts.Load() != 2 {
				t.Fatalf("idempotent after a stale connection: err %v relayed %q, %d connections", res.Err, sink.String(), accepts.Load())
			}
			continue
		}
		if res.Err == nil || res.Wrote || res.Status != 0 || sink.String() != "" {
			t.Fatalf("non-idempotent after a stale connection: err %v wrote %v status %d relayed %q", res.Err, res.Wrote, res.Status, sink.String())
		}
		if n := accepts.Load(); n != 1 {
			t.Fatalf("non-idempotent request sent again: %d connections", n)
		}
	}
}

func TestRawForwardErrorKinds(t *testing.T) {
	rc := newRawClient(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	_ = closed.Close()
	res := forwardGet(t, rc, deadAddr, false, true, &fakeSink{})
	var op *net.OpError
	if !errors.As(res.Err, &op) || op.Op != "dial" || res.Wrote {
		t.Fatalf("connect failure = %v (wrote %v), want a dial *net.OpError", res.Err, res.Wrote)
	}

	// A context that ended already stops the exchange before any connection.
	silent, accepts := scriptedBackend(t, func(c net.Conn, br *bufio.Reader) {
		_ = readHead(br)
		_, _ = br.ReadByte()
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res = rc.Forward(ctx, silent, []byte(rawGet), false, true, false, &fakeSink{})
	if res.Err != context.Canceled || res.Wrote {
		t.Fatalf("ended context = %v, want the context's error itself", res.Err)
	}
	if n := accepts.Load(); n != 0 {
		t.Fatalf("%d connections for a request whose context had ended", n)
	}

	// A context that ends while the backend is silent interrupts the wait.
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	res = rc.Forward(ctx, silent, []byte(rawGet), false, true, false, &fakeSink{})
	if !errors.Is(res.Err, context.DeadlineExceeded) || res.Wrote || time.Since(start) > 2*time.Second {
		t.Fatalf("context ending while waiting = %v after %v, want context.DeadlineExceeded", res.Err, time.Since(start))
	}

	// The response head timeout gives a net.Error timeout.
	timed := RawClientFor(newFast(t, Options{ResponseHeaderTimeout: 100 * time.Millisecond}))
	res = forwardGet(t, timed, silent, false, true, &fakeSink{})
	var ne net.Error
	if !errors.As(res.Err, &ne) || !ne.Timeout() {
		t.Fatalf("header timeout = %v, want a timeout", res.Err)
	}
}

// TestScanRawHead covers which heads the raw client relays itself and what it reads
// of them.
func TestScanRawHead(t *testing.T) {
	const ct = "Content-Type: text/plain\r\n"
	cases := []struct {
		name, head string
		headReq    bool
		relayable  bool
		status     int
		length     int64
		close      bool
		hasDate    bool
	}{
		{"plain", "HTTP/1.1 200 OK\r\n" + ct + "Content-Length: 5\r\n\r\n", false, true, 200, 5, false, false},
		{"no reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, true, 200, 0, false, false},
		{"empty body needs no type", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, true, 200, 0, false, false},
		{"lower-case names", "HTTP/1.1 200 OK\r\ncontent-type: a/b\r\ncontent-length: 3\r\ndate: x\r\n\r\n", false, true, 200, 3, false, true},
		{"bare LF", "HTTP/1.1 200 OK\n" + "Content-Type: a\nContent-Length: 1\n\n", false, true, 200, 1, false, false},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n", false, true, 200, 0, true, false},
		{"early hints (interim heads are relayed apart)", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", false, false, 0, 0, false, false},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", false, true, 204, 0, false, false},
		{"304", "HTTP/1.1 304 Not Modified\r\n\r\n", false, true, 304, 0, false, false},
		{"HEAD ignores length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true, true, 200, 0, false, false},
		{"HEAD without length", "HTTP/1.1 200 OK\r\n\r\n", true, true, 200, 0, false, false},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", false, false, 0, 0, false, false},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\n" + ct + "Content-Length: 1\r\n\r\n", false, false, 0, 0, false, false},
		{"HTTP/2 line", "HTTP/2.0 200 OK\r\n" + ct + "Content-Length: 1\r\n\r\n", false, false, 0, 0, false, false},
		{"reason glued", "HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n", false, false, 0, 0, false, false},
		{"short code", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", false, false, 0, 0, false, false},
		{"code below 100", "HTTP/1.1 099 X\r\nContent-Length: 0\r\n\r\n", false, false, 0, 0, false, false},
		{"unknown code", "HTTP/1.1 299 X\r\nContent-Length: 0\r\n\r\n", false, true, 299, 0, false, false},
		{"code 600", "HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n", false, true, 600, 0, false, false},
		{"HEAD with a bad length", "HTTP/1.1 200 OK\r\n" + ct + "Content-Length: abc\r\n\r\n", true, false, 0, 0, false, false},
		{"many connection fields", "HTTP/1.1 200 OK\r\nConnection: a\r\nConnection: b\r\nConnection: c\r\nConnection: d\r\nConnection: e\r\nContent-Length: 0\r\n\r\n", false, false, 0, 0, false, false},
		{"chunked", "HTTP/1.1 200 OK\r\n" + ct + "Transfer-Encoding: chunked\r\n\r\n", false, false, 0, 0, false, false},
		{"chunked HEAD", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, false, 0, 0, false, false},
		{"close-delimited", "HTTP/1.1 200 OK\r\n" + ct + "\r\n", false, false, 0, 0, false, false},
		{"two equal lengths", "HTTP/1.1 200 OK\r\n" + ct + "Content-Length: 1\r\nContent-Length: 1\r\n\r\n", false, false, 0, 0, false, false},
		{"204 with length", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false, false, 0, 0, false, false},
		{"304 with length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false, false, 0, 0, false, false},
		{"body without type", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", false, false, 0, 0, false, false},
		{"bad length", "HTTP/1.1 200 OK\r\n" + ct + "Content-Length: 1x\r\n\r\n", false, false, 0, 0, false, false},
		{"signed length", "HTTP/1.1 200 OK\r\n" + ct + "Content-Length: +1\r\n\r\n", false, false, 0, 0, false, false},
		{"length list", "HTTP/1.1 200 OK\r\n" + ct + "Content-Length: 1, 1\r\n\r\n", false, false, 0, 0, false, false},
		{"space before colon", "HTTP/1.1 200 OK\r\n" + ct + "Content-Length : 1\r\n\r\n", false, false, 0, 0, false, false},
		{"folded line", "HTTP/1.1 200 OK\r\n" + ct + "X-A: b\r\n c\r\nContent-Length: 0\r\n\r\n", false, false, 0, 0, false, false},
		{"no colon", "HTTP/1.1 200 OK\r\nJunk\r\nContent-Length: 0\r\n\r\n", false, false, 0, 0, false, false},
		{"control byte", "HTTP/1.1 200 OK\r\nX-A: b\x01c\r\nContent-Length: 0\r\n\r\n", false, false, 0, 0, false, false},
	}
	for _, tc := range cases {
		rh, err := scanRawHead([]byte(tc.head), tc.headReq)
		if !tc.relayable {
			if err != errNotRelayable {
				t.Errorf("%s: err %v, want errNotRelayable", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if rh.status != tc.status || rh.length != tc.length || rh.close != tc.close || rh.hasDate != tc.hasDate {
			t.Errorf("%s: status %d length %d close %v date %v; want %d %d %v %v",
				tc.name, rh.status, rh.length, rh.close, rh.hasDate, tc.status, tc.length, tc.close, tc.hasDate)
		}
	}
}

// TestRawHeadWorkDoesNotAllocate guards the per-response work of the raw client:
// reading a head and building the client's from it reuse the connection's buffers.
func TestRawHeadWorkDoesNotAllocate(t *testing.T) {
	// The head has a Date, so that the test sink's (made per call) is not asked for.
	head := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\nDate: D\r\nX-A: 1\r\nContent-Length: 5\r\n\r\n")
	sink := &fakeSink{}
	out := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		rh, err := scanRawHead(head, false)
		if err != nil {
			t.Fatal(err)
		}
		out = appendClientHead(out[:0], head, &rh, []byte("X-Gw: 1\r\n"), sink, nil)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per head, want 0", allocs)
	}
}

func TestRawRelayAddsFieldsAndCountsTheBody(t *testing.T) {
	body := strings.Repeat("b", 100<<10)
	long := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 102400\r\n\r\n" + body
	addr, accepts := scriptedBackend(t, answers(okResponse, long))
	rc := newRawClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), rawWait)
	defer cancel()
	for i, want := range []int64{2, int64(len(body))} {
		sink := &fakeSink{}
		res := rc.Forward(ctx, addr, []byte(rawGet), false, true, false, sink)
		if res.Status != http.StatusOK || res.Err != nil {
			t.Fatalf("exchange %d: status %d, error %v", i, res.Status, res.Err)
		}
		written, clientFailed, err := res.Relay(sink, []byte("Ratelimit-Limit: 5\r\n"))
		if err != nil || clientFailed || written != want {
			t.Fatalf("exchange %d: wrote %d body bytes (want %d), client failed %v, error %v", i, written, want, clientFailed, err)
		}
		got := sink.String()
		if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\nRatelimit-Limit: 5\r\nContent-Type: text/plain\r\n") {
			t.Errorf("exchange %d: head %q lacks the gateway's field ahead of the backend's", i, got[:min(len(got), 120)])
		}
	}
	if n := accepts.Load(); n != 1 {
		t.Errorf("%d connections for two relayed exchanges, want 1", n)
	}
}

func TestRawDiscardKeepsOnlyAWholeResponsesConnection(t *testing.T) {
	busy := "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nbusy"
	busyRelayed := "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nDate: X\r\n\r\nbusy"
	long := "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 200000\r\n\r\n" + strings.Repeat("l", 200000)
	longRelayed := strings.Replace(long, "\r\n\r\n", "\r\nDate: X\r\n\r\n", 1)
	// The backend answers a connection's first request with first, its second with
	// busy: a new connection after the discard gets first again.
	for _, c := range []struct {
		name        string
		first, then string
		connections int64
	}{
		{"whole response in the buffer", busy, busyRelayed, 1},
		{"body beyond the buffer", long, longRelayed, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, accepts := scriptedBackend(t, answers(c.first, busy))
			rc := newRawClient(t)
			ctx, cancel := context.WithTimeout(context.Background(), rawWait)
			defer cancel()
			sink := &fakeSink{}
			res := rc.Forward(ctx, addr, []byte(rawGet), false, true, false, sink)
			if res.Status != http.StatusServiceUnavailable {
				t.Fatalf("status %d, error %v", res.Status, res.Err)
			}
			res.Discard()
			if sink.String() != "" {
				t.Errorf("a discarded response reached the client: %q", sink.String())
			}
			res = relayed(rc.Forward(ctx, addr, []byte(rawGet), false, true, false, sink), sink)
			if got := sink.String(); res.Err != nil || got != c.then {
				t.Errorf("the exchange after a discard: error %v, client got %q", res.Err, got[:min(len(got), 200)])
			}
			if n := accepts.Load(); n != c.connections {
				t.Errorf("%d connections, want %d", n, c.connections)
			}
		})
	}
}
