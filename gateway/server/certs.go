package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// CertPair is one PEM certificate chain (leaf first) and its private key.
type CertPair struct {
	// Name says where the pair came from ("<namespace>/<secret>"); errors use it.
	Name string
	// CertPEM is the PEM-encoded certificate chain.
	CertPEM string
	// KeyPEM is the PEM-encoded private key. It is secret: never log it.
	KeyPEM string
}

// CertStore picks a certificate by SNI: an exact DNS-name match, then a wildcard
// match, then the default (the first pair). It is built once per configuration
// version and never changes, so handshakes read it without locking.
type CertStore struct {
	fallback *tls.Certificate
	exact    map[string]*tls.Certificate
	// wildcard maps the parent domain of a "*.parent" name to its certificate.
	wildcard map[string]*tls.Certificate
}

// NewCertStore parses pairs. When two certificates claim the same name, the earlier
// pair wins, so the order of pairs is the order of preference.
func NewCertStore(pairs []CertPair) (*CertStore, error) {
	if len(pairs) == 0 {
		return nil, errors.New("no certificates")
	}
	store := &CertStore{
		exact:    map[string]*tls.Certificate{},
		wildcard: map[string]*tls.Certificate{},
	}
	for _, pair := range pairs {
		cert, err := tls.X509KeyPair([]byte(pair.CertPEM), []byte(pair.KeyPEM))
		if err != nil {
			return nil, fmt.Errorf("certificate %q: %w", pair.Name, err)
		}
		if cert.Leaf == nil {
			if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
				return nil, fmt.Errorf("certificate %q: %w", pair.Name, err)
			}
		}
		store.add(&cert)
	}
	return store, nil
}

// add indexes cert under its DNS names; the first certificate is the default.
func (c *CertStore) add(cert *tls.Certificate) {
	if c.fallback == nil {
		c.fallback = cert
	}
	for _, name := range cert.Leaf.DNSNames {
		name = normalizeServerName(name)
		index, key := c.exact, name
		if parent, ok := strings.CutPrefix(name, "*."); ok {
			index, key = c.wildcard, parent
		}
		if _, taken := index[key]; !taken {
			index[key] = cert
		}
	}
}

// GetCertificate returns the certificate for the client's server name. It fits
// tls.Config.GetCertificate. Clients that send no SNI get the default certificate.
func (c *CertStore) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c == nil || c.fallback == nil {
		return nil, errors.New("no certificates")
	}
	name := normalizeServerName(hello.ServerName)
	if name == "" {
		return c.fallback, nil
	}
	if cert, ok := c.exact[name]; ok {
		return cert, nil
	}
	// A wildcard covers exactly one label (RFC 6125), as clients verify it.
	if _, parent, ok := strings.Cut(name, "."); ok {
		if cert, ok := c.wildcard[parent]; ok {
			return cert, nil
		}
	}
	return c.fallback, nil
}

// normalizeServerName lower-cases a DNS name and drops a trailing dot.
func normalizeServerName(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}
