package proxy

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// rawExchange sends a raw HTTP/1.1 request to addr and reads the response.
func rawExchange(t *testing.T, addr, request string) (*http.Response, *bufio.Reader, net.Conn) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	return res, br, conn
}

func TestHopByHopHeadersRemoved(t *testing.T) {
	seen := make(chan http.Header, 1)
	addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		w.Header().Set("Connection", "X-Backend-Secret")
		w.Header().Set("X-Backend-Secret", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "yes")
		_, _ = io.WriteString(w, "ok")
	})
	g := newGateway(t, Options{}, []config.Backend{httpBackend("b", ready(addr))}, config.Rule{Backends: []config.BackendRef{{Backend: "b", Weight: 1}}}, nil)
	res, _, _ := rawExchange(t, g.front.Listener.Addr().String(), "GET / HTTP/1.1\r\nHost: app.example.com\r\n"+
		"Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"+
		"TE: gzip\r\nUpgrade: h2c-not-really\r\nX-Kept: yes\r\n\r\n")
	res.Body.Close()
	h := <-seen
	for _, name := range []string{"Connection", "X-Secret", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		if v, ok := h[name]; ok {
			t.Errorf("backend received hop-by-hop header %s: %q", name, v)
		}
	}
	if h.Get("X-Kept") != "yes" {
		t.Errorf("end-to-end header lost: %v", h)
	}
	if res.Header.Get("X-Backend-Secret") != "" || res.Header.Get("Keep-Alive") != "" {
		t.Errorf("client received hop-by-hop response headers: %v", res.Header)
	}
	if res.Header.Get("X-Kept") != "yes" {
		t.Errorf("end-to-end response header lost: %v", res.Header)
	}
}

func TestTrailersPassThrough(t *testing.T) {
	addr := startBackend(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = io.WriteString(w, "payload")
		w.Header().Set("X-Checksum", "abc123")
	})
	g := newGateway(t, Options{}, []config.Backend{httpBackend("b", ready(addr))}, config.Rule{Backends: []config.BackendRef{{Backend: "b", Weight: 1}}}, nil)
	res, err := testClient.Get(g.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if string(body) != "payload" || res.Trailer.Get("X-Checksum") != "abc123" {
		t.Fatalf("body %q trailers %v", body, res.Trailer)
	}
}

func TestServerSentEventsAreFlushedPromptly(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	addr := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		_, _ = io.WriteString(w, "data: last\n\n")
	})
	g := newGateway(t, Options{}, []config.Backend{httpBackend("b", ready(addr))}, config.Rule{Backends: []config.BackendRef{{Backend: "b", Weight: 1}}}, nil)
	res, err := testClient.Get(g.url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(res.Body).ReadString('\n')
		line <- s
	}()
	// The backend holds the stream open until released, so the first event can only
	// arrive now if the gateway flushed it.
	select {
	case s := <-line:
		if s != "data: first\n" {
			t.Fatalf("first line %q", s)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("first event did not reach the client while the backend was still streaming")
	}
}

// websocketAccept computes Sec-WebSocket-Accept for a key (RFC 6455 section 4.2.2).
func websocketAccept(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// echoUpgrade accepts a WebSocket handshake and then echoes raw bytes.
func echoUpgrade(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "expected upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			websocketAccept(r.Header.Get("Sec-WebSocket-Key")))
		_ = brw.Flush()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		for {
			n, err := brw.Read(buf)
			if err != nil {
				return
			}
			if _, err := conn.Write(buf[:n]); err != nil {
				return
			}
		}
	}
}

func TestWebSocketUpgradeEcho(t *testing.T) {
	addr := startBackend(t, echoUpgrade(t))
	g := newGateway(t, Options{}, []config.Backend{{Name: "ws", Protocol: config.AppProtocolWebSocket, Endpoints: ready(addr)}},
		config.Rule{Timeouts: &config.Timeouts{Request: dur(50 * time.Millisecond)}, Backends: []config.BackendRef{{Backend: "ws", Weight: 1}}}, nil)
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	res, br, conn := rawExchange(t, g.front.Listener.Addr().String(), "GET /chat HTTP/1.1\r\nHost: app.example.com\r\n"+
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "+key+"\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get("Sec-WebSocket-Accept") != websocketAccept(key) {
		t.Fatalf("handshake: %d %v", res.StatusCode, res.Header)
	}
	// Outlive the route's request timeout: it must not cut an upgraded connection.
	time.Sleep(100 * time.Millisecond)
	for _, msg := range []string{"ping", "hello over the gateway"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatalf("reading echo: %v", err)
		}
		if string(got) != msg {
			t.Fatalf("echo %q, want %q", got, msg)
		}
	}
}

func TestH2CBackend(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "major=%d host=%s", r.ProtoMajor, r.Host)
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	g := newGateway(t, Options{}, []config.Backend{{Name: "grpc", Protocol: config.AppProtocolH2C, Endpoints: ready(srv.Listener.Addr().String())}},
		config.Rule{Backends: []config.BackendRef{{Backend: "grpc", Weight: 1}}}, nil)
	req, _ := http.NewRequest(http.MethodGet, g.url+"/", nil)
	req.Host = "svc.example.com"
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if string(body) != "major=2 host=svc.example.com" {
		t.Fatalf("backend saw %q (status %d)", body, res.StatusCode)
	}
}
