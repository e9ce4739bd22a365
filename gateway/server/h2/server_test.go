package h2

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

func TestGetAndPostEcho(t *testing.T) {
	var sawServer, sawLocal bool
	var mu sync.Mutex
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		_, sawServer = r.Context().Value(http.ServerContextKey).(*http.Server)
		sawLocal = r.Context().Value(http.LocalAddrContextKey) != nil
		mu.Unlock()
		if r.Proto != "HTTP/2.0" || r.ProtoMajor != 2 || r.Host != "example.test" {
			http.Error(w, "bad request line "+r.Proto+" "+r.Host, 500)
			return
		}
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-URI", r.RequestURI)
		w.Header().Set("X-CL", strconv.FormatInt(r.ContentLength, 10))
		w.Header().Set("X-Cookie", r.Header.Get("Cookie"))
		io.Copy(w, r.Body)
	}), nil)
	c := h2cClient(t)

	req, _ := http.NewRequest("GET", "http://"+ts.addr+"/a/b?x=1", nil)
	req.Host = "example.test"
	req.Header.Add("Cookie", "a=1")
	req.Header.Add("Cookie", "b=2")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.ProtoMajor != 2 || len(body) != 0 {
		t.Fatalf("GET: %d %s %q", res.StatusCode, res.Proto, body)
	}
	if got := res.Header.Get("X-URI"); got != "/a/b?x=1" {
		t.Errorf("RequestURI = %q", got)
	}
	if got := res.Header.Get("X-CL"); got != "0" {
		t.Errorf("GET ContentLength = %s, want 0", got)
	}
	if got := res.Header.Get("X-Cookie"); got != "a=1; b=2" {
		t.Errorf("Cookie = %q", got)
	}
	if res.Header.Get("Date") == "" || res.Header.Get("Content-Length") != "0" {
		t.Errorf("Date %q Content-Length %q", res.Header.Get("Date"), res.Header.Get("Content-Length"))
	}

	req, _ = http.NewRequest("POST", "http://"+ts.addr+"/echo", strings.NewReader("hello, h2"))
	req.Host = "example.test"
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "hello, h2" || res.Header.Get("X-Method") != "POST" {
		t.Fatalf("POST echo: %q %v", body, res.Header)
	}
	if res.Header.Get("Content-Length") != "9" || res.Header.Get("X-CL") != "9" {
		t.Errorf("Content-Length %q, request ContentLength %q", res.Header.Get("Content-Length"), res.Header.Get("X-CL"))
	}
	mu.Lock()
	defer mu.Unlock()
	if !sawServer || !sawLocal {
		t.Errorf("context values: server %v local addr %v", sawServer, sawLocal)
	}
}

func TestLargeBodiesBothWays(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("X-Sum", fmt.Sprintf("%x", h.Sum(nil)))
		w.Header().Set("X-Len", strconv.FormatInt(n, 10))
		// The response is the request's body again, generated here.
		seed := []byte(r.Header.Get("X-Seed"))
		chunk := bytes.Repeat(seed, 1000)
		for sent := 0; sent < 5<<20; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}), func(c *Config) {
		c.MaxReceiveBufferPerConnection = 256 << 10
		c.MaxReceiveBufferPerStream = 128 << 10
	})
	c := h2cClient(t)
	up := make([]byte, 5<<20)
	rand.Read(up)
	req, _ := http.NewRequest("POST", "http://"+ts.addr+"/", bytes.NewReader(up))
	req.Header.Set("X-Seed", "0123456789abcdef0123456789abcdef")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	down, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Header.Get("X-Len"); got != strconv.Itoa(len(up)) {
		t.Fatalf("server read %s bytes, want %d", got, len(up))
	}
	if got, want := res.Header.Get("X-Sum"), fmt.Sprintf("%x", sha256.Sum256(up)); got != want {
		t.Fatalf("upload digest %s, want %s", got, want)
	}
	seedChunk := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef"), 1000)
	want := bytes.Repeat(seedChunk, (5<<20+len(seedChunk)-1)/len(seedChunk))
	if !bytes.Equal(down, want) {
		t.Fatalf("download: %d bytes, want %d identical", len(down), len(want))
	}
}

func TestManyConcurrentStreams(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "path="+r.URL.Path)
	}), nil)
	tr := h2cTransport()
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: ioBound}
	// Prime one connection so that all streams share it.
	if res, err := c.Get("http://" + ts.addr + "/prime"); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := fmt.Sprintf("/s%d", i)
			res, err := c.Get("http://" + ts.addr + path)
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || string(b) != "path="+path {
				errs <- fmt.Errorf("%s: %q %v", path, b, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ts.srv.mu.Lock()
	n := len(ts.srv.conns)
	ts.srv.mu.Unlock()
	if n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestTrailersBothWays(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got := r.Trailer.Get("X-Req-Trailer")
		w.Header().Set("Trailer", "X-Declared")
		w.WriteHeader(200)
		io.WriteString(w, "body")
		w.Header().Set("X-Declared", "d:"+got)
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	}), nil)
	c := h2cClient(t)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", "http://"+ts.addr+"/", pr)
	req.Trailer = http.Header{"X-Req-Trailer": nil}
	go func() {
		io.WriteString(pw, "payload")
		req.Trailer.Set("X-Req-Trailer", "rt")
		pw.Close()
	}()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "body" {
		t.Fatalf("body %q", b)
	}
	if got := res.Trailer.Get("X-Declared"); got != "d:rt" {
		t.Errorf("declared trailer %q, want d:rt", got)
	}
	if got := res.Trailer.Get("X-Late"); got != "late" {
		t.Errorf("prefixed trailer %q", got)
	}
	if res.Header.Get("X-Declared") != "" {
		t.Errorf("trailer leaked into headers")
	}
}

func TestClientCancelReachesHandler(t *testing.T) {
	started := make(chan struct{})
	cancelled := make(chan error, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			cancelled <- r.Context().Err()
		case <-time.After(ioBound):
			cancelled <- nil
		}
	}), nil)
	c := h2cClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ts.addr+"/", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if res, err := c.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	<-started
	cancel()
	if err := <-cancelled; err == nil {
		t.Fatal("handler context not cancelled by client reset")
	}
	<-done
}

func TestHandlerPanicResetsOnlyItsStream(t *testing.T) {
	var lb logBuffer
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			panic("boom")
		case "/abort":
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, "ok")
	}), func(c *Config) { c.Logger = newTestLogger(&lb) })
	c := h2cClient(t)
	for _, p := range []string{"/abort", "/panic"} {
		if res, err := c.Get("http://" + ts.addr + p); err == nil {
			res.Body.Close()
			t.Fatalf("%s: got a response %d, want a reset", p, res.StatusCode)
		} else if !strings.Contains(err.Error(), "INTERNAL_ERROR") {
			t.Fatalf("%s: %v, want INTERNAL_ERROR", p, err)
		}
		if p == "/abort" && strings.Contains(lb.String(), "panic") {
			t.Fatalf("ErrAbortHandler was logged: %s", lb.String())
		}
	}
	if !strings.Contains(lb.String(), "boom") {
		t.Errorf("panic not logged: %q", lb.String())
	}
	res, err := c.Get("http://" + ts.addr + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("after panic: %q", b)
	}
	ts.srv.mu.Lock()
	n := len(ts.srv.conns)
	ts.srv.mu.Unlock()
	if n != 1 {
		t.Errorf("%d connections; the panics should not have closed the first", n)
	}
}

// countingConn counts the socket writes the server makes.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// serveCountingWrites serves h on a loopback listener and counts the socket
// writes of every connection it accepts.
func serveCountingWrites(t *testing.T, h http.Handler) (net.Listener, *atomic.Int64) {
	t.Helper()
	writes := new(atomic.Int64)
	srv := New(Config{Handler: h})
	t.Cleanup(srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go srv.ServeConn(countingConn{c, writes})
		}
	}()
	return ln, writes
}

func TestOneSocketWritePerSmallResponse(t *testing.T) {
	ln, writes := serveCountingWrites(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		io.WriteString(w, "ok")
	}))
	c := h2cClient(t)
	get := func() {
		res, err := c.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(b) != "ok" {
			t.Fatalf("body %q", b)
		}
	}
	get() // the handshake's writes (SETTINGS, acks) happen here
	before := writes.Load()
	const n = 50
	for i := 0; i < n; i++ {
		get()
	}
	if got := writes.Load() - before; got > n {
		t.Fatalf("%d socket writes for %d sequential small responses, want at most one each", got, n)
	}
}

func TestWorkersAreReusedAndExitWhenIdle(t *testing.T) {
	old := workerIdleTime
	workerIdleTime = 200 * time.Millisecond
	defer func() { workerIdleTime = old }()
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	c := h2cClient(t)
	for i := 0; i < 20; i++ {
		res, err := c.Get("http://" + ts.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	idle := func() int {
		p := &ts.srv.workers
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.idle)
	}
	// Sequential requests are served by one reused worker; without reuse
	// every request would leave a parked goroutine behind. The last worker
	// parks just after its response is sent, so wait for it.
	waitFor(t, "a parked worker", func() bool { return idle() >= 1 })
	if n := idle(); n > 5 {
		t.Fatalf("%d idle workers after 20 sequential requests, want a few at most", n)
	}
	waitFor(t, "idle workers to exit", func() bool { return idle() == 0 })
}

// TestStreamsFinishingTogetherShareWrites sends batches of four requests in
// one TCP write, as h2load -m4 does, and checks that their responses share
// socket writes: without coalescing each batch costs about four.
func TestStreamsFinishingTogetherShareWrites(t *testing.T) {
	ln, writes := serveCountingWrites(t, tinyHandler)
	rc := dialRaw(t, ln.Addr().String())
	var batch bytes.Buffer
	batchFramer := http2.NewFramer(&batch, nil)
	id := uint32(1)
	const batches = 200
	var before int64
	for b := 0; b < batches; b++ {
		if b == 10 {
			before = writes.Load() // after the handshake's writes
		}
		batch.Reset()
		for i := 0; i < 4; i++ {
			batchFramer.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndStream: true, EndHeaders: true,
				BlockFragment: rc.block(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/")})
			id += 2
		}
		if _, err := rc.nc.Write(batch.Bytes()); err != nil {
			t.Fatal(err)
		}
		for ended := 0; ended < 4; {
			if d, ok := rc.readUntil("response DATA", func(f http2.Frame) bool {
				_, ok := f.(*http2.DataFrame)
				return ok
			}).(*http2.DataFrame); ok && d.StreamEnded() {
				ended++
			}
		}
	}
	perBatch := float64(writes.Load()-before) / (batches - 10)
	if perBatch >= 3 {
		t.Fatalf("%.2f socket writes per batch of 4 responses, want well under 4", perBatch)
	}
}
