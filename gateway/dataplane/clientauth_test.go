package dataplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/internal/testpki"
)

// mtlsFixture is an engine serving one HTTPS socket with virtual hosts that check
// client certificates in different ways, and the certificates to reach it with.
type mtlsFixture struct {
	engine     *Engine
	addr       string
	serverCAs  *x509.CertPool
	trusted    tls.Certificate // signed by the CA the virtual hosts trust
	untrusted  tls.Certificate // signed by another CA
	snapshotOf func(strict config.ClientValidationMode) *config.Snapshot
}

func newMTLSFixture(t *testing.T) *mtlsFixture {
	t.Helper()
	serverPKI, clientPKI, otherPKI := testpki.New(t), testpki.New(t), testpki.New(t)
	certPEM, keyPEM := serverPKI.Leaf(t, "strict.test", "loose.test", "open.test", "other.test", "127.0.0.1")
	f := &mtlsFixture{serverCAs: x509.NewCertPool()}
	f.serverCAs.AppendCertsFromPEM(serverPKI.CAPEM)
	f.trusted = keyPair(t, clientPKI, "client")
	f.untrusted = keyPair(t, otherPKI, "client")
	backend := startBackend(t, "ok")
	f.snapshotOf = func(strict config.ClientValidationMode) *config.Snapshot {
		snap := snapshotFor("mtls-"+string(strict), backend)
		l := &snap.Listeners[0]
		l.Protocol = config.ProtocolHTTPS
		routes := l.VirtualHosts[0].Routes
		certs := []config.Certificate{{Name: "ns/cert", CertPEM: string(certPEM), KeyPEM: string(keyPEM)}}
		ca := []config.CACertificate{{Name: "ns/ca", PEM: string(clientPKI.CAPEM)}}
		vh := func(name, host string, mode config.ClientValidationMode) config.VirtualHost {
			v := config.VirtualHost{Name: name, Hostname: host, Routes: routes, TLS: &config.TLS{Certificates: certs}}
			if mode != "" {
				v.TLS.ClientValidation = &config.ClientValidation{Mode: mode, CACertificates: ca}
			}
			return v
		}
		l.VirtualHosts = []config.VirtualHost{
			vh("ns/gw/any", "", ""),
			vh("ns/gw/loose", "loose.test", config.ClientValidationOptional),
			vh("ns/gw/open", "open.test", ""),
			vh("ns/gw/strict", "strict.test", strict),
		}
		return snap
	}
	f.engine = New(Options{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.engine.Shutdown(ctx)
	})
	f.apply(t, config.ClientValidationRequired)
	f.addr = f.engine.Addr("127.0.0.1:0")
	return f
}

func (f *mtlsFixture) apply(t *testing.T, strict config.ClientValidationMode) {
	t.Helper()
	if err := f.engine.Apply(f.snapshotOf(strict)); err != nil {
		t.Fatal(err)
	}
}

func keyPair(t *testing.T, pki *testpki.PKI, name string) tls.Certificate {
	t.Helper()
	certPEM, keyPEM := pki.Leaf(t, name)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// client returns an HTTP/2 client that connects to the fixture's socket with the
// given TLS server name ("" sends none) and client certificate (nil presents none),
// and reports whether the server asked for a certificate.
func (f *mtlsFixture) client(sni string, cert *tls.Certificate, asked *bool) *http.Client {
	cfg := &tls.Config{RootCAs: f.serverCAs, ServerName: sni, MinVersion: tls.VersionTLS12}
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if asked != nil {
			*asked = true
		}
		if cert == nil {
			return &tls.Certificate{}, nil
		}
		return cert, nil
	}
	if sni == "" {
		cfg.ServerName = "127.0.0.1"
	}
	transport := &http.Transport{
		TLSClientConfig:   cfg,
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, f.addr)
		},
	}
	return &http.Client{Transport: transport, Timeout: 5 * time.Second}
}

// do sends GET / with the given Host header and returns the status, or 0 and the
// error when the connection failed.
func do(c *http.Client, host string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, "https://127.0.0.1/", nil)
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func TestClientCertificateValidation(t *testing.T) {
	f := newMTLSFixture(t)
	cases := []struct {
		name      string
		sni, host string
		cert      *tls.Certificate
		want      int // 0: the request fails
		wantAsked bool
	}{
		{"required, trusted certificate", "strict.test", "strict.test", &f.trusted, 200, true},
		{"required, no certificate", "strict.test", "strict.test", nil, 0, true},
		{"required, untrusted certificate", "strict.test", "strict.test", &f.untrusted, 0, true},
		{"optional, trusted certificate", "loose.test", "loose.test", &f.trusted, 200, true},
		{"optional, untrusted certificate", "loose.test", "loose.test", &f.untrusted, 200, true},
		{"optional, no certificate", "loose.test", "loose.test", nil, 200, true},
		{"none", "open.test", "open.test", nil, 200, false},
		{"unknown name takes the catch-all", "other.test", "other.test", nil, 200, false},
		// Connection reuse across virtual hosts must not skip or misapply a check.
		{"open connection, strict host", "open.test", "strict.test", nil, 421, false},
		{"strict connection, open host", "strict.test", "open.test", &f.trusted, 421, true},
		{"no server name, strict host", "", "strict.test", &f.trusted, 421, false},
		{"no server name, open host", "", "open.test", nil, 200, false},
		{"no server name, loose host", "", "loose.test", nil, 421, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var asked bool
			got, err := do(f.client(c.sni, c.cert, &asked), c.host)
			if got != c.want {
				t.Fatalf("got %d (%v), want %d", got, err, c.want)
			}
			if asked != c.wantAsked {
				t.Errorf("certificate asked for: %v, want %v", asked, c.wantAsked)
			}
		})
	}
}

// A connection set up while a virtual host accepted any client must not keep
// reaching it once the virtual host requires a certificate.
func TestClientValidationTurnedOnForOpenConnections(t *testing.T) {
	f := newMTLSFixture(t)
	f.apply(t, "")
	reused := f.client("strict.test", nil, nil)
	if got, err := do(reused, "strict.test"); got != 200 {
		t.Fatalf("before: got %d (%v), want 200", got, err)
	}
	f.apply(t, config.ClientValidationRequired)
	if got, err := do(reused, "strict.test"); got != http.StatusMisdirectedRequest {
		t.Fatalf("kept connection: got %d (%v), want 421", got, err)
	}
	if got, err := do(f.client("strict.test", &f.trusted, nil), "strict.test"); got != 200 {
		t.Fatalf("new connection with a certificate: got %d (%v), want 200", got, err)
	}
}

func TestInvalidCABundleRejectsSnapshot(t *testing.T) {
	f := newMTLSFixture(t)
	snap := f.snapshotOf(config.ClientValidationRequired)
	snap.Version = "bad-ca"
	vh := &snap.Listeners[0].VirtualHosts[3]
	vh.TLS.ClientValidation.CACertificates[0].PEM = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
	if err := f.engine.Apply(snap); err == nil {
		t.Fatal("a snapshot with an unparsable CA bundle was accepted")
	}
	if got, err := do(f.client("strict.test", &f.trusted, nil), "strict.test"); got != 200 {
		t.Fatalf("serving generation lost: got %d (%v), want 200", got, err)
	}
}
