package backend

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// stdTransport returns the http.Transport behind a Manager's HTTP/1.1 transport:
// itself, or the fallback of the fast client.
func stdTransport(rt http.RoundTripper) (*http.Transport, bool) {
	if f, ok := rt.(*fastTransport); ok {
		return f.std, true
	}
	t, ok := rt.(*http.Transport)
	return t, ok
}

// newFast returns a fast client with the default options.
func newFast(t *testing.T, o Options) *fastTransport {
	o = o.withDefaults()
	f := newFastTransport(o, newHTTP1Transport(o))
	t.Cleanup(f.CloseIdleConnections)
	return f
}

// countingServer is a net/http backend that counts the connections it accepted.
func countingServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func do(t *testing.T, rt http.RoundTripper, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("%s %s body: %v", req.Method, req.URL, err)
	}
	return res, string(body)
}

func newReq(method, url string, body io.Reader) *http.Request {
	req, _ := http.NewRequest(method, url, body)
	return req
}

func TestFastClientReusesConnections(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+r.Host+" "+r.UserAgent()+" "+string(body))
	}))
	f := newFast(t, Options{})
	for i := range 20 {
		req := newReq(http.MethodGet, srv.URL+"/p%2Fq?x=1", nil)
		req.Host = "virtual.test"
		if _, body := do(t, f, req); body != "GET /p%2Fq?x=1 virtual.test Go-http-client/1.1 " {
			t.Fatalf("request %d: %q", i, body)
		}
	}
	req := newReq(http.MethodPost, srv.URL+"/post", strings.NewReader("payload"))
	req.Header.Set("User-Agent", "")
	if _, body := do(t, f, req); body != "POST /post 127.0.0.1:"+strings.Split(srv.URL, ":")[2]+"  payload" {
		t.Fatalf("POST: %q", body)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 21 sequential requests, want 1", n)
	}
}

func TestFastClientResponseFraming(t *testing.T) {
	srv, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			_, _ = io.WriteString(w, "part1-")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part2")
			w.Header().Set("X-Sum", "7")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/cached":
			w.WriteHeader(http.StatusNotModified)
		case "/hints":
			w.Header().Set("Link", "</a.css>")
			w.WriteHeader(http.StatusEarlyHints)
			_, _ = io.WriteString(w, "final")
		default:
			_, _ = io.WriteString(w, "plain")
		}
	}))
	f := newFast(t, Options{})
	res, body := do(t, f, newReq(http.MethodGet, srv.URL+"/chunked", nil))
	if body != "part1-part2" || res.ContentLength != -1 || res.Trailer.Get("X-Sum") != "7" || res.Header.Get("Trailer") != "" {
		t.Fatalf("chunked: %q length %d trailer %v header %v", body, res.ContentLength, res.Trailer, res.Header)
	}
	if res, body = do(t, f, newReq(http.MethodHead, srv.URL+"/", nil)); body != "" || res.ContentLength != 5 {
		t.Fatalf("HEAD: %q length %d", body, res.ContentLength)
	}
	for _, path := range []string{"/empty", "/cached"} {
		if res, body = do(t, f, newReq(http.MethodGet, srv.URL+path, nil)); body != "" || res.Body != http.NoBody {
			t.Fatalf("%s: %d %q", path, res.StatusCode, body)
		}
	}
	var hints []int
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, code)
			return nil
		},
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/hints", nil)
	if res, body = do(t, f, req); body != "final" || len(hints) != 1 || hints[0] != 103 {
		t.Fatalf("1xx: %d %q hints %v", res.StatusCode, body, hints)
	}
}

// rawServer runs serve on every connection accepted on a loopback port.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				serve(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// readHead reads one request head from br.
func readHead(br *bufio.Reader) error {
	_, err := readHeadText(br)
	return err
}

// readHeadText reads one request head from br and returns its text, the empty line
// that ends it included.
func readHeadText(br *bufio.Reader) (string, error) {
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return head.String(), err
		}
		head.WriteString(line)
		if line == "\r\n" {
			return head.String(), nil
		}
	}
}

func TestFastClientUntilCloseAndStaleConnections(t *testing.T) {
	var served atomic.Int64
	// One answer per connection, without saying the connection closes: the next
	// request finds a stale idle connection.
	url := rawServer(t, func(c net.Conn) {
		if readHead(bufio.NewReader(c)) != nil {
			return
		}
		n := served.Add(1)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		if n == 1 {
			time.Sleep(50 * time.Millisecond)
		}
	})
	f := newFast(t, Options{})
	for i := range 3 {
		if _, body := do(t, f, newReq(http.MethodGet, url, nil)); body != "ok" {
			t.Fatalf("request %d: %q", i, body)
		}
		time.Sleep(80 * time.Millisecond) // the server has closed the connection by now
	}
	// A body that cannot be sent twice: the stale connection is noticed before use.
	if _, body := do(t, f, newReq(http.MethodPost, url, strings.NewReader("x"))); body != "ok" {
		t.Fatalf("POST after a stale connection: %q", body)
	}

	untilClose := rawServer(t, func(c net.Conn) {
		if readHead(bufio.NewReader(c)) == nil {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\ncontent-TYPE: text/x\r\nx-custom-thing:  v \r\n\r\nall of it")
		}
	})
	res, body := do(t, f, newReq(http.MethodGet, untilClose, nil))
	if body != "all of it" || !res.Close || res.ContentLength != -1 {
		t.Fatalf("close-delimited: %q close %v length %d", body, res.Close, res.ContentLength)
	}
	if res.Header["Content-Type"][0] != "text/x" || res.Header["X-Custom-Thing"][0] != "v" {
		t.Fatalf("header names not canonical: %v", res.Header)
	}
}

func TestFastClientErrorKinds(t *testing.T) {
	f := newFast(t, Options{ResponseHeaderTimeout: 100 * time.Millisecond})
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := closed.Addr().String()
	_ = closed.Close()
	_, err := f.RoundTrip(newReq(http.MethodGet, "http://"+addr+"/", nil))
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("connect failure = %v, want a dial *net.OpError", err)
	}

	reset := rawServer(t, func(c net.Conn) {
		_ = readHead(bufio.NewReader(c))
		_ = c.(*net.TCPConn).SetLinger(0)
	})
	_, err = f.RoundTrip(newReq(http.MethodPost, reset, strings.NewReader("b")))
	if err == nil || (errors.As(err, &op) && op.Op == "dial") {
		t.Fatalf("reset = %v, want a non-dial error", err)
	}

	silent := rawServer(t, func(c net.Conn) {
		_ = readHead(bufio.NewReader(c))
		time.Sleep(time.Second)
	})
	_, err = f.RoundTrip(newReq(http.MethodGet, silent, nil))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("header timeout = %v, want a timeout", err)
	}

	slow := newFast(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, silent, nil)
	if _, err = slow.RoundTrip(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("canceled request = %v, want the context's error", err)
	}

	trickle := rawServer(t, func(c net.Conn) {
		_ = readHead(bufio.NewReader(c))
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst")
		time.Sleep(time.Second)
	})
	ctx2, cancel2 := context.WithCancel(context.Background())
	req, _ = http.NewRequestWithContext(ctx2, http.MethodGet, trickle, nil)
	res, err := slow.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel2)
	if _, err := io.ReadAll(res.Body); !errors.Is(err, context.Canceled) {
		t.Fatalf("body read after cancel = %v, want context.Canceled", err)
	}
}

func TestFastClientFallsBack(t *testing.T) {
	srv, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "echo" {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
			_ = brw.Flush()
			line, _ := brw.ReadString('\n')
			_, _ = io.WriteString(conn, "echo:"+line)
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, r.Proto+" "+itoa(int(n)))
	}))
	f := newFast(t, Options{})
	big := strings.Repeat("b", fastBodyLimit+1)
	if !f.handles(newReq(http.MethodPost, srv.URL, strings.NewReader("small"))) || f.handles(newReq(http.MethodPost, srv.URL, strings.NewReader(big))) {
		t.Fatal("the body size limit is not where it should be")
	}
	if _, body := do(t, f, newReq(http.MethodPost, srv.URL, strings.NewReader(big))); body != "HTTP/1.1 "+itoa(len(big)) {
		t.Fatalf("large body: %q", body)
	}
	req := newReq(http.MethodGet, srv.URL, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	res, err := f.RoundTrip(req)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", res, err)
	}
	rwc, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatal("upgraded body is not writable")
	}
	defer rwc.Close()
	_, _ = io.WriteString(rwc, "hi\n")
	if line, _ := bufio.NewReader(rwc).ReadString('\n'); line != "echo:hi\n" {
		t.Fatalf("upgraded stream: %q", line)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
