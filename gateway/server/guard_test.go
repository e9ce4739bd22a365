package server

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// guardCase is one raw-TCP exchange and what must come back.
type guardCase struct {
	name     string
	payload  string
	statuses []int
	closed   bool  // the server must close the connection afterwards
	calls    int64 // handler invocations expected
}

// guardCases are exchanges whose answers both HTTP/1.x servers must give.
func guardCases() []guardCase {
	const good = "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"
	return []guardCase{
		{
			name:     "content-length and transfer-encoding",
			payload:  "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			statuses: []int{400}, closed: true, calls: 0,
		},
		{
			name: "pipelined good request then smuggling attempt",
			payload: "POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" +
				"POST /second HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" +
				"5\r\nhello\r\n0\r\n\r\n" + good,
			statuses: []int{200, 400}, closed: true, calls: 1,
		},
		{
			name: "chunked body with trailers then a good request",
			payload: "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Trailer\r\n\r\n" +
				"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t1\r\n\r\n" + good,
			statuses: []int{200, 200}, closed: false, calls: 2,
		},
		{
			name:     "conflicting content-length values",
			payload:  "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
			statuses: []int{400}, closed: true, calls: 0,
		},
		{
			name:     "identical content-length values",
			payload:  "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc" + good,
			statuses: []int{200, 200}, closed: false, calls: 2,
		},
		{
			name:     "transfer-encoding on HTTP/1.0",
			payload:  "POST /x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			statuses: []int{400}, closed: true, calls: 0,
		},
		{
			name:     "transfer-encoding hidden by line folding",
			payload:  "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nX-A: b\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			statuses: []int{400}, closed: true, calls: 0,
		},
		{
			name: "smuggling after OPTIONS *",
			payload: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n" +
				"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			statuses: []int{200, 400}, closed: true, calls: 1,
		},
		{
			name:     "invalid host",
			payload:  "GET / HTTP/1.1\r\nHost: bad host\r\n\r\n",
			statuses: []int{400}, closed: true, calls: 0,
		},
		{
			name:     "missing host on HTTP/1.1",
			payload:  "GET / HTTP/1.1\r\n\r\n",
			statuses: []int{400}, closed: true, calls: 0,
		},
		{
			name:     "oversized headers",
			payload:  "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 80<<10) + "\r\n\r\n",
			statuses: []int{431}, closed: true, calls: 0,
		},
		{
			name:     "three keep-alive requests",
			payload:  good + good + good,
			statuses: []int{200, 200, 200}, closed: false, calls: 3,
		},
	}
}

func TestMalformedRequestGuard(t *testing.T) {
	for _, mode := range []HTTP1Mode{HTTP1Fast, HTTP1Std} {
		t.Run(string(mode), func(t *testing.T) { testMalformedRequestGuard(t, mode) })
	}
}

func testMalformedRequestGuard(t *testing.T, mode HTTP1Mode) {
	for _, tc := range guardCases() {
		t.Run(tc.name, func(t *testing.T) {
			h := &recordingHandler{}
			limits := DefaultLimits()
			limits.HTTP1 = mode
			m := newTestManager(t, limits)
			addr := serveOne(t, m, Spec{Handler: h})
			res := rawExchange(t, addr, tc.payload, len(tc.statuses))
			checkGuardResult(t, tc, res, h.calls.Load())
		})
	}
}

func checkGuardResult(t *testing.T, tc guardCase, res rawResult, calls int64) {
	t.Helper()
	if !slices.Equal(res.statuses, tc.statuses) {
		t.Errorf("statuses = %v, want %v (bodies %q)", res.statuses, tc.statuses, res.bodies)
	}
	if res.closed != tc.closed {
		t.Errorf("connection closed = %v, want %v", res.closed, tc.closed)
	}
	if calls != tc.calls {
		t.Errorf("handler calls = %d, want %d", calls, tc.calls)
	}
}

func TestGuardSeesBodyAndTrailers(t *testing.T) {
	h := &recordingHandler{}
	m := newTestManager(t, DefaultLimits())
	addr := serveOne(t, m, Spec{Handler: h})
	payload := "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Trailer\r\n\r\n" +
		"5\r\nhello\r\n0\r\nX-Trailer: t1\r\n\r\n"
	res := rawExchange(t, addr, payload, 1)
	if !slices.Equal(res.statuses, []int{200}) || res.bodies[0] != "POST /c 5" {
		t.Fatalf("got %v %q", res.statuses, res.bodies)
	}
	if got := h.lastBody.Load(); got != "hello" {
		t.Errorf("body = %q", got)
	}
	if got := h.trailer.Load(); got != "t1" {
		t.Errorf("trailer = %q", got)
	}
}

// TestGuardByteAtATime sends a smuggling attempt one byte per write, so the tracker
// sees every line split across reads.
func TestGuardByteAtATime(t *testing.T) {
	h := &recordingHandler{}
	m := newTestManager(t, DefaultLimits())
	addr := serveOne(t, m, Spec{Handler: h})
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetNoDelay(true)
	payload := "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	for i := range len(payload) {
		if _, err := conn.Write([]byte{payload[i]}); err != nil {
			t.Fatalf("write byte %d: %v", i, err)
		}
	}
	res := exchangeOn(t, conn, "", 2)
	checkGuardResult(t, guardCase{statuses: []int{200, 400}, closed: true, calls: 1}, res, h.calls.Load())
}

// TestGuardOverTLS checks that HTTP/1.1 over TLS is guarded on the decrypted stream
// and that handlers still see the TLS connection state.
func TestGuardOverTLS(t *testing.T) {
	cert := newTestCert(t, "a.example.test")
	store, err := NewCertStore([]CertPair{{Name: "a", CertPEM: cert.certPEM, KeyPEM: cert.keyPEM}})
	if err != nil {
		t.Fatal(err)
	}
	var sawTLS bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawTLS = r.TLS != nil && r.TLS.ServerName == "a.example.test"
		_, _ = io.Copy(io.Discard, r.Body)
	})
	m := newTestManager(t, DefaultLimits())
	addr := serveOne(t, m, Spec{TLS: true, GetCertificate: store.GetCertificate, Handler: h})
	conn, err := tls.Dial("tcp", addr, clientTLS("a.example.test", []string{"http/1.1"}, cert))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Fatalf("negotiated %q", p)
	}
	payload := "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok" +
		"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	res := exchangeOn(t, conn, payload, 2)
	if !slices.Equal(res.statuses, []int{200, 400}) || !res.closed {
		t.Fatalf("statuses %v closed %v", res.statuses, res.closed)
	}
	if !sawTLS {
		t.Error("handler did not see the TLS connection state")
	}
}

// TestPlaintextOnTLSPort checks the hint given to clients speaking cleartext HTTP to
// a TLS socket.
func TestPlaintextOnTLSPort(t *testing.T) {
	cert := newTestCert(t, "a.example.test")
	store, _ := NewCertStore([]CertPair{{Name: "a", CertPEM: cert.certPEM, KeyPEM: cert.keyPEM}})
	m := newTestManager(t, DefaultLimits())
	addr := serveOne(t, m, Spec{TLS: true, GetCertificate: store.GetCertificate, Handler: &recordingHandler{}})
	res := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1)
	if !slices.Equal(res.statuses, []int{400}) || !res.closed {
		t.Fatalf("statuses %v closed %v", res.statuses, res.closed)
	}
}

// TestHijackedConnectionIsNotScanned upgrades a connection and then sends bytes that
// would be malformed HTTP; the upgraded stream must pass through untouched.
func TestHijackedConnectionIsNotScanned(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = conn.Write([]byte("echo:" + line))
	})
	m := newTestManager(t, DefaultLimits())
	addr := serveOne(t, m, Spec{Handler: h})
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	_, _ = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	_, _ = io.WriteString(conn, "Content-Length: 1 Transfer-Encoding: chunked\n")
	got, err := br.ReadString('\n')
	if err != nil || got != "echo:Content-Length: 1 Transfer-Encoding: chunked\n" {
		t.Fatalf("echo = %q, %v", got, err)
	}
}
