package distribute

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeKeyPair writes a self-signed certificate with the given serial number and its key.
func writeKeyPair(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mustNotErr(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "controller"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	mustNotErr(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	mustNotErr(t, err)
	mustNotErr(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	mustNotErr(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
}

func servedSerial(t *testing.T, cfg *tls.Config) int64 {
	t.Helper()
	cert, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	mustNotErr(t, err)
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	mustNotErr(t, err)
	return leaf.SerialNumber.Int64()
}

func TestLoadServerTLSPicksUpRotatedFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeKeyPair(t, certFile, keyFile, 1)
	cfg, err := LoadServerTLS(certFile, keyFile)
	mustNotErr(t, err)
	if cfg.MinVersion != tls.VersionTLS12 || servedSerial(t, cfg) != 1 {
		t.Fatalf("min version %x, serial %d", cfg.MinVersion, servedSerial(t, cfg))
	}

	writeKeyPair(t, certFile, keyFile, 2)
	later := time.Now().Add(time.Second)
	mustNotErr(t, os.Chtimes(certFile, later, later))
	if got := servedSerial(t, cfg); got != 2 {
		t.Errorf("after rotation: serial %d, want 2", got)
	}

	// A half-written rotation keeps the working pair.
	mustNotErr(t, os.WriteFile(keyFile, []byte("garbage"), 0o600))
	if got := servedSerial(t, cfg); got != 2 {
		t.Errorf("after a bad rotation: serial %d, want 2", got)
	}
}

func TestLoadServerTLSReportsBadFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadServerTLS(filepath.Join(dir, "missing.crt"), filepath.Join(dir, "missing.key")); err == nil {
		t.Error("missing files: want an error")
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeKeyPair(t, certFile, keyFile, 1)
	mustNotErr(t, os.WriteFile(keyFile, []byte("garbage"), 0o600))
	if _, err := LoadServerTLS(certFile, keyFile); err == nil {
		t.Error("bad key: want an error")
	}
}

func TestServeRefusesToRunWithoutTLS(t *testing.T) {
	srv, err := NewServer(Options{Authenticator: SharedToken("x")})
	mustNotErr(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	mustNotErr(t, err)
	defer ln.Close()
	if err := srv.Serve(context.Background(), ln, nil); err == nil {
		t.Error("nil TLS config: want an error")
	}
	if err := srv.Serve(context.Background(), ln, &tls.Config{}); err == nil {
		t.Error("TLS config without a certificate: want an error")
	}
}

func TestDisconnectedReplicasAreForgotten(t *testing.T) {
	ts := startServer(t, Options{ForgetAfter: time.Millisecond})
	resp := ts.openStream(t, edgeParams("gone"), testToken)
	resp.Body.Close()
	waitFor(t, "the replica to be forgotten", func() bool { return len(ts.Replicas()) == 0 })
}

func TestLoadServerTLSLogsAFailedReloadOncePerError(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeKeyPair(t, certFile, keyFile, 1)
	var logs strings.Builder
	cfg, err := LoadServerTLSWithLogger(certFile, keyFile, slog.New(slog.NewTextHandler(&logs, nil)))
	mustNotErr(t, err)

	mustNotErr(t, os.WriteFile(keyFile, []byte("garbage"), 0o600))
	for range 3 {
		if got := servedSerial(t, cfg); got != 1 {
			t.Fatalf("after a bad rotation: serial %d, want 1", got)
		}
	}
	if n := strings.Count(logs.String(), "cannot reload the server certificate"); n != 1 {
		t.Errorf("logged the failure %d times, want once:\n%s", n, logs.String())
	}

	// Another error is logged again.
	mustNotErr(t, os.Remove(keyFile))
	servedSerial(t, cfg)
	servedSerial(t, cfg)
	if n := strings.Count(logs.String(), "cannot reload the server certificate"); n != 2 {
		t.Errorf("logged %d failures, want 2 after the error changed:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), keyFile) {
		t.Errorf("log does not name the key file:\n%s", logs.String())
	}
}
