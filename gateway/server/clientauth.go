package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
)

// CABundle is one PEM bundle of CA certificates that client certificates are checked
// against.
type CABundle struct {
	// Name says where the bundle came from ("<namespace>/<configmap>"); errors use it.
	Name string
	// PEM holds one or more PEM-encoded CA certificates.
	PEM string
}

// ClientValidation is how a TLS socket asks clients for a certificate during the
// handshake (mutual TLS). It is built once per configuration version and never
// changes, so handshakes read it without locking.
type ClientValidation struct {
	roots    *x509.CertPool
	optional bool
	// derived caches the handshake configuration made from a socket's base
	// configuration, so that a handshake allocates nothing for it. A
	// ClientValidation normally serves one socket; another base replaces the entry.
	derived atomic.Pointer[derivedConfig]
}

type derivedConfig struct {
	base, config *tls.Config
}

// NewClientValidation parses the CA bundles. When optional is false, clients must
// present a certificate that chains to one of the CAs, or the handshake fails. When
// optional is true, a certificate is asked for but any answer is accepted, none
// included; the request is then served without a verified client identity (the
// Gateway API's AllowInsecureFallback mode), and r.TLS.VerifiedChains stays empty.
func NewClientValidation(bundles []CABundle, optional bool) (*ClientValidation, error) {
	if len(bundles) == 0 {
		return nil, errors.New("no CA certificates")
	}
	roots := x509.NewCertPool()
	for _, b := range bundles {
		if !roots.AppendCertsFromPEM([]byte(b.PEM)) {
			return nil, fmt.Errorf("CA bundle %q holds no PEM certificate", b.Name)
		}
	}
	return &ClientValidation{roots: roots, optional: optional}, nil
}

// Required reports whether a connection must carry a verified client certificate.
func (v *ClientValidation) Required() bool { return v != nil && !v.optional }

// configFor returns base with client certificates asked for as v says.
func (v *ClientValidation) configFor(base *tls.Config) *tls.Config {
	if d := v.derived.Load(); d != nil && d.base == base {
		return d.config
	}
	cfg := base.Clone()
	// The derived configuration is final; it must not be asked again.
	cfg.GetConfigForClient = nil
	// The CAs are named in the certificate request either way, so that clients
	// holding several certificates can pick the right one.
	cfg.ClientCAs = v.roots
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	if v.optional {
		// Requested but not verified by the handshake: a client whose certificate
		// fails verification would otherwise be refused, which this mode forbids.
		cfg.ClientAuth = tls.RequestClientCert
	}
	v.derived.Store(&derivedConfig{base: base, config: cfg})
	return cfg
}

// configForClient is the socket's tls.Config.GetConfigForClient. Sockets without
// client validation return at once, so the common handshake pays one atomic load
// here (and crypto/tls one small allocation for the ClientHelloInfo it passes).
func (s *socket) configForClient(base *tls.Config) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		choose := s.spec.Load().ClientValidation
		if choose == nil {
			return nil, nil
		}
		v := choose(hello)
		if v == nil {
			return nil, nil
		}
		return v.configFor(base), nil
	}
}
