package h1

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// forwarderFunc adapts a function to Forwarder.
type forwarderFunc func(x *Exchange) bool

func (f forwarderFunc) Forward(x *Exchange) bool { return f(x) }

// rawAnswer writes a response framed by Content-Length whose body is body, as a
// forwarder that frames its own responses does.
func rawAnswer(x *Exchange, body string) {
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n"
	if x.Closing() {
		head += "Connection: close\r\n"
	}
	_, _ = io.WriteString(x, head+"\r\n"+body)
}

// targetForwarder answers every request it is offered with "fwd <target>", and
// counts the offers.
func targetForwarder(offers *atomic.Int64) Forwarder {
	return forwarderFunc(func(x *Exchange) bool {
		offers.Add(1)
		rawAnswer(x, "fwd "+x.Target())
		return true
	})
}

// handlerBody is a handler that answers "handler <method> <path> <body>", and
// counts its requests.
func handlerBody(calls *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "handler "+r.Method+" "+r.URL.Path+" "+string(body))
	})
}

// expectClosed fails the test unless the server closes c (after whatever is still
// buffered in br) within the test timeout.
func expectClosed(t *testing.T, br *bufio.Reader, what string) {
	t.Helper()
	if n, err := io.Copy(io.Discard, br); err != nil || n != 0 {
		t.Fatalf("%s: connection not closed cleanly after the response (%d more bytes, %v)", what, n, err)
	}
}

// offered is what a forwarder saw of an exchange, copied out during the call.
type offered struct {
	method, target, host, remote, date string
	remoteHost                         string
	tls, closing                       bool
	fields                             []string
	arrived                            time.Time
}

func TestForwarderDeclinesToHandler(t *testing.T) {
	seen := make(chan offered, 4)
	fwd := forwarderFunc(func(x *Exchange) bool {
		o := offered{method: x.Method(), target: x.Target(), host: x.Host(), remote: x.RemoteAddr(),
			date: string(x.DateLine()), tls: x.TLS(), closing: x.Closing(), arrived: x.Arrived(),
			remoteHost: x.RemoteHost()}
		for i := range x.Fields() {
			name, value := x.Field(i)
			o.fields = append(o.fields, name+"="+value)
		}
		seen <- o
		return false
	})
	addr, _ := serve(t, Config{Forwarder: fwd, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+r.Host+" "+r.Header.Get("X-A")+" "+r.Header.Get("X-B"))
	})})
	c, br := dial(t, addr)
	// Twice on one connection: a declined request leaves the connection usable.
	for i := range 2 {
		sent := time.Now()
		_, _ = io.WriteString(c, "GET /p?q=1 HTTP/1.1\r\nHost: h.test\r\nx-a: one\r\nX-B:  two \r\n\r\n")
		res, body := read(t, br, "GET")
		if res.StatusCode != 200 || body != "GET /p?q=1 h.test one two" || res.Close {
			t.Fatalf("request %d: %d %q close %v", i, res.StatusCode, body, res.Close)
		}
		var o offered
		select {
		case o = <-seen:
		case <-time.After(testTimeout):
			t.Fatal("the request was not offered to the forwarder")
		}
		want := offered{method: "GET", target: "/p?q=1", host: "h.test", remote: c.LocalAddr().String(),
			fields: []string{"Host=h.test", "X-A=one", "X-B=two"}}
		if o.method != want.method || o.target != want.target || o.host != want.host || o.remote != want.remote ||
			o.tls || o.closing || strings.Join(o.fields, "|") != strings.Join(want.fields, "|") {
			t.Fatalf("forwarder saw %+v, want %+v", o, want)
		}
		if !strings.HasPrefix(o.date, "Date: ") || !strings.HasSuffix(o.date, " GMT\r\n") {
			t.Fatalf("DateLine %q", o.date)
		}
		if host, _, _ := net.SplitHostPort(want.remote); o.remoteHost != host {
			t.Fatalf("RemoteHost %q, want %q", o.remoteHost, host)
		}
		// Each request's own arrival, read after it was sent.
		if o.arrived.Before(sent) || o.arrived.After(time.Now()) {
			t.Fatalf("request %d arrived at %v, sent at %v", i, o.arrived, sent)
		}
	}
}

func TestForwarderAnswersRawKeepAliveAndPipelined(t *testing.T) {
	var offers, calls atomic.Int64
	addr, _ := serve(t, Config{Forwarder: targetForwarder(&offers), Handler: handlerBody(&calls)})
	c, br := dial(t, addr)
	for i := range 3 {
		target := "/seq/" + strconv.Itoa(i)
		_, _ = io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: h\r\n\r\n")
		if res, body := read(t, br, "GET"); res.StatusCode != 200 || body != "fwd "+target || res.Close {
			t.Fatalf("request %d: %d %q close %v", i, res.StatusCode, body, res.Close)
		}
	}
	// Two requests in one write: the second is already buffered when the first is
	// answered, and must be answered after it.
	_, _ = io.WriteString(c, "GET /pipe/a HTTP/1.1\r\nHost: h\r\n\r\nGET /pipe/b HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, body := read(t, br, "GET"); body != "fwd /pipe/a" {
		t.Fatalf("first pipelined: %q", body)
	}
	if _, body := read(t, br, "GET"); body != "fwd /pipe/b" {
		t.Fatalf("second pipelined: %q", body)
	}
	if offers.Load() != 5 || calls.Load() != 0 {
		t.Fatalf("%d offers and %d handler calls, want 5 and 0", offers.Load(), calls.Load())
	}
}

// TestRequestsNotOffered: requests with a chunked body, HTTP/1.0 requests and
// requests with an expectation go to the handler without the forwarder seeing them.
// (Bodies framed by Content-Length are offered once buffered whole: see
// forward_body_test.go.)
func TestRequestsNotOffered(t *testing.T) {
	var offers, calls atomic.Int64
	addr, _ := serve(t, Config{Forwarder: targetForwarder(&offers), Handler: handlerBody(&calls)})
	cases := []struct{ name, request, method, body string }{
		{"chunked", "POST /ch HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", "POST", "handler POST /ch hi"},
		{"HTTP/1.0", "GET /old HTTP/1.0\r\nHost: h\r\n\r\n", "GET", "handler GET /old "},
		{"expect continue", "GET /exp HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", "GET", "handler GET /exp "},
	}
	for _, tc := range cases {
		c, br := dial(t, addr)
		_, _ = io.WriteString(c, tc.request)
		if res, body := read(t, br, tc.method); res.StatusCode != 200 || body != tc.body {
			t.Errorf("%s: %d %q", tc.name, res.StatusCode, body)
		}
	}
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "GET /teapot HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\n\r\n")
	if res, _ := read(t, br, "GET"); res.StatusCode != http.StatusExpectationFailed {
		t.Errorf("unknown expectation: %d", res.StatusCode)
	}
	if offers.Load() != 0 || calls.Load() != int64(len(cases)) {
		t.Fatalf("%d offers and %d handler calls, want 0 and %d", offers.Load(), calls.Load(), len(cases))
	}
}

// TestForwarderResponseWriterChunked: a forwarder that answers through the
// ResponseWriter gets a handler's framing, here chunked since it flushes before
// the end, and the connection carries on after it.
func TestForwarderResponseWriterChunked(t *testing.T) {
	fwd := forwarderFunc(func(x *Exchange) bool {
		w := x.ResponseWriter()
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "part1-")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "part2 "+x.Request.URL.Path)
		return true
	})
	var calls atomic.Int64
	addr, _ := serve(t, Config{Forwarder: fwd, Handler: handlerBody(&calls)})
	c, br := dial(t, addr)
	for i := range 2 {
		_, _ = io.WriteString(c, "GET /w HTTP/1.1\r\nHost: h\r\n\r\n")
		res, body := read(t, br, "GET")
		if res.StatusCode != 200 || body != "part1-part2 /w" || len(res.TransferEncoding) != 1 || res.Close {
			t.Fatalf("request %d: %d %q encoding %v close %v", i, res.StatusCode, body, res.TransferEncoding, res.Close)
		}
		if res.Header.Get("Date") == "" || res.Header.Get("Content-Type") != "text/plain" {
			t.Fatalf("request %d: header %v", i, res.Header)
		}
	}
	if calls.Load() != 0 {
		t.Fatalf("handler ran %d times", calls.Load())
	}
}

// TestForwarderAbortAndCloseAfter: a response the forwarder abandons must not look
// whole to the client (no terminating chunk, connection closed), and one framed by
// the connection's end must get that end.
func TestForwarderAbortAndCloseAfter(t *testing.T) {
	fwd := forwarderFunc(func(x *Exchange) bool {
		switch x.Target() {
		case "/abort-writer":
			w := x.ResponseWriter()
			_, _ = io.WriteString(w, "part1")
			w.(http.Flusher).Flush()
			x.Abort()
		case "/abort-raw":
			_, _ = io.WriteString(x, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nabc")
			x.Abort()
		case "/close-after":
			_, _ = io.WriteString(x, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
			x.CloseAfter()
		}
		return true
	})
	addr, _ := serve(t, Config{Forwarder: fwd, Handler: http.NotFoundHandler()})
	cases := map[string]string{
		"/abort-writer": "5\r\npart1\r\n",
		"/abort-raw":    "abc",
		"/close-after":  "until the end",
	}
	for target, wantRest := range cases {
		c, br := dial(t, addr)
		_, _ = io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: h\r\n\r\n")
		all, err := io.ReadAll(br)
		if err != nil {
			t.Fatalf("%s: %v after %q (the connection was not closed)", target, err, all)
		}
		_, rest, ok := bytes.Cut(all, []byte("\r\n\r\n"))
		if !ok || !bytes.HasPrefix(all, []byte("HTTP/1.1 200 OK\r\n")) || string(rest) != wantRest {
			t.Fatalf("%s: got %q, want a head and then exactly %q", target, all, wantRest)
		}
	}
}

// syncBuffer is a log destination a test can read while the server writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestForwarderPanic: a panicking forwarder costs its connection, is logged (unless
// it panicked with http.ErrAbortHandler), and leaves the server serving.
func TestForwarderPanic(t *testing.T) {
	var offers atomic.Int64
	answer := targetForwarder(&offers)
	fwd := forwarderFunc(func(x *Exchange) bool {
		switch x.Target() {
		case "/panic":
			panic("forwarder broke")
		case "/abort-panic":
			_, _ = io.WriteString(x, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\npart")
			panic(http.ErrAbortHandler)
		}
		return answer.Forward(x)
	})
	logs := &syncBuffer{}
	addr, _ := serve(t, Config{Forwarder: fwd, Handler: http.NotFoundHandler(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	for _, target := range []string{"/panic", "/abort-panic"} {
		c, br := dial(t, addr)
		_, _ = io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: h\r\n\r\n")
		all, err := io.ReadAll(br)
		if err != nil {
			t.Fatalf("%s: connection not closed: %v", target, err)
		}
		if target == "/panic" && len(all) != 0 {
			t.Fatalf("%s: got %q, want the connection closed unanswered", target, all)
		}
	}
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, body := read(t, br, "GET"); body != "fwd /after" {
		t.Fatalf("after the panics: %q", body)
	}
	got := logs.String()
	if strings.Count(got, "panic forwarding request") != 1 || !strings.Contains(got, "forwarder broke") {
		t.Fatalf("log %q: want the one panic that was not http.ErrAbortHandler", got)
	}
}

// TestForwarderClosing: Closing reports a client that asked to close and a server
// that drains, and the connection ends after the answer in both cases.
func TestForwarderClosing(t *testing.T) {
	closing := make(chan bool, 4)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	fwd := forwarderFunc(func(x *Exchange) bool {
		if x.Target() == "/slow" {
			entered <- struct{}{}
			select {
			case <-release:
			case <-time.After(testTimeout):
			}
		}
		closing <- x.Closing()
		rawAnswer(x, "fwd")
		return true
	})
	addr, srv := serve(t, Config{Forwarder: fwd, Handler: http.NotFoundHandler()})
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	for i, want := range []bool{false, true} {
		if res, _ := read(t, br, "GET"); res.Close != want {
			t.Fatalf("response %d: close %v", i, res.Close)
		}
		if got := <-closing; got != want {
			t.Fatalf("request %d: Closing() = %v, want %v", i, got, want)
		}
	}
	expectClosed(t, br, "Connection: close")

	c, br = dial(t, addr)
	_, _ = io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	select {
	case <-entered:
	case <-time.After(testTimeout):
		t.Fatal("the request was not offered")
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	for deadline := time.Now().Add(testTimeout); !srv.Draining(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server did not start draining")
		}
	}
	close(release)
	if got := <-closing; !got {
		t.Fatal("Closing() = false while the server drains")
	}
	if res, _ := read(t, br, "GET"); !res.Close {
		t.Fatal("the response while draining does not say close")
	}
	expectClosed(t, br, "draining")
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// waitDone reports whether ctx ends within the test timeout.
func waitDone(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	case <-time.After(testTimeout):
		return false
	}
}

// TestForwarderContextEnds: the exchange's context ends when the client goes away
// during a long forward (the server's watcher sees it), and once the request has
// been answered.
func TestForwarderContextEnds(t *testing.T) {
	gone := make(chan bool, 1)
	answered := make(chan context.Context, 1)
	fwd := forwarderFunc(func(x *Exchange) bool {
		if x.Target() == "/wait" {
			gone <- waitDone(x.Context())
			return true
		}
		if x.Context().Err() != nil {
			rawAnswer(x, "context ended early")
			return true
		}
		answered <- x.Context()
		rawAnswer(x, "fwd")
		return true
	})
	addr, _ := serve(t, Config{WatchAfter: 20 * time.Millisecond, Forwarder: fwd, Handler: http.NotFoundHandler()})
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "GET /quick HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, body := read(t, br, "GET"); body != "fwd" {
		t.Fatalf("quick request: %q", body)
	}
	if ctx := <-answered; !waitDone(ctx) {
		t.Fatal("the context of an answered exchange did not end")
	}

	// A body is whole in the buffer when its request is offered, so the socket
	// holds nothing more of it, and the client is watched as for one without.
	for _, request := range []string{"GET /wait HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /wait HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody"} {
		c, _ = dial(t, addr)
		_, _ = io.WriteString(c, request)
		time.Sleep(100 * time.Millisecond) // Past WatchAfter: the watcher reads by now.
		_ = c.Close()
		select {
		case ended := <-gone:
			if !ended {
				t.Fatalf("the exchange's context outlived its client: %q", request)
			}
		case <-time.After(2 * testTimeout):
			t.Fatalf("Forward did not return: %q", request)
		}
	}
}

// TestDeclinedRequestStillWatched: a request the forwarder declines goes to the
// handler, whose client must still be watched, whether the watcher started during
// the forwarder's call or not (it once stopped for good when it had not).
func TestDeclinedRequestStillWatched(t *testing.T) {
	canceled := make(chan bool, 1)
	fwd := forwarderFunc(func(x *Exchange) bool {
		if x.Target() == "/slow-decline" {
			// Long enough for the watcher to start during the call.
			time.Sleep(80 * time.Millisecond)
		}
		return false
	})
	addr, _ := serve(t, Config{WatchAfter: 20 * time.Millisecond, Forwarder: fwd, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		canceled <- waitDone(r.Context())
	})})
	for _, target := range []string{"/decline", "/slow-decline"} {
		c, _ := dial(t, addr)
		_, _ = io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: h\r\n\r\n")
		time.Sleep(200 * time.Millisecond) // The handler runs, past WatchAfter.
		_ = c.Close()
		select {
		case ended := <-canceled:
			if !ended {
				t.Fatalf("%s: the handler's context outlived its client", target)
			}
		case <-time.After(2 * testTimeout):
			t.Fatalf("%s: the handler did not return", target)
		}
	}
}

// TestWatcherBytesAroundForwarder: a byte of the next request the watcher reads
// during a long forward belongs to that request, whether the forwarder answers or
// declines.
func TestWatcherBytesAroundForwarder(t *testing.T) {
	fwd := forwarderFunc(func(x *Exchange) bool {
		if strings.HasPrefix(x.Target(), "/slow") {
			time.Sleep(100 * time.Millisecond)
		}
		if strings.HasSuffix(x.Target(), "decline") {
			return false
		}
		// The method is in the answer: a request that lost its first byte still
		// parses, as "ET".
		rawAnswer(x, "fwd "+x.Method()+" "+x.Target())
		return true
	})
	addr, _ := serve(t, Config{WatchAfter: 10 * time.Millisecond, Forwarder: fwd, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "handler "+r.URL.Path)
	})})
	c, br := dial(t, addr)
	for _, first := range []string{"/slow", "/slow-decline"} {
		_, _ = io.WriteString(c, "GET "+first+" HTTP/1.1\r\nHost: h\r\n\r\n")
		time.Sleep(50 * time.Millisecond) // The watcher is reading by now.
		_, _ = io.WriteString(c, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
		want := "fwd GET " + first
		if first == "/slow-decline" {
			want = "handler " + first
		}
		for _, w := range []string{want, "fwd GET /next"} {
			if _, body := read(t, br, "GET"); body != w {
				t.Fatalf("after %s: got %q, want %q", first, body, w)
			}
		}
	}
}

// TestForwarderHijack: the ResponseWriter a forwarder gets is a handler's, which may
// hijack the connection; the server must then leave the connection to the hijacker,
// writing and reading nothing more on it, as it does after a handler's hijack.
func TestForwarderHijack(t *testing.T) {
	fwd := forwarderFunc(func(x *Exchange) bool {
		conn, brw, err := http.NewResponseController(x.ResponseWriter()).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return true
		}
		_, _ = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		// The hijacker serves the connection after Forward returns, as an upgraded
		// connection's relay would.
		go func() {
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(testTimeout))
			if line, err := brw.ReadString('\n'); err == nil {
				_, _ = io.WriteString(conn, "echo:"+line)
			}
		}()
		return true
	})
	addr, _ := serve(t, Config{Forwarder: fwd, Handler: http.NotFoundHandler()})
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", res, err)
	}
	_, _ = io.WriteString(c, "hi\n")
	all, _ := io.ReadAll(br)
	if string(all) != "echo:hi\n" {
		t.Fatalf("after the hijack the client read %q, want only the hijacker's %q", all, "echo:hi\n")
	}
}

// peerConn is a connection that reports the peer address it is given, as a
// connection from another kind of peer would.
type peerConn struct {
	net.Conn
	peer net.Addr
}

func (c peerConn) RemoteAddr() net.Addr { return c.peer }

// peerText is a peer address of any text.
type peerText string

func (a peerText) Network() string { return "tcp" }
func (a peerText) String() string  { return string(a) }

// TestRemoteIPIsTheCanonicalPeerAddress checks the client address the raw path's
// rate limits key requests by: the peer's IP address in canonical form, kept from
// the connection's first request for the next, and each connection's own.
func TestRemoteIPIsTheCanonicalPeerAddress(t *testing.T) {
	cases := []struct{ peer, want string }{
		{"192.0.2.7:5000", "192.0.2.7"},
		{"[::ffff:192.0.2.8]:80", "192.0.2.8"},
		{"[fe80::1%eth0]:80", "fe80::1"},
		{"[2001:DB8::7]:80", "2001:db8::7"},
		{"pipe", "pipe"},
	}
	seen := make(chan string, 4)
	fwd := forwarderFunc(func(x *Exchange) bool {
		seen <- x.RemoteIP()
		return false
	})
	srv := New(Config{Forwarder: fwd, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})})
	t.Cleanup(srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	for _, tc := range cases {
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				accepted <- c
			}
		}()
		c, br := dial(t, ln.Addr().String())
		go srv.ServeConn(peerConn{Conn: <-accepted, peer: peerText(tc.peer)})
		for i := range 2 {
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			if res, _ := read(t, br, "GET"); res.StatusCode != http.StatusOK {
				t.Fatalf("%s: request %d: status %d", tc.peer, i, res.StatusCode)
			}
			select {
			case got := <-seen:
				if got != tc.want {
					t.Fatalf("%s: request %d: RemoteIP %q, want %q", tc.peer, i, got, tc.want)
				}
			case <-time.After(testTimeout):
				t.Fatalf("%s: the request was not offered to the forwarder", tc.peer)
			}
		}
		_ = c.Close()
	}
}
