package backend

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// testPKI is a throwaway authority with a server certificate for abc.example.com
// (and a SPIFFE URI) and a client certificate.
type testPKI struct {
	caPEM                string
	server               tls.Certificate
	clientPEM, clientKey string
	pool                 *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage, dns []string, uris []*url.URL) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, DNSNames: dns, URIs: uris}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
			string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	}
	spiffe, _ := url.Parse("spiffe://abc.example.com/test-identity")
	serverPEM, serverKey := issue(2, x509.ExtKeyUsageServerAuth, []string{"abc.example.com", "*.wild.example.com"}, []*url.URL{spiffe})
	server, err := tls.X509KeyPair([]byte(serverPEM), []byte(serverKey))
	if err != nil {
		t.Fatal(err)
	}
	clientPEM, clientKey := issue(3, x509.ExtKeyUsageClientAuth, nil, nil)
	p := &testPKI{caPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		server: server, clientPEM: clientPEM, clientKey: clientKey, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	return p
}

// tlsBackend serves the SNI, ALPN protocol and client certificate subject count it
// saw. With requireClient it refuses clients without a certificate from the test CA.
func tlsBackend(t *testing.T, p *testPKI, requireClient, h2 bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "sni=%s proto=%s clientcerts=%d", r.TLS.ServerName, r.Proto, len(r.TLS.PeerCertificates))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}}
	if requireClient {
		srv.TLS.ClientCAs, srv.TLS.ClientAuth = p.pool, tls.RequireAndVerifyClientCert
	}
	srv.EnableHTTP2 = h2
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func roundTripBody(m *Manager, backend string) (string, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://gateway/", nil)
	res, err := m.RoundTrip(context.Background(), backend, req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}

func tlsBackendConfig(name, addr string, protocol config.AppProtocol, t *config.UpstreamTLS) config.Backend {
	return config.Backend{Name: name, Protocol: protocol, TLS: t,
		Endpoints: []config.Endpoint{{Address: addr, Ready: true, Serving: true}}}
}

func TestTLSBackendVerificationAndClientCertificate(t *testing.T) {
	p := newTestPKI(t)
	srv := tlsBackend(t, p, true, false)
	addr := srv.Listener.Addr().String()
	client := &config.Certificate{Name: "ns/client", CertPEM: p.clientPEM, KeyPEM: p.clientKey}
	cases := []struct {
		name string
		tls  config.UpstreamTLS
		want string // a substring of the body, or of the error when wantErr
		fail bool
	}{
		{"hostname verified", config.UpstreamTLS{ServerName: "abc.example.com", CACertificatesPEM: p.caPEM, ClientCertificate: client}, "sni=abc.example.com proto=HTTP/1.1 clientcerts=1", false},
		{"wildcard hostname", config.UpstreamTLS{ServerName: "x.wild.example.com", CACertificatesPEM: p.caPEM, ClientCertificate: client}, "sni=x.wild.example.com", false},
		{"hostname mismatch", config.UpstreamTLS{ServerName: "mismatch.example.com", CACertificatesPEM: p.caPEM, ClientCertificate: client}, "certificate", true},
		{"unknown authority", config.UpstreamTLS{ServerName: "abc.example.com", CACertificatesPEM: newTestPKI(t).caPEM, ClientCertificate: client}, "unknown authority", true},
		{"no client certificate", config.UpstreamTLS{ServerName: "abc.example.com", CACertificatesPEM: p.caPEM}, "certificate", true},
		{"uri san", config.UpstreamTLS{ServerName: "other.example.com", CACertificatesPEM: p.caPEM, ClientCertificate: client,
			SubjectAltNames: []config.SubjectAltName{{Type: config.SubjectAltNameURI, Value: "spiffe://abc.example.com/test-identity"}}}, "sni=other.example.com", false},
		{"dns san", config.UpstreamTLS{ServerName: "other.example.com", CACertificatesPEM: p.caPEM, ClientCertificate: client,
			SubjectAltNames: []config.SubjectAltName{{Type: config.SubjectAltNameDNS, Value: "abc.example.com"}}}, "sni=other.example.com", false},
		{"one of several sans", config.UpstreamTLS{ServerName: "abc.example.com", CACertificatesPEM: p.caPEM, ClientCertificate: client,
			SubjectAltNames: []config.SubjectAltName{{Type: config.SubjectAltNameURI, Value: "spiffe://def.example.com/x"}, {Type: config.SubjectAltNameDNS, Value: "y.wild.example.com"}}}, "sni=abc.example.com", false},
		{"san mismatch", config.UpstreamTLS{ServerName: "abc.example.com", CACertificatesPEM: p.caPEM, ClientCertificate: client,
			SubjectAltNames: []config.SubjectAltName{{Type: config.SubjectAltNameURI, Value: "spiffe://def.example.com/test-identity"}, {Type: config.SubjectAltNameDNS, Value: "def.example.com"}}}, "none of the subject alternative names", true},
		{"san path still verifies the chain", config.UpstreamTLS{ServerName: "abc.example.com", CACertificatesPEM: newTestPKI(t).caPEM, ClientCertificate: client,
			SubjectAltNames: []config.SubjectAltName{{Type: config.SubjectAltNameDNS, Value: "abc.example.com"}}}, "unknown authority", true},
		{"unusable bundle", config.UpstreamTLS{ServerName: "abc.example.com", CACertificatesPEM: "garbage"}, "backend TLS settings", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := NewManager(Options{})
			defer m.Close()
			m.Update([]config.Backend{tlsBackendConfig("b", addr, config.AppProtocolHTTP1, &c.tls)})
			body, err := roundTripBody(m, "b")
			switch {
			case c.fail && err == nil:
				t.Fatalf("request succeeded (%q), want an error about %q", body, c.want)
			case c.fail && !strings.Contains(err.Error(), c.want):
				t.Fatalf("error %v, want one about %q", err, c.want)
			case !c.fail && err != nil:
				t.Fatal(err)
			case !c.fail && !strings.Contains(body, c.want):
				t.Fatalf("body %q, want %q", body, c.want)
			}
		})
	}
}

func TestTLSBackendHTTP2ByALPN(t *testing.T) {
	p := newTestPKI(t)
	srv := tlsBackend(t, p, false, true)
	m := NewManager(Options{})
	defer m.Close()
	m.Update([]config.Backend{tlsBackendConfig("b", srv.Listener.Addr().String(), config.AppProtocolH2C,
		&config.UpstreamTLS{ServerName: "abc.example.com", CACertificatesPEM: p.caPEM})})
	body, err := roundTripBody(m, "b")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "proto=HTTP/2.0") {
		t.Fatalf("body %q, want HTTP/2", body)
	}
}

func TestTLSTransportsAreSharedAndDropped(t *testing.T) {
	p := newTestPKI(t)
	settings := &config.UpstreamTLS{ServerName: "abc.example.com", CACertificatesPEM: p.caPEM}
	other := &config.UpstreamTLS{ServerName: "other.example.com", CACertificatesPEM: p.caPEM}
	m := NewManager(Options{})
	defer m.Close()
	m.Update([]config.Backend{
		tlsBackendConfig("a", "127.0.0.1:1", config.AppProtocolHTTP1, settings),
		tlsBackendConfig("b", "127.0.0.1:2", config.AppProtocolHTTP1, settings),
		tlsBackendConfig("c", "127.0.0.1:3", config.AppProtocolHTTP1, other),
		{Name: "d", Protocol: config.AppProtocolHTTP1},
	})
	_, ta := m.Pool("a").Transport()
	_, tb := m.Pool("b").Transport()
	_, tc := m.Pool("c").Transport()
	_, td := m.Pool("d").Transport()
	if ta == nil || ta != tb || ta == tc || td != nil {
		t.Fatalf("transports a=%p b=%p c=%p d=%v: want a and b shared, c its own, d cleartext", ta, tb, tc, td)
	}
	copied := *settings
	m.Update([]config.Backend{tlsBackendConfig("a", "127.0.0.1:1", config.AppProtocolHTTP1, &copied)})
	if _, again := m.Pool("a").Transport(); again != ta {
		t.Error("equal settings in a new configuration got a new transport")
	}
	if len(m.tls) != 1 {
		t.Errorf("%d TLS transports kept, want 1", len(m.tls))
	}
}
