// Package observe is the gateway's observability: Prometheus metrics of the requests
// it serves, a structured access log, and OpenTelemetry tracing with W3C trace
// context propagation.
//
// The data plane resolves what a request needs once per configuration generation: a
// Listener per socket, a Rule per route rule, a Backend per backend reference. A
// Rule's request metrics are resolved on the first request that counts in them, so
// that the many routes of a large configuration that see no traffic cost none (see
// pairs.go). Requests then only touch resolved metric children (an atomic load and
// atomic adds), never a label lookup, so metrics cost no allocation per request; the
// access log and tracing, when on, do allocate.
//
// Label values come only from the configuration (route, backend and listener names,
// the configuration version) or from small fixed sets, never from request data.
// RouteMetrics bounds the series a configuration of many routes makes.
//
// Every method is safe on a nil *Observer, *Listener, *Rule and *Backend, which
// observe nothing, so the data plane calls them without checking.
package observe

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

// Options configure an Observer. Each part is off when left zero.
type Options struct {
	// Registerer receives the metrics; nil keeps none.
	Registerer prometheus.Registerer
	// RouteMetrics says how much is kept per route; empty means RouteMetricsFull.
	RouteMetrics RouteMetrics
	// AccessLog receives one line per request; nil logs nothing.
	AccessLog *AccessLog
	// Tracing exports spans; nil creates none, and trace context headers pass
	// through unchanged.
	Tracing *Tracing
}

// Observer observes the requests of one data plane.
type Observer struct {
	metrics    *metrics
	access     *AccessLog
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

// New returns an Observer. It fails when the metrics cannot be registered (a second
// Observer on the same registry).
func New(opts Options) (*Observer, error) {
	o := &Observer{access: opts.AccessLog}
	if opts.Registerer != nil {
		mode, err := ParseRouteMetrics(string(opts.RouteMetrics))
		if err != nil {
			return nil, err
		}
		if o.metrics, err = newMetrics(opts.Registerer, mode); err != nil {
			return nil, err
		}
	}
	if opts.Tracing != nil {
		o.tracer = opts.Tracing.provider.Tracer(tracerName)
		o.propagator = propagation.TraceContext{}
	}
	return o, nil
}

// WatchBackends exports the breaker trips and outlier ejections that m's pools
// count, read when the metrics are scraped. It is called once, by the data plane.
func (o *Observer) WatchBackends(m *backend.Manager) {
	if o == nil || o.metrics == nil {
		return
	}
	o.metrics.pools.manager.Store(m)
}

// BeginCompile starts the compilation of a configuration generation: the series
// resolved until EndCompile are those the generation uses.
func (o *Observer) BeginCompile() {
	if o != nil && o.metrics != nil {
		o.metrics.beginCompile()
	}
}

// EndCompile ends a compilation. inService says whether its generation went into
// service, in which case the series of routes, backends and listeners it no longer
// has are deleted.
func (o *Observer) EndCompile(inService bool) {
	if o != nil && o.metrics != nil {
		o.metrics.endCompile(inService)
	}
}

// ConfigApplied records a configuration snapshot that went into service.
func (o *Observer) ConfigApplied(version string) {
	if o != nil && o.metrics != nil {
		o.metrics.configApplied(version, time.Now())
	}
}

// ConfigRejected records a configuration snapshot the data plane refused.
func (o *Observer) ConfigRejected() {
	if o != nil && o.metrics != nil {
		o.metrics.configRejected()
	}
}

// Listener is what a socket's requests are observed with.
type Listener struct {
	o    *Observer
	name string
	// logField is the listener's field of access log lines, encoded once.
	logField string
	// inFlight, noRoute and misdirected are nil without metrics.
	inFlight    prometheus.Gauge
	noRoute     prometheus.Counter
	misdirected prometheus.Counter
	stamp
}

// Listener returns the observer of a listener's requests, or nil when o is nil.
func (o *Observer) Listener(name string) *Listener {
	if o == nil {
		return nil
	}
	if o.metrics != nil {
		return o.metrics.listener(o, name)
	}
	return &Listener{o: o, name: name, logField: listenerLogField(name)}
}

// Rule is what one route rule's requests are observed with.
type Rule struct {
	// route and name name the route and the rule in access logs and spans;
	// logFields are their fields of access log lines, encoded once.
	route, name string
	logFields   string
	// m is the metrics the rule counts in, nil without; gen is the generation that
	// compiled the rule.
	m   *metrics
	gen uint64
	// backends are the slots of the series of the backends the rule references;
	// none is the slot of the series of requests answered before a backend was
	// chosen (by a filter, or for a reference that could not be resolved). A slot
	// is filled on the first request that counts in it, or by the end of the
	// compilation when its pair already exists (see pairs.go).
	backends []ruleBackend
	none     atomic.Pointer[series]
	// rateLimit counts the rule's rate limit decisions; nil when it has none.
	rateLimit *rateLimitSeries
}

type ruleBackend struct {
	name   string
	series atomic.Pointer[series]
}

// Rule returns the observer of a rule's requests, or nil when o is nil. index is
// the rule's index in the route.
func (o *Observer) Rule(route string, index int, rule *config.Rule) *Rule {
	if o == nil {
		return nil
	}
	r := &Rule{route: route, name: ruleName(rule, index)}
	r.logFields = ruleLogFields(r.route, r.name)
	if o.metrics != nil {
		o.metrics.ruleMetrics(route, rule, r)
	}
	return r
}

// seriesOf returns the series of the backend a request was sent to, resolving it on
// the rule's first request there, or nil when the request is not counted. A rule
// names a handful of backends, so a scan costs less than a map lookup.
func (r *Rule) seriesOf(backend string) *series {
	if r.m == nil {
		return nil
	}
	slot, name := &r.none, ""
	for i := range r.backends {
		if r.backends[i].name == backend {
			slot, name = &r.backends[i].series, backend
			break
		}
	}
	if s := slot.Load(); s != nil {
		return s
	}
	return r.m.resolve(r, slot, name)
}

// hasBackend reports whether the rule has a slot for backend.
func (r *Rule) hasBackend(backend string) bool {
	for i := range r.backends {
		if r.backends[i].name == backend {
			return true
		}
	}
	return false
}

// Backend is what the proxy observes a backend's traffic with.
type Backend struct {
	retries prometheus.Counter
	stamp
}

// Backend returns the observer of a backend, or nil when o keeps no metrics.
func (o *Observer) Backend(name string) *Backend {
	if o == nil || o.metrics == nil {
		return nil
	}
	return o.metrics.backend(name)
}

// Retried counts a retry sent to the backend.
func (b *Backend) Retried() {
	if b != nil {
		b.retries.Inc()
	}
}

// Tracing reports whether requests are traced, so that the proxy makes attempt
// spans.
func (o *Observer) Tracing() bool { return o != nil && o.tracer != nil }

// Inject writes the trace context of ctx into an outbound request's headers when
// tracing is on. Otherwise the headers keep the trace context the client sent.
func (o *Observer) Inject(ctx context.Context, h http.Header) {
	if o == nil || o.tracer == nil {
		return
	}
	injectContext(o.propagator, ctx, h)
}
