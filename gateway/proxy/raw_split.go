package proxy

import (
	"net/http"
	"slices"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/server/h1"
)

// How a raw route chooses the backend of a request: as the rule's handler does (see
// RuleHandler), with the same split and the same forwarders, taken from the handler
// RuleHandler built, so that both ways of forwarding share their weights and cost
// no second set of forwarders. The choice is made before the filters run, which
// cannot change it: none of them edits a field the header route reads (see
// rawBackends).

// rawBackends sets r's split and header route from next, the handler RuleHandler
// built for the rule under its deadline. It reports false when the rule needs its
// handler: a backend that gets requests answers with an error (an invalid
// reference) or has filters of its own, or the header route reads a field the
// rule's filters edit.
func rawBackends(r *RawRoute, next http.Handler) bool {
	if hr, ok := next.(*headerRouteHandler); ok {
		pinned, ok := hr.pinned.(*forwarder)
		if !ok {
			return false
		}
		for _, c := range hr.conds {
			if slices.Contains(r.edited, c.name) {
				return false
			}
		}
		r.header, r.pinned = hr, pinned
		next = hr.weighted
	}
	switch h := next.(type) {
	case *weightedHandler:
		for _, item := range h.items {
			if _, ok := item.(*forwarder); !ok {
				return false
			}
		}
		r.split = h
		return true
	case *proxyError:
		// A rule without weights answers with an error unless its header route
		// takes the request: the raw route declines those.
		return h == errNoBackends && r.pinned != nil
	}
	return false
}

// choose returns the forwarder of the backend x goes to, or nil when the rule's
// handler answers it with an error: it matches no header route and no backend has
// a weight.
func (r *RawRoute) choose(x *h1.Exchange) *forwarder {
	if r.pinned != nil && r.headersMatch(x) {
		return r.pinned
	}
	if r.split == nil {
		return nil
	}
	// rawBackends made sure that every item is a forwarder.
	return r.split.pick().(*forwarder)
}

// headersMatch reports whether x carries every header of the header route, as
// headerRouteHandler.matches decides for an http.Request: Host compares the
// request's host, and any field line of a name may hold the value.
func (r *RawRoute) headersMatch(x *h1.Exchange) bool {
	for i := range r.header.conds {
		c := &r.header.conds[i]
		if c.isHost {
			if x.Host() != c.value {
				return false
			}
			continue
		}
		found := false
		for j := range x.Fields() {
			if name, value := x.Field(j); name == c.name && value == c.value {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// allPoolsRaw reports whether the raw client can reach every backend of a rule that
// has several: a request is declined for all of them or for none, because the
// rule's handler makes a choice of its own, and declining one backend's requests
// would move part of its share to the others.
func (r *RawRoute) allPoolsRaw() bool {
	if r.pinned == nil && (r.split == nil || len(r.split.items) <= 1) {
		return true
	}
	if r.split != nil {
		for _, item := range r.split.items {
			if rawPool(item.(*forwarder)) == nil {
				return false
			}
		}
	}
	return r.pinned == nil || rawPool(r.pinned) != nil
}

// admitsEarly reports whether the breaker admits requests before anything else is
// done (see Forward): there are no filters, and the choice of backend does not
// depend on chance, so that the breaker declining a request moves no share of a
// split.
func (r *RawRoute) admitsEarly() bool {
	return len(r.stages) == 0 && (r.split == nil || len(r.split.items) <= 1)
}

// rawPool returns the pool of the backend fwd forwards to, or nil when the raw
// client cannot reach it: it is gone, or speaks TLS or a protocol other than
// HTTP/1.1.
func rawPool(fwd *forwarder) *backend.Pool {
	pool := fwd.proxy.backends.Pool(fwd.backend)
	if pool == nil {
		return nil
	}
	if protocol, tls := pool.Transport(); tls != nil || (protocol != config.AppProtocolHTTP1 && protocol != "") {
		return nil
	}
	return pool
}
