package echo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/syncbuf"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer = syncbuf.Buffer

// startEcho serves the backend on a free loopback port through Serve and returns its
// address and log.
func startEcho(t *testing.T) (string, *syncBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	opts := Options{Pod: "pod-1", Namespace: "ns", Ingress: "gw", Service: "svc",
		HTTPPort: ln.Addr().(*net.TCPAddr).Port, LogWriter: logs}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Serve did not return after its context was cancelled")
		}
	})
	return ln.Addr().String(), logs
}

var testClient = &http.Client{Timeout: 10 * time.Second}

// get sends a request and returns the response with its body read.
func get(t *testing.T, client *http.Client, url string, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func decodeReply(t *testing.T, body []byte) Reply {
	t.Helper()
	var r Reply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("reply %q: %v", body, err)
	}
	return r
}

func TestEchoReply(t *testing.T) {
	addr, _ := startEcho(t)
	resp, body := get(t, testClient, "http://"+addr+"/some/path?a=1&b=two%20words",
		map[string]string{"Host": "app.example.com", "x-custom": "v1"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := decodeReply(t, body)
	port := addr[strings.LastIndex(addr, ":")+1:]
	if r.Path != "/some/path?a=1&b=two%20words" || r.Host != "app.example.com" || r.Method != "GET" ||
		r.Proto != "HTTP/1.1" || r.Pod != "pod-1" || r.Namespace != "ns" || r.Ingress != "gw" ||
		r.Service != "svc" || fmt.Sprint(r.HTTPPort) != port || r.TLS != nil {
		t.Errorf("reply %+v", r)
	}
	if got := r.Headers["X-Custom"]; len(got) != 1 || got[0] != "v1" {
		t.Errorf("X-Custom echoed as %v in %v", got, r.Headers)
	}
	if _, ok := r.Headers["Host"]; ok {
		t.Errorf("Host is among the echoed headers: %v", r.Headers)
	}
	// The field names are the conformance echo server's.
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"path", "host", "method", "proto", "headers", "namespace", "ingress", "service", "pod", "httpPort"} {
		if _, ok := raw[field]; !ok {
			t.Errorf("field %q missing from %s", field, body)
		}
	}
}

func TestStatusCodes(t *testing.T) {
	addr, _ := startEcho(t)
	for _, code := range []int{200, 204, 302, 404, 418, 503} {
		resp, _ := get(t, testClient, fmt.Sprintf("http://%s/status/%d", addr, code), nil)
		if resp.StatusCode != code {
			t.Errorf("/status/%d answered %d", code, resp.StatusCode)
		}
	}
	if resp, _ := get(t, testClient, "http://"+addr+"/status/abc", nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("/status/abc answered %d, want 400", resp.StatusCode)
	}
	if resp, body := get(t, testClient, "http://"+addr+"/health", nil); resp.StatusCode != 200 || string(body) != "OK" {
		t.Errorf("/health: %d %q", resp.StatusCode, body)
	}
}

func TestDelay(t *testing.T) {
	addr, _ := startEcho(t)
	start := time.Now()
	resp, _ := get(t, testClient, "http://"+addr+"/?delay=300ms", nil)
	if elapsed := time.Since(start); resp.StatusCode != 200 || elapsed < 300*time.Millisecond {
		t.Errorf("delay=300ms: status %d after %v", resp.StatusCode, elapsed)
	}
	for _, bad := range []string{"soon", "-1s", "31s"} {
		if resp, body := get(t, testClient, "http://"+addr+"/?delay="+bad, nil); resp.StatusCode != 400 ||
			!strings.Contains(string(body), "message") {
			t.Errorf("delay=%s: %d %s", bad, resp.StatusCode, body)
		}
	}
	// A client that gives up is not waited for.
	short := &http.Client{Timeout: 100 * time.Millisecond}
	if _, err := short.Get("http://" + addr + "/?delay=20s"); err == nil {
		t.Error("a 20s delay answered within 100ms")
	}
}

func TestSetHeader(t *testing.T) {
	addr, _ := startEcho(t)
	resp, _ := get(t, testClient, "http://"+addr+"/", map[string]string{
		"X-Echo-Set-Header": "X-Foo: bar, x-lower:v,X-Foo:baz , Empty-Value:"})
	if got := resp.Header.Values("X-Foo"); len(got) != 1 || got[0] != "bar,baz" {
		t.Errorf("X-Foo = %q, want [bar,baz]", got)
	}
	if got := resp.Header.Get("X-Lower"); got != "v" {
		t.Errorf("x-lower = %q, want v", got)
	}
	if _, ok := resp.Header["Empty-Value"]; !ok {
		t.Errorf("Empty-Value not set: %v", resp.Header)
	}
	resp, _ = get(t, testClient, "http://"+addr+"/status/201", map[string]string{"X-Echo-Set-Header": "X-On-Status:yes"})
	if resp.StatusCode != 201 || resp.Header.Get("X-On-Status") != "yes" {
		t.Errorf("/status with a set header: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestH2C(t *testing.T) {
	addr, _ := startEcho(t)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: &protocols}}
	defer client.CloseIdleConnections()
	resp, body := get(t, client, "http://"+addr+"/h2", map[string]string{"Host": "h2.example.com"})
	r := decodeReply(t, body)
	if resp.ProtoMajor != 2 || r.Proto != "HTTP/2.0" || r.Host != "h2.example.com" || r.Path != "/h2" {
		t.Errorf("h2c: response proto %s, reply %+v", resp.Proto, r)
	}
}

func TestTLSFields(t *testing.T) {
	srv := httptest.NewUnstartedServer(Handler(Options{Pod: "tls-pod", LogWriter: io.Discard}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	client := srv.Client()
	client.Timeout = 10 * time.Second
	client.Transport.(*http.Transport).TLSClientConfig.ServerName = "example.com"
	_, body := get(t, client, srv.URL+"/", nil)
	r := decodeReply(t, body)
	if r.TLS == nil {
		t.Fatalf("no tls field in %s", body)
	}
	if r.TLS.Version != "TLSv1.3" || r.TLS.ServerName != "example.com" || r.SNI != "example.com" ||
		r.TLS.NegotiatedProtocol != "h2" || !strings.HasPrefix(r.TLS.CipherSuite, "TLS_") || len(r.TLS.PeerCertificates) != 0 {
		t.Errorf("tls %+v sni %q", r.TLS, r.SNI)
	}
}

func TestLogLine(t *testing.T) {
	addr, logs := startEcho(t)
	get(t, testClient, "http://"+addr+"/logged?x=1", nil)
	get(t, testClient, "http://"+addr+"/status/500", nil)
	want := regexp.MustCompile(`(?m)^Echoing back request made to /logged\?x=1 to client \(127\.0\.0\.1:\d+\)\n` +
		`Echoing back request made to /status/500 to client \(127\.0\.0\.1:\d+\)\n$`)
	if !want.MatchString(logs.String()) {
		t.Errorf("log:\n%s", logs)
	}
}

func TestListenAndServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ListenAndServe(ctx, addr, Options{LogWriter: io.Discard}) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := testClient.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving within 5s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ListenAndServe after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ListenAndServe did not return")
	}
	if err := ListenAndServe(context.Background(), "127.0.0.1:bad", Options{}); err == nil {
		t.Fatal("ListenAndServe on an invalid address succeeded")
	}
}

// TestFailStatus checks that a backend set to fail answers every request but the
// health check with its status.
func TestFailStatus(t *testing.T) {
	h := Handler(Options{Pod: "p", FailStatus: http.StatusServiceUnavailable, LogWriter: io.Discard})
	for path, want := range map[string]int{"/": 503, "/anything": 503, "/health": 200} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("GET %s = %d, want %d", path, rec.Code, want)
		}
	}
}
