package backend

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// tlsKey identifies a TLS transport: a digest of the protocol and the TLS settings,
// so that backends with equal settings share one transport and its idle connections.
func tlsKey(protocol config.AppProtocol, t *config.UpstreamTLS) string {
	h := sha256.New()
	h.Write([]byte(protocol))
	h.Write([]byte{0})
	// The settings are plain data and always marshal.
	_ = json.NewEncoder(h).Encode(t)
	return hex.EncodeToString(h.Sum(nil))
}

// newTLSTransport returns a transport that speaks protocol to backends over TLS
// with the given settings: HTTP/2 negotiated by ALPN for h2c backends, HTTP/1.1
// otherwise (WebSocket included). Settings that cannot be used give a transport that
// fails every request with the reason, so such a backend is never reached in
// cleartext or without verification.
func newTLSTransport(o Options, protocol config.AppProtocol, t *config.UpstreamTLS) http.RoundTripper {
	cfg, err := clientTLSConfig(t)
	if err != nil {
		return failingTransport{err: fmt.Errorf("backend TLS settings: %w", err)}
	}
	tr := newBaseTransport(o)
	tr.TLSClientConfig = cfg
	tr.TLSHandshakeTimeout = o.DialTimeout
	tr.Protocols = new(http.Protocols)
	if protocol == config.AppProtocolH2C {
		tr.Protocols.SetHTTP2(true)
		tr.HTTP2 = &http.HTTP2Config{SendPingTimeout: o.H2CPingInterval}
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	return tr
}

// clientTLSConfig builds the client side of a backend connection. Without subject
// alternative names the standard verification checks the chain and ServerName. With
// them, ServerName is only sent as SNI: the chain is verified against the same roots
// and the certificate must carry one of the names.
func clientTLSConfig(t *config.UpstreamTLS) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if !t.SystemRoots {
		certs, err := config.ParseCertificates(t.CACertificatesPEM)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		for _, c := range certs {
			cfg.RootCAs.AddCert(c)
		}
	}
	if c := t.ClientCertificate; c != nil {
		pair, err := tls.X509KeyPair([]byte(c.CertPEM), []byte(c.KeyPEM))
		if err != nil {
			return nil, fmt.Errorf("client certificate %s: %w", c.Name, err)
		}
		// The certificate is sent whenever the backend asks, whatever authorities it
		// names: the backend, not the gateway, decides whether it is acceptable.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	if len(t.SubjectAltNames) > 0 {
		sans := slices.Clone(t.SubjectAltNames)
		roots := cfg.RootCAs
		// Verification is done in VerifyConnection, which sees the whole state; the
		// standard check would insist on ServerName.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return verifySANs(cs, roots, sans) }
	}
	return cfg, nil
}

// verifySANs verifies the peer's chain against roots (nil: the system's) for server
// authentication and checks that the leaf carries one of the names.
func verifySANs(cs tls.ConnectionState, roots *x509.CertPool, sans []config.SubjectAltName) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("backend sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(opts); err != nil {
		return err
	}
	for _, san := range sans {
		if leafHas(leaf, san) {
			return nil
		}
	}
	return fmt.Errorf("backend certificate carries none of the subject alternative names %s", describeSANs(sans))
}

// leafHas reports whether a certificate carries a subject alternative name. DNS
// names follow the server-name rules (including the certificate's wildcards); URIs
// compare exactly.
func leafHas(leaf *x509.Certificate, san config.SubjectAltName) bool {
	switch san.Type {
	case config.SubjectAltNameDNS:
		// VerifyHostname checks the DNS names only (never the common name), and
		// would take an IP literal for an IP address SAN, which a Hostname is not.
		return len(leaf.DNSNames) > 0 && !looksLikeIP(san.Value) && leaf.VerifyHostname(san.Value) == nil
	case config.SubjectAltNameURI:
		for _, u := range leaf.URIs {
			if sameURI(u, san.Value) {
				return true
			}
		}
	}
	return false
}

func sameURI(u *url.URL, want string) bool { return u.String() == want }

func looksLikeIP(s string) bool {
	return strings.Trim(s, "0123456789.") == "" || strings.Contains(s, ":")
}

func describeSANs(sans []config.SubjectAltName) string {
	parts := make([]string, len(sans))
	for i, s := range sans {
		parts[i] = string(s.Type) + ":" + s.Value
	}
	return strings.Join(parts, ", ")
}

// failingTransport fails every request with the same error.
type failingTransport struct{ err error }

func (f failingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return nil, f.err
}
