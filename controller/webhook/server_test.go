package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchyard-dev/switchyard/internal/testpki"
)

// TestServeReloadsCertificate serves the webhook over TLS from a certificate folder,
// then rotates the files as a Secret volume update does: the next connection gets the
// new certificate, with no restart, and reviews are answered throughout.
func TestServeReloadsCertificate(t *testing.T) {
	pki := testpki.New(t)
	dir := t.TempDir()
	pki.WriteFiles(t, dir)
	cfg, err := LoadTLS(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newTestHandler(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, cfg, h, nil) }()
	url := "https://" + ln.Addr().String() + Path

	first := servedCertificate(t, pki, url)
	if !bytes.Equal(first, pemBytes(t, pki.CertPEM)) {
		t.Fatal("the server does not serve tls.crt")
	}
	certPEM, keyPEM := pki.Leaf(t, "127.0.0.1")
	writeAtomically(t, filepath.Join(dir, "tls.key"), keyPEM)
	writeAtomically(t, filepath.Join(dir, "tls.crt"), certPEM)
	if second := servedCertificate(t, pki, url); !bytes.Equal(second, pemBytes(t, certPEM)) {
		t.Error("the rotated certificate is not served")
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after the context ended: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the context ended")
	}
}

func TestLoadTLSNeedsFiles(t *testing.T) {
	if _, err := LoadTLS(t.TempDir(), nil); err == nil {
		t.Error("an empty folder was accepted")
	}
	if _, err := LoadTLS("", nil); err == nil {
		t.Error("no folder was accepted")
	}
}

// servedCertificate POSTs a review on a new connection and returns the DER of the
// certificate the server presented.
func servedCertificate(t *testing.T, pki *testpki.PKI, url string) []byte {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pki.Client.RootCAs, MinVersion: tls.VersionTLS12}, DisableKeepAlives: true}}
	body := review(t, "CREATE", podKind, mustJSON(t, podWith(corev1.Container{Name: "app"})))
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return resp.TLS.PeerCertificates[0].Raw
}

func pemBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("no PEM block")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		t.Fatal(err)
	}
	return block.Bytes
}

// writeAtomically replaces path by renaming a new file over it, as the kubelet swaps
// a Secret volume's contents.
func writeAtomically(t *testing.T, path string, body []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
