// Package dataplane ties the gateway's parts together: it compiles each configuration
// snapshot once into per-listener route tables and certificate stores, swaps the
// compiled generation in atomically, and keeps the bound sockets in step with the
// snapshot's listeners. Backend state (endpoint counters, later health and breakers)
// lives in the backend manager and outlives generations, as do the per-backend request
// outcomes (BackendOutcomes) that the proxy keeps.
//
// A snapshot whose listeners are unchanged from the serving one, as its RoutesVersion
// says (endpoint churn, the most frequent update in a cluster), is not compiled again:
// the backend manager takes its backends and a new generation reuses the compiled
// route tables, handlers and sockets. See routeSet.reusable.
package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/observe"
	"github.com/switchyard-dev/switchyard/gateway/outcome"
	"github.com/switchyard-dev/switchyard/gateway/proxy"
	"github.com/switchyard-dev/switchyard/gateway/router"
	"github.com/switchyard-dev/switchyard/gateway/server"
	"github.com/switchyard-dev/switchyard/plugins"
)

// Options configure an Engine. Zero values take the documented defaults of each part.
type Options struct {
	// Limits are the client-facing server limits.
	Limits server.Limits
	// Backend tunes upstream connection pools.
	Backend backend.Options
	// Proxy tunes forwarding (trusted proxies for X-Forwarded-*).
	Proxy proxy.Options
	// Logger receives the engine's logs; nil means slog.Default().
	Logger *slog.Logger
	// Redis is the shared Redis of global rate limits; nil when none is configured.
	Redis redis.UniversalClient
	// Replicas returns how many replicas share global rate limits; nil means one.
	Replicas func() int
	// Observer receives the requests' metrics, access log lines and spans, and the
	// outcomes of Apply; nil observes nothing.
	Observer *observe.Observer
	// Node, when set, makes the engine a node replica's, serving Snapshot.Mesh
	// east-west on a socket of its own; see NodeOptions.
	Node *NodeOptions
	// Forwarding chooses how the requests of rules sent to one backend, with no
	// filters but rate limits, are served over HTTP/1.1: "raw" forwards them from
	// their wire form where it can (see proxy.RawRoute), "handler" by the rule's
	// handler always. Empty means the
	// environment's choice (ForwardingModeEnv), else raw. An invalid value is
	// taken as raw; commands check theirs with ParseForwardingMode.
	Forwarding ForwardingMode
}

// Engine is one gateway replica's data plane.
type Engine struct {
	logger   *slog.Logger
	backends *backend.Manager
	proxy    *proxy.Proxy
	servers  *server.Manager
	// plugins is the context every compilation provisions filters with; its Store
	// keeps filter state (rate limit buckets) across generations.
	plugins plugins.Context
	// handlersOnly is set when every request goes to its rule's handler
	// (ForwardHandler).
	handlersOnly bool
	// observer observes requests and applies; it may be nil.
	observer *observe.Observer

	// applyMu serialises Apply; requests never take it.
	applyMu sync.Mutex
	current atomic.Pointer[generation]
	// compilations counts the route sets compiled, so tests can tell a reused route
	// table from a recompiled one.
	compilations atomic.Int64
	// bindErrors holds the listeners that failed to bind in the last Apply.
	bindErrors atomic.Pointer[map[string]error]
	draining   atomic.Bool
	// node is the node replica's state; nil on other replicas.
	node *node
}

// generation is one applied snapshot. It is immutable once stored. Generations whose
// snapshots have the same listeners share one compiled route set, and on a node
// replica those with the same mesh Services share one compiled mesh set.
type generation struct {
	snapshot  *config.Snapshot
	appliedAt time.Time
	routes    *routeSet
	// mesh is the compiled mesh; nil unless the engine is a node replica's.
	mesh *meshSet
}

// compiledListener is what one socket needs per request.
type compiledListener struct {
	spec  *config.Listener
	table *router.Table
	certs *server.CertStore
	// clientAuth holds the client certificate settings of the virtual hosts that
	// have them; nil when none has.
	clientAuth map[*config.VirtualHost]*server.ClientValidation
}

// New returns an Engine with no configuration; it serves nothing until Apply.
func New(opts Options) *Engine {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if opts.Proxy.Logger == nil {
		opts.Proxy.Logger = logger
	}
	if opts.Proxy.Observer == nil {
		opts.Proxy.Observer = opts.Observer
	}
	backends := backend.NewManager(opts.Backend)
	opts.Observer.WatchBackends(backends)
	e := &Engine{
		logger:   logger,
		backends: backends,
		proxy:    proxy.New(backends, opts.Proxy),
		servers:  server.NewManager(opts.Limits, logger),
		plugins: plugins.Context{Upstream: backends, Logger: logger, Store: plugins.NewStore(),
			TrustedProxies: opts.Proxy.TrustedProxies, Redis: opts.Redis, Replicas: opts.Replicas},
		observer: opts.Observer,
	}
	if mode, err := ParseForwardingMode(string(opts.Forwarding)); err == nil && mode == ForwardHandler {
		e.handlersOnly = true
	}
	if opts.Node != nil {
		e.node = newNode(e, opts.Node)
	}
	return e
}

// Apply validates and compiles snap, swaps it in, and binds or releases sockets to
// match its listeners. A snapshot that fails validation or compilation is rejected as
// a whole and the serving generation stays in place. Sockets that fail to bind are
// returned in BindErrors; the rest of the snapshot still takes effect.
//
// When snap's listeners are those of the serving snapshot (see reusable), and on a
// node replica its mesh Services are those of the serving mesh too, nothing is
// compiled: the backends are updated and the new generation shares the serving one's
// route tables, handlers and sockets.
func (e *Engine) Apply(snap *config.Snapshot) error {
	if snap == nil {
		e.observer.ConfigRejected()
		return errors.New("no snapshot")
	}
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	err := e.apply(snap)
	if err != nil {
		e.observer.ConfigRejected()
	} else {
		e.observer.ConfigApplied(snap.Version)
	}
	return err
}

// apply is Apply with applyMu held.
func (e *Engine) apply(snap *config.Snapshot) error {
	old := e.current.Load()
	if old != nil && e.reusable(old, snap) {
		return e.applyBackends(old, snap)
	}
	if err := errors.Join(snap.Validate(), e.validateNode(snap)); err != nil {
		return fmt.Errorf("invalid snapshot %s: %w", snap.Version, err)
	}
	e.observer.BeginCompile()
	routes, meshes, err := e.compile(snap)
	if err != nil {
		e.observer.EndCompile(false)
		return fmt.Errorf("snapshot %s: %w", snap.Version, err)
	}
	// Handlers resolve pools by name per request, so the backends change only once
	// the snapshot has compiled: a rejected snapshot leaves the serving generation's
	// pools, with their breaker, ejection and health state, untouched. Between the
	// two stores a request may meet the old table with the new pools, as it may
	// during any swap.
	e.backends.Update(e.backendsOf(snap))
	e.current.Store(&generation{snapshot: snap, appliedAt: time.Now(), routes: routes, mesh: meshes})
	referenced := routes.backendNames
	if meshes != nil {
		referenced = append(slices.Clip(referenced), meshes.backendNames...)
	}
	e.proxy.RetainOutcomes(referenced)
	// Filter state the new generation does not use is released now that the old
	// generation is out of service.
	e.plugins.Store.Commit()
	e.observer.EndCompile(true)
	e.syncSockets(routes)
	return nil
}

// reusable reports whether snap needs no compilation over the serving generation
// old: its listeners are old's, or both have none, and on a node replica its mesh
// Services are old's too. Both parts are compiled together when either changed, so
// that one provisioning round of the plugin store and one retention of outcomes and
// retry budgets covers everything in service; node replicas are sent no listeners
// and edge replicas no mesh, so the part compiled along costs nothing.
func (e *Engine) reusable(old *generation, snap *config.Snapshot) bool {
	listeners := old.routes.reusable(snap) || (len(snap.Listeners) == 0 && len(old.routes.listeners) == 0)
	if !listeners {
		return false
	}
	return e.node == nil || old.mesh.reusable(snap.Mesh)
}

// applyBackends applies a snapshot whose listeners (and mesh Services) are those of
// the serving generation old. They were validated and compiled when they were first
// applied, so only the backends are validated, along with the references the compiled
// routes make to them. The compiled tables and the handlers in them resolve pools by
// name on every request, so updating the pools is all it takes.
//
// The new generation reports old's listeners and mesh Services, which are the ones
// being served, with snap's version and backends.
func (e *Engine) applyBackends(old *generation, snap *config.Snapshot) error {
	backends := e.backendsOf(snap)
	backendsOnly := config.Snapshot{SchemaVersion: snap.SchemaVersion, Backends: backends}
	if err := errors.Join(backendsOnly.Validate(), old.routes.checkReferences(backends), old.mesh.checkReferences(backends)); err != nil {
		return fmt.Errorf("invalid snapshot %s: %w", snap.Version, err)
	}
	e.backends.Update(backends)
	served := *snap
	served.Listeners = old.snapshot.Listeners
	served.Mesh = servedMesh(old.mesh, snap)
	e.current.Store(&generation{snapshot: &served, appliedAt: time.Now(), routes: old.routes, mesh: old.mesh})
	e.syncSockets(old.routes)
	return nil
}

// syncSockets keeps the bound sockets in step with a route set. Kept sockets only get
// their (possibly unchanged) handler again; sockets that failed to bind are retried.
func (e *Engine) syncSockets(routes *routeSet) {
	specs := routes.specs
	if e.node != nil {
		specs = append(slices.Clip(specs), e.node.spec)
	}
	bindErrs := e.servers.Sync(specs)
	e.bindErrors.Store(&bindErrs)
	for name, err := range bindErrs {
		e.logger.Error("listener could not bind", "listener", name, "error", err)
	}
}

// compile builds the route tables, handlers and certificate stores of snap's
// listeners and the socket specs that serve them, and on a node replica the mesh set
// of snap's mesh, all in one provisioning round of the plugin store.
func (e *Engine) compile(snap *config.Snapshot) (*routeSet, *meshSet, error) {
	e.compilations.Add(1)
	pctx := e.plugins
	pctx.Store.Begin()
	routes, err := e.compileListeners(pctx, snap)
	if err != nil || e.node == nil {
		return routes, nil, err
	}
	meshes, err := e.compileMesh(pctx, snap.Mesh)
	if err != nil {
		return nil, nil, err
	}
	return routes, meshes, nil
}

// ruleFactory returns the handler factory of route tables: a rule's proxy handler
// inside its filters, with the observer of its requests.
func (e *Engine) ruleFactory(pctx plugins.Context) router.HandlerFactory {
	return func(vh *config.VirtualHost, route *config.Route, ruleIndex int) (http.Handler, error) {
		rule := &route.Rules[ruleIndex]
		final, err := e.proxy.RuleHandler(pctx, rule)
		if err != nil {
			return nil, err
		}
		chain, err := plugins.Chain(pctx, rule.Filters, final)
		if err != nil {
			return nil, err
		}
		observer := e.observer.Rule(route.Name, ruleIndex, rule)
		raw := e.rawRoute(rule, chain, observer)
		if e.observer == nil && raw == nil {
			return chain, nil
		}
		return &observedRule{next: chain, observer: observer, raw: raw}, nil
	}
}

// compileListeners builds the route set of snap's listeners.
func (e *Engine) compileListeners(pctx plugins.Context, snap *config.Snapshot) (*routeSet, error) {
	routes := &routeSet{
		routesVersion: snap.RoutesVersion,
		listeners:     make(map[string]*compiledListener, len(snap.Listeners)),
	}
	factory := e.ruleFactory(pctx)
	for i := range snap.Listeners {
		l := &snap.Listeners[i]
		table, err := router.Compile(l, factory)
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", l.Name, err)
		}
		cl := &compiledListener{spec: l, table: table}
		if l.Protocol == config.ProtocolHTTPS {
			if cl.certs, err = server.NewCertStore(certPairs(l)); err != nil {
				return nil, fmt.Errorf("listener %s: %w", l.Name, err)
			}
			if cl.clientAuth, err = compileClientValidation(l); err != nil {
				return nil, fmt.Errorf("listener %s: %w", l.Name, err)
			}
		}
		routes.listeners[l.Name] = cl
	}
	routes.specs = e.specs(routes)
	routes.backendNames = referencedBackends(snap.Listeners)
	return routes, nil
}

func certPairs(l *config.Listener) []server.CertPair {
	var pairs []server.CertPair
	for _, vh := range l.VirtualHosts {
		if vh.TLS == nil {
			continue
		}
		for _, c := range vh.TLS.Certificates {
			pairs = append(pairs, server.CertPair{Name: c.Name, CertPEM: c.CertPEM, KeyPEM: c.KeyPEM})
		}
	}
	return pairs
}

// specs lists the sockets a route set needs. Each handler and certificate callback
// reads the engine's current generation per request, so kept sockets pick up new
// routes and certificates without being rebound.
func (e *Engine) specs(routes *routeSet) []server.Spec {
	specs := make([]server.Spec, 0, len(routes.listeners))
	for name, cl := range routes.listeners {
		spec := server.Spec{
			Name:    name,
			Address: cl.spec.Address,
			Port:    cl.spec.Port,
			TLS:     cl.spec.Protocol == config.ProtocolHTTPS,
			Handler: &listenerHandler{engine: e, name: name, port: cl.spec.Port, observer: e.observer.Listener(name)},
		}
		if spec.TLS {
			spec.GetCertificate = e.certificateFor(name)
		}
		if cl.clientAuth != nil {
			spec.ClientValidation = e.clientValidationFor(name)
		}
		specs = append(specs, spec)
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	return specs
}

// BackendOutcomes returns the cumulative request outcomes of every backend this
// replica has sent requests to since it started, by backend name. Counts outlive
// configuration versions; see package proxy for what counts as a request, a failure
// and its latency.
func (e *Engine) BackendOutcomes() map[string]outcome.Totals { return e.proxy.BackendOutcomes() }

// BackendOutcome returns the cumulative request outcomes of one backend; zero when it
// has been sent no request.
func (e *Engine) BackendOutcome(name string) outcome.Totals { return e.proxy.BackendOutcome(name) }

// Upstream exposes the backend manager, for plugins and tests.
func (e *Engine) Upstream() plugins.Upstream { return e.backends }

// Snapshot returns the serving snapshot and when it was applied, or nil.
func (e *Engine) Snapshot() (*config.Snapshot, time.Time) {
	gen := e.current.Load()
	if gen == nil {
		return nil, time.Time{}
	}
	return gen.snapshot, gen.appliedAt
}

// BindErrors returns the listeners that failed to bind in the last Apply.
func (e *Engine) BindErrors() map[string]error {
	if p := e.bindErrors.Load(); p != nil {
		return *p
	}
	return nil
}

// Ready reports whether a configuration is live, every listener is bound, and the
// engine is not draining.
func (e *Engine) Ready() bool {
	// bindErrors is stored only after the sockets were synced, so a generation that is
	// compiled but not yet bound does not count as ready.
	bindErrs := e.bindErrors.Load()
	return e.current.Load() != nil && bindErrs != nil && len(*bindErrs) == 0 && !e.draining.Load()
}

// Shutdown marks the engine unready, stops accepting, and drains in-flight requests
// until ctx is done.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.draining.Store(true)
	err := e.servers.Shutdown(ctx)
	e.backends.Close()
	return err
}

// SetDraining marks the engine unready (or ready again) without closing sockets, so
// load balancers stop sending new connections before shutdown begins.
func (e *Engine) SetDraining(v bool) { e.draining.Store(v) }

// RouteCompilations counts the route tables compiled since the engine started. It
// does not move when a snapshot changes only backends and endpoints, which operators
// (and tests) can watch in the gateway's metrics.
func (e *Engine) RouteCompilations() int64 { return e.compilations.Load() }

// Addr returns the bound address of a listener, for tests and logs.
func (e *Engine) Addr(name string) string { return e.servers.Addr(name) }
