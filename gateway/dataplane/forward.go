package dataplane

import (
	"errors"
	"net/http"
	"os"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/observe"
	"github.com/switchyard-dev/switchyard/gateway/proxy"
	"github.com/switchyard-dev/switchyard/gateway/server/h1"
)

// ForwardingMode chooses how rules that ask nothing of a request but where to send
// it are served over HTTP/1.1.
type ForwardingMode string

const (
	// ForwardRaw forwards their requests from the wire form the server parsed
	// (see proxy.RawRoute), where the request and the answer allow that, and by
	// their handlers otherwise.
	ForwardRaw ForwardingMode = "raw"
	// ForwardHandler serves every request by its rule's handler.
	ForwardHandler ForwardingMode = "handler"
)

// ForwardingModeEnv names the environment variable that chooses the forwarding mode
// when Options.Forwarding (or a command's flag) leaves it open.
const ForwardingModeEnv = "SWITCHYARD_FORWARDING"

// ParseForwardingMode reads "raw" or "handler"; "" means the environment's choice
// (see ForwardingModeEnv), else raw.
func ParseForwardingMode(v string) (ForwardingMode, error) {
	if v == "" {
		v = os.Getenv(ForwardingModeEnv)
	}
	switch ForwardingMode(v) {
	case "", ForwardRaw:
		return ForwardRaw, nil
	case ForwardHandler:
		return ForwardHandler, nil
	}
	return "", errors.New(`forwarding must be "raw" or "handler", not "` + v + `"`)
}

// rawRoute returns the raw route of a rule whose requests can be forwarded from
// their wire form (see proxy.RawRoute), or nil: the rule needs its handler (chain,
// its filters around its proxy handler), or the observer needs each request's
// http.Request (tracing), or raw forwarding is switched off.
func (e *Engine) rawRoute(rule *config.Rule, chain http.Handler, observer *observe.Rule) *proxy.RawRoute {
	if e.handlersOnly || !e.observer.RecordsRaw() {
		return nil
	}
	return e.proxy.RawRoute(rule, chain, observer)
}

// Forward forwards a request from its wire form when its rule allows that, and
// declines it otherwise, for ServeHTTP to serve. It makes the checks ServeHTTP
// makes before running the rule, declining rather than answering their failures.
func (h *listenerHandler) Forward(x *h1.Exchange) bool {
	if x.TLS() {
		// ServeHTTP checks TLS requests for being misdirected.
		return false
	}
	gen := h.engine.current.Load()
	if gen == nil {
		return false
	}
	cl := gen.routes.listeners[h.name]
	if cl == nil {
		return false
	}
	if cl.table.MatchesHeaders() {
		x.Header()
	}
	entry := cl.table.Lookup(x.Request)
	if entry == nil {
		return false
	}
	rule, ok := entry.Handler.(*observedRule)
	if !ok || rule.raw == nil {
		return false
	}
	h.observer.BeginRaw()
	defer h.observer.EndRaw()
	return rule.raw.Forward(x, h.observer)
}
