// Package reqctx carries what the router decided about a request to the filters and
// the proxy that handle it, in one value per request.
package reqctx

import (
	"context"
	"net/http"
	"time"
)

// Info is the routing decision and bookkeeping for one request. The data plane stores
// one in the request's context right after route lookup; filters may read it and
// update the fields documented as theirs.
type Info struct {
	// Listener is the config.Listener name that accepted the request.
	Listener string
	// VirtualHost is the config.VirtualHost name the host selected.
	VirtualHost string
	// Route is the config.Route name ("<namespace>/<name>") that matched.
	Route string
	// RuleIndex is the index of the matching rule within the route.
	RuleIndex int
	// MatchedPrefix is the PathPrefix value of the match that selected the rule, with
	// any trailing slash removed; empty when the match was not a PathPrefix (an empty
	// match list counts as PathPrefix "/", giving "").
	MatchedPrefix string
	// Host is the Host header the client sent, before any URLRewrite changed it; it
	// becomes X-Forwarded-Host.
	Host string
	// ListenerPort is the port the request arrived on, for redirects.
	ListenerPort int
	// TLS reports whether the client connection is TLS.
	TLS bool
	// Start is when the gateway received the request.
	Start time.Time
	// Backend is the config.Backend name chosen for the request, set by the proxy.
	Backend string
}

type key struct{}

// With returns a copy of r whose context carries info.
func With(r *http.Request, info *Info) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), key{}, info))
}

// From returns the Info stored in ctx, or nil.
func From(ctx context.Context) *Info {
	info, _ := ctx.Value(key{}).(*Info)
	return info
}
