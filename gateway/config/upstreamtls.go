package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// UpstreamTLS is how the gateway connects to a backend over TLS: which certificates
// it trusts, the name it asks for and verifies, and the certificate it presents.
type UpstreamTLS struct {
	// ServerName is sent as SNI. Unless SubjectAltNames is set, the backend's
	// certificate must also be valid for this name.
	ServerName string `json:"serverName"`
	// CACertificatesPEM holds the PEM-encoded certificates of the authorities that
	// may sign the backend's certificate. Exactly one of it and SystemRoots is set.
	CACertificatesPEM string `json:"caCertificatesPEM,omitempty"`
	// SystemRoots trusts the authorities of the operating system's trust store.
	SystemRoots bool `json:"systemRoots,omitempty"`
	// SubjectAltNames, when not empty, replace ServerName in verification: the
	// backend's certificate must carry at least one of them.
	SubjectAltNames []SubjectAltName `json:"subjectAltNames,omitempty"`
	// ClientCertificate, when set, is presented to backends that ask for a client
	// certificate. Its KeyPEM is secret: never log it.
	ClientCertificate *Certificate `json:"clientCertificate,omitempty"`
}

// SubjectAltNameType is the kind of a subject alternative name.
type SubjectAltNameType string

const (
	// SubjectAltNameDNS is a DNS name ("api.example.com"); a certificate's
	// wildcard names ("*.example.com") match one label as in server verification.
	SubjectAltNameDNS SubjectAltNameType = "DNS"
	// SubjectAltNameURI is a URI, such as a SPIFFE ID, compared exactly.
	SubjectAltNameURI SubjectAltNameType = "URI"
)

// SubjectAltName is one name a backend's certificate may carry.
type SubjectAltName struct {
	// Type is DNS or URI.
	Type SubjectAltNameType `json:"type"`
	// Value is the DNS name or the URI.
	Value string `json:"value"`
}

// upstreamTLS checks that the TLS settings of a backend can be built into a client
// configuration: a server name, one source of trust whose certificates parse, known
// subject alternative names, and a client certificate that matches its key.
func (v *validator) upstreamTLS(where string, t *UpstreamTLS) {
	if t.ServerName == "" {
		v.add(where, "serverName is empty")
	}
	switch {
	case t.SystemRoots && t.CACertificatesPEM != "":
		v.add(where, "caCertificatesPEM and systemRoots are both set")
	case !t.SystemRoots && t.CACertificatesPEM == "":
		v.add(where, "neither caCertificatesPEM nor systemRoots is set")
	case t.CACertificatesPEM != "":
		if _, err := ParseCertificates(t.CACertificatesPEM); err != nil {
			v.add(where, "caCertificatesPEM: %v", err)
		}
	}
	for i, san := range t.SubjectAltNames {
		if san.Value == "" {
			v.add(where, "subjectAltNames[%d] is empty", i)
		}
		if san.Type != SubjectAltNameDNS && san.Type != SubjectAltNameURI {
			v.add(where, "subjectAltNames[%d] has type %q, not DNS or URI", i, san.Type)
		}
	}
	if c := t.ClientCertificate; c != nil {
		if _, err := tls.X509KeyPair([]byte(c.CertPEM), []byte(c.KeyPEM)); err != nil {
			v.add(where, "clientCertificate %s: %v", c.Name, err)
		}
	}
}

// ParseCertificates reads every CERTIFICATE block of a PEM bundle. Other blocks are
// skipped; a bundle with no certificate, or with one that does not parse, is an error.
func ParseCertificates(bundle string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(bundle)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		out = append(out, cert)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}
