package dataplane

import (
	"crypto/tls"
	"errors"
	"net/http"

	"github.com/switchyard-dev/switchyard/gateway/observe"
	"github.com/switchyard-dev/switchyard/gateway/proxy"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// listenerHandler serves one socket: it looks up the route in the current generation
// and runs the rule's compiled handler.
type listenerHandler struct {
	engine *Engine
	name   string
	port   int
	// observer observes the socket's requests; nil when the engine has no Observer.
	observer *observe.Listener
}

func (h *listenerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x, r := h.observer.Begin(w, r)
	defer x.End()
	w = x.Writer()
	gen := h.engine.current.Load()
	var cl *compiledListener
	if gen != nil {
		cl = gen.routes.listeners[h.name]
	}
	if cl == nil {
		x.Info.Flags |= reqctx.FlagNoRoute
		http.Error(w, "no listener configuration", http.StatusNotFound)
		return
	}
	if r.TLS != nil && misdirected(cl, r) {
		// The TLS session was set up for another virtual host than the Host header
		// names; HTTP/2 connection reuse makes this easy to hit by accident. See
		// misdirected.
		x.Info.Flags |= reqctx.FlagMisdirected
		http.Error(w, "misdirected request", http.StatusMisdirectedRequest)
		return
	}
	entry := cl.table.Lookup(r)
	if entry == nil {
		x.Info.Flags |= reqctx.FlagNoRoute
		http.Error(w, "no route matches this request", http.StatusNotFound)
		return
	}
	info := &x.Info
	info.Listener = h.name
	info.VirtualHost = entry.VirtualHost.Name
	info.Route = entry.Route.Name
	info.RuleIndex = entry.RuleIndex
	info.MatchedPrefix = entry.MatchedPrefix
	info.Host = r.Host
	info.ListenerPort = h.port
	info.TLS = r.TLS != nil
	next := entry.Handler
	if rule, ok := next.(*observedRule); ok {
		x.Route(rule.observer)
		next = rule.next
	}
	next.ServeHTTP(w, x.Attach(r))
}

// observedRule is a rule's compiled handler together with the observer of its
// requests. The route table keeps one handler per rule, so the observer travels
// with it; listenerHandler unwraps it.
type observedRule struct {
	next     http.Handler
	observer *observe.Rule
	// raw forwards the rule's requests from their wire form where it can; nil when
	// every request goes to next.
	raw *proxy.RawRoute
}

func (o *observedRule) ServeHTTP(w http.ResponseWriter, r *http.Request) { o.next.ServeHTTP(w, r) }

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
