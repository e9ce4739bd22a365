package server

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/testpki"
)

func TestNewClientValidationRejectsBadBundles(t *testing.T) {
	if _, err := NewClientValidation(nil, false); err == nil {
		t.Error("no bundles accepted")
	}
	_, err := NewClientValidation([]CABundle{{Name: "ns/junk", PEM: "junk"}}, false)
	if err == nil || !strings.Contains(err.Error(), `"ns/junk"`) {
		t.Errorf("junk bundle: got %v, want an error naming it", err)
	}
}

// TestClientValidationBySNI serves one socket whose "mtls.test" name requires a client
// certificate and whose other names do not, and checks what the handshake asks for
// and accepts, and what the handler sees.
func TestClientValidationBySNI(t *testing.T) {
	clientPKI, otherPKI := testpki.New(t), testpki.New(t)
	server := newTestCert(t, "mtls.test", "open.test")
	store, err := NewCertStore([]CertPair{{Name: "s", CertPEM: server.certPEM, KeyPEM: server.keyPEM}})
	if err != nil {
		t.Fatal(err)
	}
	required, err := NewClientValidation([]CABundle{{Name: "ca", PEM: string(clientPKI.CAPEM)}}, false)
	if err != nil {
		t.Fatal(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("v", len(r.TLS.VerifiedChains)))
	})
	m := newTestManager(t, DefaultLimits())
	addr := serveOne(t, m, Spec{TLS: true, GetCertificate: store.GetCertificate, Handler: handler,
		ClientValidation: func(hello *tls.ClientHelloInfo) *ClientValidation {
			if hello.ServerName == "mtls.test" {
				return required
			}
			return nil
		}})
	trusted, untrusted := pairFrom(t, clientPKI), pairFrom(t, otherPKI)
	cases := []struct {
		name, sni string
		cert      *tls.Certificate
		wantBody  string // "fail" when the exchange must fail
		wantAsked bool
	}{
		{"trusted", "mtls.test", &trusted, "v", true},
		{"untrusted", "mtls.test", &untrusted, "fail", true},
		{"none", "mtls.test", nil, "fail", true},
		{"other name", "open.test", &trusted, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			asked := false
			client := tlsClient(addr, true, server)
			cfg := client.Transport.(*http.Transport).TLSClientConfig
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				asked = true
				if c.cert == nil {
					return &tls.Certificate{}, nil
				}
				return c.cert, nil
			}
			body := "fail"
			if resp, err := client.Get("https://" + c.sni + "/"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				body = string(b)
			}
			if body != c.wantBody || asked != c.wantAsked {
				t.Errorf("got body %q asked %v, want %q %v", body, asked, c.wantBody, c.wantAsked)
			}
		})
	}
}

func pairFrom(t *testing.T, pki *testpki.PKI) tls.Certificate {
	t.Helper()
	certPEM, keyPEM := pki.Leaf(t, "client")
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// BenchmarkConfigForClient is the cost the handshake callback adds: for a socket
// without client validation, and for one with it (after the first handshake made
// the derived configuration).
func BenchmarkConfigForClient(b *testing.B) {
	pki := testpki.New(b)
	cv, err := NewClientValidation([]CABundle{{Name: "ca", PEM: string(pki.CAPEM)}}, false)
	if err != nil {
		b.Fatal(err)
	}
	hello := &tls.ClientHelloInfo{ServerName: "a.example.test"}
	for _, bc := range []struct {
		name   string
		choose func(*tls.ClientHelloInfo) *ClientValidation
	}{
		{"none", nil},
		{"required", func(*tls.ClientHelloInfo) *ClientValidation { return cv }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := &socket{}
			s.spec.Store(&Spec{ClientValidation: bc.choose})
			base := &tls.Config{}
			callback := s.configForClient(base)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := callback(hello); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
