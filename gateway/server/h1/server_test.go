package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testTimeout bounds every network wait in the tests.
const testTimeout = 5 * time.Second

// serve starts a Server on a loopback port and returns its address; the server is
// closed when the test ends.
func serve(t testing.TB, cfg Config) (string, *Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(cfg)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go srv.ServeConn(c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		srv.Close()
	})
	return ln.Addr().String(), srv
}

// dial opens a connection with a deadline.
func dial(t testing.TB, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	return c, bufio.NewReader(c)
}

// read reads one response to a request of method and its whole body.
func read(t testing.TB, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return res, string(body)
}

// echoHandler answers "<method> <path> <body>" and the request's trailer X-T.
var echoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("X-Trailer-Seen", r.Trailer.Get("X-T"))
	_, _ = io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(body))
})

func TestPipelinedRequestsInOrder(t *testing.T) {
	addr, _ := serve(t, Config{Handler: echoHandler})
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"+
		"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"+
		"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: tv\r\n\r\n"+
		"HEAD /d HTTP/1.1\r\nHost: h\r\n\r\n")
	for _, want := range []struct{ method, body, trailer string }{
		{"GET", "GET /a ", ""}, {"POST", "POST /b hello", ""}, {"POST", "POST /c abcde", "tv"}, {"HEAD", "", ""},
	} {
		res, body := read(t, br, want.method)
		if res.StatusCode != 200 || body != want.body || res.Header.Get("X-Trailer-Seen") != want.trailer {
			t.Fatalf("%s: %d %q trailer %q", want.method, res.StatusCode, body, res.Header.Get("X-Trailer-Seen"))
		}
		if res.ContentLength != int64(len("GET /a ")) && want.method == "GET" {
			t.Errorf("small body without Content-Length: got length %d", res.ContentLength)
		}
	}
}

// framingHandlers answer by path in the ways a response can be framed.
func framingHandlers(t *testing.T, big string) map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"/small": func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hi") },
		"/big":   func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, big) },
		"/declared": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "4")
			_, _ = io.WriteString(w, "four")
		},
		"/flushed": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "a")
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("flush: %v", err)
			}
			// An empty write must not become the chunk that ends the body.
			_, _ = io.WriteString(w, "")
			_, _ = io.WriteString(w, "b")
		},
		"/nocontent": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
			if _, err := io.WriteString(w, "x"); !errors.Is(err, http.ErrBodyNotAllowed) {
				t.Errorf("write to 204: %v", err)
			}
		},
		"/trailers": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Sum")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "data")
			w.Header().Set("X-Sum", "42")
			w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
		},
		"/hints": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</s.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			_, _ = io.WriteString(w, "final")
		},
		"/overflow": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "2")
			if _, err := io.WriteString(w, "abc"); !errors.Is(err, http.ErrContentLength) {
				t.Errorf("write past Content-Length: %v", err)
			}
			_, _ = io.WriteString(w, "ab")
		},
	}
}

func TestResponseFraming(t *testing.T) {
	big := strings.Repeat("x", 3*deferLimit)
	handlers := framingHandlers(t, big)
	addr, _ := serve(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handlers[r.URL.Path](w, r) })})
	client := &http.Client{Timeout: testTimeout}
	check := func(path string, wantStatus int, wantBody string, wantLength int64, chunked bool) *http.Response {
		t.Helper()
		res, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		isChunked := len(res.TransferEncoding) > 0
		if res.StatusCode != wantStatus || string(body) != wantBody || res.ContentLength != wantLength || isChunked != chunked {
			t.Errorf("%s: %d %q length %d chunked %v", path, res.StatusCode, body, res.ContentLength, isChunked)
		}
		if res.Header.Get("Date") == "" {
			t.Errorf("%s: no Date", path)
		}
		return res
	}
	check("/small", 200, "hi", 2, false)
	check("/big", 200, big, -1, true)
	check("/declared", 200, "four", 4, false)
	check("/flushed", 200, "ab", -1, true)
	check("/nocontent", 204, "", 0, false)
	check("/overflow", 200, "ab", 2, false)
	res := check("/trailers", 200, "data", -1, true)
	if res.Trailer.Get("X-Sum") != "42" || res.Trailer.Get("X-Late") != "yes" {
		t.Errorf("trailers = %v", res.Trailer)
	}
	if ct := check("/small", 200, "hi", 2, false).Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("sniffed Content-Type = %q", ct)
	}

	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "GET /hints HTTP/1.1\r\nHost: h\r\n\r\n")
	line, _ := br.ReadString('\n')
	if line != "HTTP/1.1 103 Early Hints\r\n" {
		t.Fatalf("first line %q", line)
	}
	hints, _ := br.ReadString('\n')
	for l := hints; l != "\r\n"; l, _ = br.ReadString('\n') {
	}
	if !strings.HasPrefix(hints, "Link: ") {
		t.Errorf("103 header %q", hints)
	}
	if res, body := read(t, br, "GET"); res.StatusCode != 200 || body != "final" || res.Header.Get("Link") != "" {
		t.Errorf("after hints: %d %q %v", res.StatusCode, body, res.Header)
	}
}

func TestHTTP10(t *testing.T) {
	addr, _ := serve(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "a")
		http.NewResponseController(w).Flush()
		_, _ = io.WriteString(w, "b")
	})})
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	res, body := read(t, br, "GET")
	if res.Proto != "HTTP/1.0" || body != "ab" || len(res.TransferEncoding) != 0 || !res.Close {
		t.Fatalf("HTTP/1.0 streamed response: %s %q %v close %v", res.Proto, body, res.TransferEncoding, res.Close)
	}
}

func TestExpectContinue(t *testing.T) {
	addr, _ := serve(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reject" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		body, _ := io.ReadAll(r.Body)
		_, _ = w.Write(body)
	})})
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	if line, _ := br.ReadString('\n'); line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("got %q before sending the body", line)
	}
	_, _ = br.ReadString('\n')
	_, _ = io.WriteString(c, "body")
	if res, body := read(t, br, "PUT"); res.StatusCode != 200 || body != "body" {
		t.Fatalf("%d %q", res.StatusCode, body)
	}

	// A handler that refuses without reading: no 100 Continue, and the connection
	// cannot be reused since the body may still come.
	_, _ = io.WriteString(c, "PUT /reject HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	if res, _ := read(t, br, "PUT"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("reject: %d", res.StatusCode)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("connection still open after an unread expected body")
	}

	c2, br2 := dial(t, addr)
	_, _ = io.WriteString(c2, "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: teapot\r\n\r\n")
	if res, _ := read(t, br2, "PUT"); res.StatusCode != http.StatusExpectationFailed {
		t.Fatalf("unknown expectation: %d", res.StatusCode)
	}
}

func TestRefusedHeads(t *testing.T) {
	var calls atomic.Int64
	addr, _ := serve(t, Config{MaxHeaderBytes: 1 << 10, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
	})})
	cases := map[string]int{
		"GET / HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("y", 8<<10) + "\r\n\r\n":                                    431,
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n":                400,
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n":                                                 501,
		"GET / HTTP/3.0\r\nHost: h\r\n\r\n":                                                                             505,
		"GET / HTTP/1.1\r\nHost: h\r\n\r\nPOST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n": 400,
	}
	for payload, status := range cases {
		c, br := dial(t, addr)
		_, _ = io.WriteString(c, payload)
		res, _ := read(t, br, "GET")
		if strings.Count(payload, "HTTP/1.1\r\n") == 2 {
			res, _ = read(t, br, "GET")
		}
		if res.StatusCode != status || !res.Close {
			t.Errorf("%.40q: %d close %v, want %d", payload, res.StatusCode, res.Close, status)
		}
		if _, err := br.ReadByte(); err == nil {
			t.Errorf("%.40q: connection left open", payload)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("handler ran %d times, want once (the good pipelined request)", calls.Load())
	}
}

func TestChunkedBodyErrors(t *testing.T) {
	errs := make(chan error, 4)
	addr, _ := serve(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		errs <- err
	})})
	for _, body := range []string{"3\nabc\r\n0\r\n\r\n", "3\r\nabcX\r\n0\r\n\r\n", "3 ;x\r\nabc\r\n0\r\n\r\n", "zz\r\n"} {
		c, br := dial(t, addr)
		_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"+body)
		if err := <-errs; err == nil {
			t.Errorf("%q: body read without error", body)
		}
		_, _ = io.Copy(io.Discard, br) // the server must close the connection
	}
}

func TestHijackKeepsBufferedBytes(t *testing.T) {
	addr, _ := serve(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		for range 2 {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = io.WriteString(conn, "echo:"+line)
		}
	})})
	c, br := dial(t, addr)
	// The first upgraded line travels with the head, so it sits in the server's buffer
	// when the handler hijacks.
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nearly\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", res, err)
	}
	_, _ = io.WriteString(c, "late\n")
	for _, want := range []string{"echo:early\n", "echo:late\n"} {
		if got, _ := br.ReadString('\n'); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestTimeouts(t *testing.T) {
	addr, _ := serve(t, Config{Handler: echoHandler, ReadHeaderTimeout: 150 * time.Millisecond, IdleTimeout: 200 * time.Millisecond})
	// A head that never ends is cut off.
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n")
	start := time.Now()
	if _, err := br.ReadByte(); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("slow head: %v after %v", err, time.Since(start))
	}
	// An idle keep-alive connection is closed.
	c, br = dial(t, addr)
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	read(t, br, "GET")
	start = time.Now()
	if _, err := br.ReadByte(); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("idle connection: %v after %v", err, time.Since(start))
	}
}

func TestShutdownDrains(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	addr, srv := serve(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		_, _ = io.WriteString(w, "done")
	})})
	idle, idleBR := dial(t, addr)
	_, _ = io.WriteString(idle, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	read(t, idleBR, "GET")
	busy, busyBR := dial(t, addr)
	_, _ = io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	<-entered

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	if _, err := idleBR.ReadByte(); err == nil {
		t.Fatal("idle connection not closed by Shutdown")
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	res, body := read(t, busyBR, "GET")
	if body != "done" || !res.Close {
		t.Fatalf("in-flight response %q close %v; want it to end the connection", body, res.Close)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestPanicClosesConnection(t *testing.T) {
	addr, _ := serve(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	})})
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("a panicking handler's connection stays open")
	}
}

func TestClientGoneCancelsContext(t *testing.T) {
	canceled := make(chan time.Duration, 1)
	addr, _ := serve(t, Config{WatchAfter: 20 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		select {
		case <-r.Context().Done():
			canceled <- time.Since(start)
		case <-time.After(testTimeout):
			canceled <- -1
		}
	})})
	c, _ := dial(t, addr)
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	_ = c.Close()
	if d := <-canceled; d < 0 {
		t.Fatal("the request's context outlived its client")
	}
}

func TestWatcherKeepsPipelinedBytes(t *testing.T) {
	addr, _ := serve(t, Config{WatchAfter: 10 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(100 * time.Millisecond)
		}
		_, _ = io.WriteString(w, r.URL.Path)
	})})
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // the watcher is reading by now
	_, _ = io.WriteString(c, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	for _, want := range []string{"/slow", "/next"} {
		if _, body := read(t, br, "GET"); body != want {
			t.Fatalf("got %q, want %q", body, want)
		}
	}
}

func TestH2CPrefaceHandedOff(t *testing.T) {
	got := make(chan string, 1)
	addr, _ := serve(t, Config{Handler: echoHandler, Handoff: func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, len(h2Preface)+10)
		n, _ := io.ReadFull(c, buf)
		got <- string(buf[:n])
	}})
	c, _ := dial(t, addr)
	_, _ = io.WriteString(c, h2Preface+"\r\n\r\nSM\r\n\r\n")
	if s := <-got; s != h2Preface+"\r\n\r\nSM\r\n\r\n" {
		t.Fatalf("handed-off connection read %q", s)
	}
}
