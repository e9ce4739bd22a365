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
// update the fields documented as theirs. Everything runs on the goroutine that
// serves the request, so the fields need no locking.
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
	// Endpoint is the address of the endpoint of the last attempt, set by the proxy.
	Endpoint string
	// Attempts counts the tries at forwarding the request, set by the proxy.
	Attempts int
	// UpstreamTime is how long the attempt whose answer the client got took, from
	// its start to the backend's response headers or its failure; set by the proxy.
	UpstreamTime time.Duration
	// Flags say how the gateway handled the request; the proxy and filters add
	// theirs.
	Flags Flags
	// Caller is the Pod that sent the request, on a node replica (east-west); zero
	// elsewhere, and for requests the node replica refused. Access logs, edge
	// statistics and rate limit keys name the calling workload with it.
	Caller Caller
}

// Caller identifies the Pod that sent an east-west request, as the node replica
// knows it from the Pods of its node.
type Caller struct {
	// Namespace and Name identify the Pod.
	Namespace string
	Name      string
	// Workload is the Pod's owning workload: a Deployment's name (from its
	// ReplicaSet), a StatefulSet's, DaemonSet's or Job's, else the Pod's
	// app.kubernetes.io/name or app label, else the Pod's own name.
	Workload string
	// ServiceAccount is the Pod's ServiceAccount name.
	ServiceAccount string
}

// Known reports whether c names a Pod.
func (c *Caller) Known() bool { return c.Name != "" }

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

// Carrier is a context that carries an Info, for a data plane that keeps the Info
// in a larger value it allocates for each request anyway: attaching it to a request
// then costs the copy of the request alone, where With costs a context.WithValue as
// well. Its zero value is ready for Attach.
type Carrier struct {
	// Context is the context of the request the carrier was attached to.
	context.Context
	// Info is the request's Info, which From returns.
	Info Info
}

// Attach returns a request whose context carries c.Info: r itself when r's context
// holds a value for its server's handler (see valueHolder), else a copy of r whose
// context is c, r's context carrying c.Info. A Carrier is attached to one request,
// once. Since the result may be r itself, what later handlers change in it (its
// Host, Body or URL) they change in the request the server made: the servers that
// hold a value (package h1) keep what they need of it (the body they frame)
// beforehand.
func (c *Carrier) Attach(r *http.Request) *http.Request {
	c.Context = r.Context()
	if h, ok := c.Context.(valueHolder); ok && h.SetValue(key{}, &c.Info) {
		return r
	}
	return r.WithContext(c)
}

// valueHolder is a request context with room for a value added by the handler, as
// the gateway's own HTTP/1 server gives: adding Info to it spares the copy of the
// request that a context of its own would need. SetValue reports false when the
// room is taken.
type valueHolder interface {
	SetValue(key, value any) bool
}

// ValueParent returns the request's context, whose end is the carrier's; see
// package ctxhook's Wrapper.
func (c *Carrier) ValueParent() context.Context { return c.Context }

// AfterFunc lets context.AfterFunc, and the contexts derived from c, register with
// the request's context rather than start a goroutine each to wait on c.Done.
func (c *Carrier) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(c.Context, f)
}

// Value returns c.Info for From and defers every other key to the request's context.
func (c *Carrier) Value(k any) any {
	if _, ok := k.(key); ok {
		return &c.Info
	}
	return c.Context.Value(k)
}

// AddFlags adds flags to the Info stored in ctx, if there is one.
func AddFlags(ctx context.Context, f Flags) {
	if info := From(ctx); info != nil {
		info.Flags |= f
	}
}
