package server

import (
	"crypto/tls"
	"testing"
	"time"
)

// BenchmarkTLSHandshake measures full TLS 1.3 handshakes (no resumption) against a
// socket served by the Manager, over loopback, without client certificates: the
// path every HTTPS connection takes. It is the yardstick for changes to the server's
// handshake callbacks.
func BenchmarkTLSHandshake(b *testing.B) {
	cert := newTestCert(b, "a.example.test")
	store, err := NewCertStore([]CertPair{{Name: "a", CertPEM: cert.certPEM, KeyPEM: cert.keyPEM}})
	if err != nil {
		b.Fatal(err)
	}
	m := newTestManager(b, DefaultLimits())
	addr := serveOne(b, m, Spec{TLS: true, GetCertificate: store.GetCertificate, Handler: textHandler("ok")})
	cfg := clientTLS("a.example.test", []string{"http/1.1"}, cert)
	cfg.ClientSessionCache = nil
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		handshakeOnce(b, addr, cfg)
	}
}

// handshakeOnce dials addr, completes a TLS handshake and closes the connection.
func handshakeOnce(b *testing.B, addr string, cfg *tls.Config) {
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		b.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	if err := conn.Handshake(); err != nil {
		b.Fatal(err)
	}
	_ = conn.Close()
}
