package dataplane

import (
	"crypto/tls"
	"net/http"
	"strings"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/server"
)

// compileClientValidation parses the client certificate settings of l's virtual
// hosts. Virtual hosts with equal settings share one compiled value, so that the
// misdirection check can compare them by identity. The result is nil when no virtual
// host asks for client certificates.
func compileClientValidation(l *config.Listener) (map[*config.VirtualHost]*server.ClientValidation, error) {
	var out map[*config.VirtualHost]*server.ClientValidation
	byContent := map[string]*server.ClientValidation{}
	for i := range l.VirtualHosts {
		vh := &l.VirtualHosts[i]
		if vh.TLS == nil || vh.TLS.ClientValidation == nil {
			continue
		}
		cv := vh.TLS.ClientValidation
		key := clientValidationKey(cv)
		compiled, ok := byContent[key]
		if !ok {
			bundles := make([]server.CABundle, 0, len(cv.CACertificates))
			for _, ca := range cv.CACertificates {
				bundles = append(bundles, server.CABundle{Name: ca.Name, PEM: ca.PEM})
			}
			var err error
			if compiled, err = server.NewClientValidation(bundles, cv.Mode == config.ClientValidationOptional); err != nil {
				return nil, err
			}
			byContent[key] = compiled
		}
		if out == nil {
			out = map[*config.VirtualHost]*server.ClientValidation{}
		}
		out[vh] = compiled
	}
	return out, nil
}

// clientValidationKey identifies settings by content: the mode and the CA bundles.
func clientValidationKey(cv *config.ClientValidation) string {
	var b strings.Builder
	b.WriteString(string(cv.Mode))
	for _, ca := range cv.CACertificates {
		b.WriteByte(0)
		b.WriteString(ca.PEM)
	}
	return b.String()
}

// clientValidationFor returns the socket's ClientValidation callback: the virtual
// host that the client's server name selects decides, as it does for requests. A
// client that sends no server name gets the settings of the virtual host without a
// hostname, if there is one.
func (e *Engine) clientValidationFor(name string) func(*tls.ClientHelloInfo) *server.ClientValidation {
	return func(hello *tls.ClientHelloInfo) *server.ClientValidation {
		gen := e.current.Load()
		if gen == nil {
			return nil
		}
		cl := gen.routes.listeners[name]
		if cl == nil || cl.clientAuth == nil {
			return nil
		}
		return cl.clientAuth[cl.table.VirtualHostFor(hello.ServerName)]
	}
}

// misdirected reports whether the request must be retried on another connection
// (421 Misdirected Request): the TLS server name of its connection selects another
// virtual host than its Host header, or its virtual host checks client certificates
// differently than the connection's handshake did. HTTP/2 clients reuse a connection
// for every host its certificate covers, and without this check a request could reach
// a virtual host on a connection set up for another, skipping that virtual host's
// client certificate check.
func misdirected(cl *compiledListener, r *http.Request) bool {
	sni := r.TLS.ServerName
	target := cl.table.VirtualHostFor(r.Host)
	if sni != "" && cl.table.VirtualHostFor(sni) != target {
		return true
	}
	if cl.clientAuth == nil {
		return false
	}
	want := cl.clientAuth[target]
	if sni == "" && cl.clientAuth[cl.table.VirtualHostFor("")] != want {
		return true
	}
	// A connection set up before its virtual host began to require client
	// certificates carries none; a new connection will be asked for one.
	return want.Required() && len(r.TLS.VerifiedChains) == 0
}
