package echo

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"
)

// selfSigned makes a certificate for 127.0.0.1 with the given common name.
func selfSigned(t *testing.T, commonName string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: commonName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestServeTLS checks that a TLS config turns the backend into an HTTPS server that
// presents its certificate, negotiates HTTP/2 by ALPN, and reports the connection.
func TestServeTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t, "echo.test")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, Options{Pod: "p", LogWriter: &syncBuffer{},
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	var seen *x509.Certificate
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{ServerName: "sni.test", InsecureSkipVerify: true, // self-signed test certificate
			VerifyConnection: func(cs tls.ConnectionState) error { seen = cs.PeerCertificates[0]; return nil }},
	}}
	resp, body := get(t, client, "https://"+ln.Addr().String()+"/secure", nil)
	r := decodeReply(t, body)
	if resp.StatusCode != http.StatusOK || r.Proto != "HTTP/2.0" || r.TLS == nil || r.SNI != "sni.test" ||
		r.TLS.NegotiatedProtocol != "h2" {
		t.Fatalf("status %d reply %+v tls %+v", resp.StatusCode, r, r.TLS)
	}
	if seen == nil || seen.Subject.CommonName != "echo.test" {
		t.Errorf("served certificate %v, want CN echo.test", seen)
	}
}
