package standalone_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// selfSigned returns a PEM certificate and key for the given DNS names.
func selfSigned(t testing.TB, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func tlsManifests(port int, certPEM, keyPEM []byte) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: secure-cert, namespace: default}
type: kubernetes.io/tls
data:
  tls.crt: %s
  tls.key: %s
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: switchyard
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners:
  - name: https
    protocol: HTTPS
    port: %d
    hostname: secure.example.com
    tls:
      mode: Terminate
      certificateRefs: [{name: secure-cert}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: secure, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: v1, port: 80}]
`, base64.StdEncoding.EncodeToString(certPEM), base64.StdEncoding.EncodeToString(keyPEM), port)
}

func TestHTTPSWithSNIAndHTTP2(t *testing.T) {
	v1 := echoBackend(t, "v1")
	port := freePort(t)
	certPEM, keyPEM := selfSigned(t, "secure.example.com")
	startGateway(t, map[string]string{
		"tls.yaml":      tlsManifests(port, certPEM, keyPEM),
		"services.yaml": serviceYAML("v1", "", v1),
	})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	resp, err := client.Get(fmt.Sprintf("https://secure.example.com:%d/tls", port))
	if err != nil {
		t.Fatalf("HTTPS request: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"v1"`) {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("client spoke %s, want HTTP/2 over TLS", resp.Proto)
	}
	// A host that the listener does not serve gets no route.
	req := newRequest(t, http.MethodGet, fmt.Sprintf("https://secure.example.com:%d/", port), "host", "other.example.com")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("foreign host over TLS: status %d, want 404 or 421", resp.StatusCode)
	}
}

// catchAllRoute sends every request on gw to the v1 Service.
func catchAllRoute() string {
	return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: all, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: v1, port: 80}]
`
}

// TestWebSocketThroughGateway upgrades a connection through the gateway to the echo
// backend and exchanges a frame.
func TestWebSocketThroughGateway(t *testing.T) {
	v1 := echoBackend(t, "v1")
	port := freePort(t)
	startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": serviceYAML("v1", "kubernetes.io/ws", v1),
		"routes.yaml":   catchAllRoute(),
	})
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade status %d", resp.StatusCode)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("Sec-WebSocket-Accept %q is wrong", got)
	}
	// A masked text frame "hello".
	payload := []byte("hello")
	mask := []byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | byte(len(payload))}
	frame = append(frame, mask...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 2)
	if _, err := io.ReadFull(br, head); err != nil {
		t.Fatal(err)
	}
	if head[0]&0x0f != 1 || head[1]&0x80 != 0 {
		t.Fatalf("unexpected frame header %x", head)
	}
	got := make([]byte, head[1]&0x7f)
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello" {
		t.Fatalf("echoed %q, want hello", got)
	}
}

// TestStreamingIsFlushed checks that a server-sent event reaches the client while the
// backend is still holding the response open.
func TestStreamingIsFlushed(t *testing.T) {
	release := make(chan struct{})
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		fmt.Fprint(w, "data: second\n\n")
	}), ReadHeaderTimeout: 5 * time.Second}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = backend.Serve(l) }()
	t.Cleanup(func() { backend.Close() })

	port := freePort(t)
	g := startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": serviceYAML("v1", "", l.Addr().(*net.TCPAddr).Port),
		"routes.yaml":   catchAllRoute(),
	})
	resp, err := g.client.Get(fmt.Sprintf("http://127.0.0.1:%d/events", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	expectFlushedEvents(t, resp.Body, release)
}

// expectFlushedEvents reads a stream of two events, "first" and "second", whose
// backend sends the second only once release is closed: the first must arrive
// while the stream is still open.
func expectFlushedEvents(t *testing.T, body io.Reader, release chan struct{}) {
	t.Helper()
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line := <-lines:
		if line != "data: first" {
			t.Fatalf("first line %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first event was not flushed to the client while the stream was open")
	}
	close(release)
	for line := range lines {
		if line == "data: second" {
			return
		}
	}
	t.Fatal("the second event never arrived")
}

// TestConflictingGatewaysKeepTheWinnerServing puts two Gateways on one address and
// port: the loser reports Programmed=False and the winner keeps serving.
func TestConflictingGatewaysKeepTheWinnerServing(t *testing.T) {
	v1 := echoBackend(t, "v1")
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"gateway-a.yaml": gatewayYAML("gw", port),
		"gateway-b.yaml": gatewayYAML("zz-second", port),
		"services.yaml":  serviceYAML("v1", "", v1),
		"routes.yaml":    catchAllRoute(),
	})
	resp, e := g.do(t, newRequest(t, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", port)))
	if e == nil || e.Pod != "v1" {
		t.Fatalf("winner does not serve: status %d", resp.StatusCode)
	}
	var status struct {
		Gateways map[string]struct {
			Conditions []struct {
				Type   string `json:"type"`
				Status string `json:"status"`
			} `json:"conditions"`
		} `json:"gateways"`
	}
	g.adminJSON(t, "/api/v1/status", &status)
	programmed := func(name string) string {
		for _, c := range status.Gateways[name].Conditions {
			if c.Type == "Programmed" {
				return c.Status
			}
		}
		return "missing"
	}
	if got := programmed("default/gw"); got != "True" {
		t.Errorf("winner Programmed=%s, want True", got)
	}
	if got := programmed("default/zz-second"); got != "False" {
		t.Errorf("loser Programmed=%s, want False", got)
	}
}
