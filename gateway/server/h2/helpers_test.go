package h2

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// ioBound bounds every blocking step of a test, so that a broken server
// fails the test instead of hanging it. It is not a performance assertion.
const ioBound = 20 * time.Second

// testServer is a Server on a loopback listener.
type testServer struct {
	srv  *Server
	ln   net.Listener
	addr string
	wg   sync.WaitGroup
}

// startServer serves h on 127.0.0.1; mod may adjust the Config.
func startServer(t testing.TB, h http.Handler, mod func(*Config)) *testServer {
	t.Helper()
	return startServerWrapped(t, h, mod, nil)
}

// startServerWrapped is startServer with each accepted conn passed through
// wrap, when not nil, before it is served; a nil result drops the conn. wrap
// runs on the accepting goroutine, so it sees the conns in their order.
func startServerWrapped(t testing.TB, h http.Handler, mod func(*Config), wrap func(net.Conn) net.Conn) *testServer {
	t.Helper()
	cfg := Config{Handler: h, HTTPServer: &http.Server{}}
	if mod != nil {
		mod(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: New(cfg), ln: ln, addr: ln.Addr().String()}
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if wrap != nil {
				if c = wrap(c); c == nil {
					continue
				}
			}
			ts.wg.Add(1)
			go func() {
				defer ts.wg.Done()
				ts.srv.ServeConn(c)
			}()
		}
	}()
	t.Cleanup(ts.close)
	return ts
}

// tlsHandshake returns a wrap for startServerWrapped that makes each conn a
// TLS server conn with config, its handshake done (nil when it failed).
func tlsHandshake(config *tls.Config) func(net.Conn) net.Conn {
	return func(c net.Conn) net.Conn {
		tc := tls.Server(c, config)
		tc.SetDeadline(time.Now().Add(ioBound))
		if tc.Handshake() != nil {
			tc.Close()
			return nil
		}
		tc.SetDeadline(time.Time{})
		return tc
	}
}

func (ts *testServer) close() {
	ts.ln.Close()
	ts.srv.Close()
	ts.wg.Wait()
}

// h2cTransport is Go's HTTP/2 client speaking h2c with prior knowledge.
func h2cTransport() *http2.Transport {
	return &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

// h2cClient returns a client whose idle connections are closed at cleanup.
func h2cClient(t testing.TB) *http.Client {
	tr := h2cTransport()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: ioBound}
}

// rawConn is a hand-driven HTTP/2 client connection for protocol tests.
type rawConn struct {
	t    testing.TB
	nc   net.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	henc *hpack.Encoder
}

// dialRaw connects and sends the preface and an empty SETTINGS frame.
func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ioBound)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(ioBound))
	return rawClientConn(t, nc)
}

// rawClientConn starts a raw HTTP/2 client connection over nc: the preface
// and an empty SETTINGS frame. nc is closed when the test ends.
func rawClientConn(t testing.TB, nc net.Conn) *rawConn {
	t.Helper()
	t.Cleanup(func() { nc.Close() })
	rc := &rawConn{t: t, nc: nc, fr: http2.NewFramer(nc, nc)}
	rc.henc = hpack.NewEncoder(&rc.hbuf)
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := nc.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := rc.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return rc
}

// block HPACK-encodes name/value pairs.
func (rc *rawConn) block(kv ...string) []byte {
	rc.hbuf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		rc.henc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return append([]byte(nil), rc.hbuf.Bytes()...)
}

// get opens stream id with a GET of path, plus extra fields.
func (rc *rawConn) request(id uint32, end bool, method, path string, extra ...string) {
	rc.t.Helper()
	kv := append([]string{":method", method, ":scheme", "http", ":authority", "example.com", ":path", path}, extra...)
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: rc.block(kv...), EndStream: end, EndHeaders: true,
	}); err != nil {
		rc.t.Fatal(err)
	}
}

// rawHeaders opens stream id with exactly the given fields.
func (rc *rawConn) rawHeaders(id uint32, end bool, kv ...string) {
	rc.t.Helper()
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: rc.block(kv...), EndStream: end, EndHeaders: true,
	}); err != nil {
		rc.t.Fatal(err)
	}
}

// readUntil reads frames until match returns true and returns that frame.
// It fails the test if the connection ends first; the loop is bounded by
// frame count and by the connection deadline.
func (rc *rawConn) readUntil(what string, match func(http2.Frame) bool) http2.Frame {
	rc.t.Helper()
	for i := 0; i < 100000; i++ {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(f) {
			return f
		}
	}
	rc.t.Fatalf("waiting for %s: too many frames", what)
	return nil
}

// readUntilEnd reads frames until the connection ends, returning the
// GOAWAY frame seen, if any, and the number of frames read.
func (rc *rawConn) readUntilEnd() (*http2.GoAwayFrame, int) {
	rc.t.Helper()
	var ga *http2.GoAwayFrame
	for i := 0; i < 1000000; i++ {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				rc.t.Fatalf("connection did not end: %v", err)
			}
			return ga, i
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			copy := *g
			ga = &copy
		}
	}
	rc.t.Fatal("connection did not end: too many frames")
	return nil, 0
}

// isRST matches RST_STREAM on stream id.
func isRST(id uint32) func(http2.Frame) bool {
	return func(f http2.Frame) bool {
		r, ok := f.(*http2.RSTStreamFrame)
		return ok && r.StreamID == id
	}
}

// isGoAway matches GOAWAY.
func isGoAway(f http2.Frame) bool {
	_, ok := f.(*http2.GoAwayFrame)
	return ok
}

// logBuffer is a goroutine-safe slog destination.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTestLogger(lb *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond until it holds or the bound passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
