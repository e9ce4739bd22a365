package server

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
)

// tlsClient returns a client that sends every request to addr, trusting certs, and
// offering HTTP/2 when h2 is set.
func tlsClient(addr string, h2 bool, certs ...testCert) *http.Client {
	cfg := clientTLS("", nil, certs...)
	transport := &http.Transport{
		TLSClientConfig:   cfg,
		ForceAttemptHTTP2: h2,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	return &http.Client{Transport: transport, Timeout: testTimeout}
}

// tlsGet fetches url and returns the response's protocol major version and the DNS
// names of the certificate the server presented.
func tlsGet(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := client.Post(url, "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "payload" {
		t.Fatalf("POST %s: %d %q", url, resp.StatusCode, body)
	}
	return resp.ProtoMajor, strings.Join(resp.TLS.PeerCertificates[0].DNSNames, ",")
}

func TestTLSSNIAndHTTP2(t *testing.T) {
	certA := newTestCert(t, "a.example.test")
	certB := newTestCert(t, "*.b.example.test")
	store, err := NewCertStore([]CertPair{
		{Name: "a", CertPEM: certA.certPEM, KeyPEM: certA.keyPEM},
		{Name: "b", CertPEM: certB.certPEM, KeyPEM: certB.keyPEM},
	})
	if err != nil {
		t.Fatal(err)
	}
	var serverProto atomic.Int64
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serverProto.Store(int64(r.ProtoMajor))
		_, _ = io.Copy(w, r.Body)
	})
	m := newTestManager(t, DefaultLimits())
	spec := Spec{Name: "tls", Address: "127.0.0.1", TLS: true, GetCertificate: store.GetCertificate, Handler: echo}
	addr := serveOne(t, m, spec)

	h2 := tlsClient(addr, true, certA, certB)
	proto, names := tlsGet(t, h2, "https://a.example.test/")
	if proto != 2 || serverProto.Load() != 2 || names != "a.example.test" {
		t.Fatalf("a: client proto %d, server proto %d, cert %q", proto, serverProto.Load(), names)
	}
	proto, names = tlsGet(t, h2, "https://x.b.example.test/")
	if proto != 2 || names != "*.b.example.test" {
		t.Fatalf("wildcard: proto %d, cert %q", proto, names)
	}
	h1 := tlsClient(addr, false, certA, certB)
	h1.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	proto, _ = tlsGet(t, h1, "https://a.example.test/")
	if proto != 1 || serverProto.Load() != 1 {
		t.Fatalf("HTTP/1.1 client got proto %d, server %d", proto, serverProto.Load())
	}
}

// TestCertificateSwapWithoutRebind replaces the certificate source of a kept socket:
// new handshakes get the new certificate on the same address.
func TestCertificateSwapWithoutRebind(t *testing.T) {
	oldCert, newCert := newTestCert(t, "a.example.test", "old.example.test"), newTestCert(t, "a.example.test", "new.example.test")
	oldStore, _ := NewCertStore([]CertPair{{Name: "old", CertPEM: oldCert.certPEM, KeyPEM: oldCert.keyPEM}})
	newStore, _ := NewCertStore([]CertPair{{Name: "new", CertPEM: newCert.certPEM, KeyPEM: newCert.keyPEM}})
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(w, r.Body) })
	m := newTestManager(t, DefaultLimits())
	spec := Spec{Name: "tls", Address: "127.0.0.1", TLS: true, GetCertificate: oldStore.GetCertificate, Handler: echo}
	addr := serveOne(t, m, spec)
	if _, names := tlsGet(t, tlsClient(addr, true, oldCert, newCert), "https://a.example.test/"); names != "a.example.test,old.example.test" {
		t.Fatalf("before swap: %q", names)
	}
	spec.GetCertificate = newStore.GetCertificate
	if errs := m.Sync([]Spec{spec}); errs != nil || m.Addr("tls") != addr {
		t.Fatalf("Sync: %v, addr %s -> %s", errs, addr, m.Addr("tls"))
	}
	if _, names := tlsGet(t, tlsClient(addr, true, oldCert, newCert), "https://a.example.test/"); names != "a.example.test,new.example.test" {
		t.Fatalf("after swap: %q", names)
	}
}

// TestHTTP2Settings reads the server's SETTINGS frame and checks the configured
// stream and header limits are advertised.
func TestHTTP2Settings(t *testing.T) {
	cert := newTestCert(t, "a.example.test")
	store, _ := NewCertStore([]CertPair{{Name: "a", CertPEM: cert.certPEM, KeyPEM: cert.keyPEM}})
	limits := DefaultLimits()
	limits.MaxConcurrentStreams = 77
	m := newTestManager(t, limits)
	addr := serveOne(t, m, Spec{TLS: true, GetCertificate: store.GetCertificate, Handler: textHandler("x")})
	conn, err := tls.Dial("tcp", addr, clientTLS("a.example.test", []string{"h2"}, cert))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q", p)
	}
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	framer := http2.NewFramer(conn, conn)
	frame, err := framer.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	settings, ok := frame.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %T", frame)
	}
	if v, ok := settings.Value(http2.SettingMaxConcurrentStreams); !ok || v != 77 {
		t.Errorf("MAX_CONCURRENT_STREAMS = %d (%v), want 77", v, ok)
	}
	if v, ok := settings.Value(http2.SettingMaxHeaderListSize); !ok || v < uint32(limits.MaxHeaderBytes) || v > uint32(2*limits.MaxHeaderBytes) {
		t.Errorf("MAX_HEADER_LIST_SIZE = %d (%v), want about %d", v, ok, limits.MaxHeaderBytes)
	}
}
