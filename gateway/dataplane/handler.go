package dataplane

import (
	"crypto/tls"
	"errors"
	"net/http"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// listenerHandler serves one socket: it looks up the route in the current generation
// and runs the rule's compiled handler.
type listenerHandler struct {
	engine *Engine
	name   string
	port   int
}

func (h *listenerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	gen := h.engine.current.Load()
	var cl *compiledListener
	if gen != nil {
		cl = gen.routes.listeners[h.name]
	}
	if cl == nil {
		http.Error(w, "no listener configuration", http.StatusNotFound)
		return
	}
	if r.TLS != nil && misdirected(cl, r) {
		// The TLS session was set up for another virtual host than the Host header
		// names; HTTP/2 connection reuse makes this easy to hit by accident. See
		// misdirected.
		http.Error(w, "misdirected request", http.StatusMisdirectedRequest)
		return
	}
	entry := cl.table.Lookup(r)
	if entry == nil {
		http.Error(w, "no route matches this request", http.StatusNotFound)
		return
	}
	info := &reqctx.Info{
		Listener:      h.name,
		VirtualHost:   entry.VirtualHost.Name,
		Route:         entry.Route.Name,
		RuleIndex:     entry.RuleIndex,
		MatchedPrefix: entry.MatchedPrefix,
		Host:          r.Host,
		ListenerPort:  h.port,
		TLS:           r.TLS != nil,
		Start:         time.Now(),
	}
	entry.Handler.ServeHTTP(w, reqctx.With(r, info))
}

var errNoCertificates = errors.New("no certificate for this listener")

// certificateFor returns a GetCertificate callback that always uses the certificates
// of the current generation.
func (e *Engine) certificateFor(name string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		gen := e.current.Load()
		if gen == nil {
			return nil, errNoCertificates
		}
		cl := gen.routes.listeners[name]
		if cl == nil || cl.certs == nil {
			return nil, errNoCertificates
		}
		return cl.certs.GetCertificate(hello)
	}
}
