package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testCertificate makes a self-signed certificate and its key, PEM-encoded.
func testCertificate(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

func tlsSnapshot(t *testing.T) *Snapshot {
	certPEM, keyPEM := testCertificate(t)
	snap := validSnapshot()
	snap.Backends = append(snap.Backends, Backend{Name: "ns/tls:443", Protocol: AppProtocolHTTP1,
		TLS: &UpstreamTLS{ServerName: "a.example.com", CACertificatesPEM: certPEM,
			SubjectAltNames:   []SubjectAltName{{Type: SubjectAltNameURI, Value: "spiffe://example.com/a"}},
			ClientCertificate: &Certificate{Name: "ns/client", CertPEM: certPEM, KeyPEM: keyPEM}}})
	rule := &snap.Listeners[0].VirtualHosts[0].Routes[0].Rules[0]
	rule.Backends = append(rule.Backends, BackendRef{Backend: "ns/tls:443", Weight: 1})
	rule.Filters = []Filter{{Type: FilterRequestMirror, RequestMirror: &Mirror{Backend: "ns/tls:443"}}}
	return snap
}

func TestValidateAcceptsUpstreamTLS(t *testing.T) {
	if err := tlsSnapshot(t).Validate(); err != nil {
		t.Fatal(err)
	}
	sys := validSnapshot()
	sys.Backends[0].TLS = &UpstreamTLS{ServerName: "a.example.com", SystemRoots: true}
	if err := sys.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateNamesUpstreamTLSProblems(t *testing.T) {
	certPEM, keyPEM := testCertificate(t)
	otherCert, _ := testCertificate(t)
	cases := []struct {
		name string
		tls  UpstreamTLS
		want string
	}{
		{"no server name", UpstreamTLS{SystemRoots: true}, "serverName is empty"},
		{"no trust", UpstreamTLS{ServerName: "a"}, "neither caCertificatesPEM nor systemRoots"},
		{"both trusts", UpstreamTLS{ServerName: "a", SystemRoots: true, CACertificatesPEM: certPEM}, "both set"},
		{"bad bundle", UpstreamTLS{ServerName: "a", CACertificatesPEM: "not pem"}, "no PEM certificate"},
		{"bad san type", UpstreamTLS{ServerName: "a", SystemRoots: true, SubjectAltNames: []SubjectAltName{{Type: "IP", Value: "1.2.3.4"}}}, `type "IP"`},
		{"empty san", UpstreamTLS{ServerName: "a", SystemRoots: true, SubjectAltNames: []SubjectAltName{{Type: SubjectAltNameDNS}}}, "subjectAltNames[0] is empty"},
		{"mismatched key", UpstreamTLS{ServerName: "a", SystemRoots: true, ClientCertificate: &Certificate{Name: "ns/c", CertPEM: otherCert, KeyPEM: keyPEM}}, "clientCertificate ns/c"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap := validSnapshot()
			snap.Backends[0].TLS = &c.tls
			err := snap.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "backend ns/svc:80 tls") {
				t.Errorf("got %v, want an error about %q", err, c.want)
			}
		})
	}
}

func TestDowngradeToSchema2TakesOutTLSBackends(t *testing.T) {
	snap := tlsSnapshot(t)
	before, err := Downgrade(snap, SchemaVersion) // the same snapshot, for comparison
	if err != nil {
		t.Fatal(err)
	}
	beforeRules := append([]Rule(nil), snap.Listeners[0].VirtualHosts[0].Routes[0].Rules...)
	beforeRefs := append([]BackendRef(nil), beforeRules[0].Backends...)

	got, err := Downgrade(snap, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Backends) != 1 || got.Backends[0].Name != "ns/svc:80" {
		t.Fatalf("backends %+v, want only the cleartext one", got.Backends)
	}
	rule := got.Listeners[0].VirtualHosts[0].Routes[0].Rules[0]
	if rule.Backends[0].Backend != "ns/svc:80" || rule.Backends[0].Invalid != nil {
		t.Errorf("cleartext reference changed: %+v", rule.Backends[0])
	}
	if ref := rule.Backends[1]; ref.Backend != "" || ref.Invalid == nil || ref.Invalid.StatusCode != 503 {
		t.Errorf("TLS reference %+v, want an invalid one answering 503", ref)
	}
	if rule.Filters[0].RequestMirror.Backend != "" {
		t.Error("mirror to the TLS backend was kept")
	}
	if err := validateAsCurrent(got); err != nil {
		t.Errorf("downgraded snapshot does not validate: %v", err)
	}
	// The input is untouched.
	orig := snap.Listeners[0].VirtualHosts[0].Routes[0].Rules
	if before != snap || !reflect.DeepEqual(orig[0].Backends, beforeRefs) || orig[0].Filters[0].RequestMirror.Backend != "ns/tls:443" || len(snap.Backends) != 2 {
		t.Error("Downgrade modified its input")
	}
}

func TestDowngradeWithoutTLSBackendsSharesListeners(t *testing.T) {
	snap := validSnapshot()
	got, err := Downgrade(snap, 2)
	if err != nil {
		t.Fatal(err)
	}
	if &got.Listeners[0] != &snap.Listeners[0] {
		t.Error("listeners were copied although no backend needs TLS")
	}
}

// validateAsCurrent validates a downgraded snapshot's content as if it were of the
// current schema: Validate accepts only the two newest schema versions, and the
// content of an older shape is a subset of the current one.
func validateAsCurrent(s *Snapshot) error {
	c := *s
	c.SchemaVersion = SchemaVersion
	return c.Validate()
}
