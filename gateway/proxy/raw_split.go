package proxy

import (
	"slices"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/server/h1"
)

// How a raw route chooses the backend of a request: as the rule's handler does
// (see RuleHandler), by the header route when the rule has one, else by weight. The
// choice is made before the filters run, which cannot change it: none of them edits
// a field the header route reads (see rawBackends).

// rawBackends sets r's split and header route from rule's backend references, as
// RuleHandler builds them, with a forwarder per reference shared by both. It
// reports false when the rule needs its handler: a reference that gets requests is
// invalid (the handler answers its share with an error) or has filters of its own,
// or the header route reads a field the rule's filters edit.
func (p *Proxy) rawBackends(r *RawRoute, rule *config.Rule, backendTimeout time.Duration, retry *retryPolicy) bool {
	hr := rule.HeaderRoute
	if hr != nil {
		if len(hr.Headers) == 0 || hr.Backend < 0 || hr.Backend >= len(rule.Backends) {
			return false
		}
		r.conds = newHeaderConds(hr.Headers)
		for _, c := range r.conds {
			if slices.Contains(r.edited, c.name) {
				return false
			}
		}
	}
	for i := range rule.Backends {
		ref := &rule.Backends[i]
		isPinned := hr != nil && hr.Backend == i
		if ref.Weight <= 0 && !isPinned {
			// The rule's handler sends such a backend nothing either.
			continue
		}
		if ref.Invalid != nil || ref.Backend == "" || len(ref.Filters) > 0 {
			return false
		}
		fwd := p.newForwarder(ref.Backend, backendTimeout, retry)
		if isPinned {
			r.pinned = fwd
		}
		if ref.Weight > 0 {
			r.split.add(ref.Weight, fwd)
		}
	}
	return len(r.split.items) > 0 || r.pinned != nil
}

// choose returns the forwarder of the backend x goes to, or nil when the rule's
// handler answers it with an error: it matches no header route and no backend has
// a weight.
func (r *RawRoute) choose(x *h1.Exchange) *forwarder {
	if r.pinned != nil && r.headersMatch(x) {
		return r.pinned
	}
	if len(r.split.items) == 0 {
		return nil
	}
	return r.split.pick()
}

// headersMatch reports whether x carries every header of the header route, as
// headerRouteHandler.matches decides for an http.Request: Host compares the
// request's host, and any field line of a name may hold the value.
func (r *RawRoute) headersMatch(x *h1.Exchange) bool {
	for i := range r.conds {
		c := &r.conds[i]
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
	if len(r.split.items) <= 1 && r.pinned == nil {
		return true
	}
	for _, f := range r.split.items {
		if rawPool(f) == nil {
			return false
		}
	}
	return r.pinned == nil || rawPool(r.pinned) != nil
}

// admitsEarly reports whether the breaker admits requests before anything else is
// done (see Forward): there are no filters, and the choice of backend does not
// depend on chance, so that the breaker declining a request moves no share of a
// split.
func (r *RawRoute) admitsEarly() bool {
	return len(r.stages) == 0 && len(r.split.items) <= 1
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
