// Package plugins holds the registry of request filters. Each filter kind lives in a
// package of its own under plugins/, registers itself from an init function, and is
// provisioned once per configuration version into plain net/http middleware.
//
// Import plugins/all to register every built-in filter.
package plugins

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sort"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// Middleware wraps the handler that runs after a filter. A filter that answers the
// request itself (a redirect, a CORS preflight) does not call next.
type Middleware func(next http.Handler) http.Handler

// Plugin turns one kind of config.Filter into middleware.
type Plugin interface {
	// Validate checks the filter's settings without side effects. It runs before any
	// Provision of a configuration version, so a bad filter rejects the version early.
	Validate(spec *config.Filter) error
	// Provision builds the middleware for one filter instance. It runs once per
	// configuration version; the returned middleware must be safe for concurrent use.
	Provision(ctx Context, spec *config.Filter) (Middleware, error)
}

// Upstream sends requests to backends by name, for filters that make requests of their
// own (RequestMirror).
type Upstream interface {
	// RoundTrip sends req to one endpoint of the named backend (an entry of
	// config.Snapshot.Backends), with the gateway's transport and load balancing.
	RoundTrip(ctx context.Context, backend string, req *http.Request) (*http.Response, error)
}

// Context is what a plugin may use while provisioning.
type Context struct {
	// Upstream reaches backends by name.
	Upstream Upstream
	// Logger is the gateway's logger.
	Logger *slog.Logger
	// Store keeps state that outlives configuration versions; nil in tests that do
	// not need it, in which case plugins keep their state per version.
	Store *Store
	// TrustedProxies are the peers whose X-Forwarded-For is believed when a plugin
	// needs the client's address.
	TrustedProxies []netip.Prefix
	// Redis is the client of the shared Redis for global rate limits, or nil when
	// none is configured.
	Redis redis.UniversalClient
	// Replicas returns how many gateway replicas share global limits, for their
	// fallback while Redis is unreachable; nil means one.
	Replicas func() int
}

// Shared returns the object stored under key in the context's Store, or a new one
// when the context has no Store.
func (c Context) Shared(key string, create func() any) any {
	if c.Store == nil {
		return create()
	}
	return c.Store.Get(key, create)
}

var (
	mu       sync.RWMutex
	registry = map[config.FilterType]Plugin{}
)

// Register makes a plugin available for a filter type. It panics on a duplicate, which
// is a programming error found at start-up.
func Register(t config.FilterType, p Plugin) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[t]; dup {
		panic(fmt.Sprintf("plugins: filter type %q registered twice", t))
	}
	registry[t] = p
}

// Lookup returns the plugin for a filter type.
func Lookup(t config.FilterType) (Plugin, bool) {
	mu.RLock()
	defer mu.RUnlock()
	p, ok := registry[t]
	return p, ok
}

// Types lists the registered filter types, sorted.
func Types() []config.FilterType {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]config.FilterType, 0, len(registry))
	for t := range registry {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Validate checks every filter in the list with its plugin.
func Validate(filters []config.Filter) error {
	for i := range filters {
		p, ok := Lookup(filters[i].Type)
		if !ok {
			return fmt.Errorf("filter %d: type %q is not supported", i, filters[i].Type)
		}
		if err := p.Validate(&filters[i]); err != nil {
			return fmt.Errorf("filter %d (%s): %w", i, filters[i].Type, err)
		}
	}
	return nil
}

// Chain provisions every filter in the list and wraps them around final, so that the
// first filter in the list runs first.
func Chain(ctx Context, filters []config.Filter, final http.Handler) (http.Handler, error) {
	if err := Validate(filters); err != nil {
		return nil, err
	}
	mws := make([]Middleware, len(filters))
	for i := range filters {
		p, _ := Lookup(filters[i].Type)
		mw, err := p.Provision(ctx, &filters[i])
		if err != nil {
			return nil, fmt.Errorf("filter %d (%s): %w", i, filters[i].Type, err)
		}
		mws[i] = mw
	}
	h := final
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h, nil
}
