package observe

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// RouteMetrics says how much of the request metrics is kept per route, which bounds
// the number of series a configuration of many routes makes.
type RouteMetrics string

const (
	// RouteMetricsFull keeps request counts and a duration histogram per route and
	// backend.
	RouteMetricsFull RouteMetrics = "full"
	// RouteMetricsCoarse keeps request counts per route and backend, and duration
	// histograms per backend only (their route label is empty).
	RouteMetricsCoarse RouteMetrics = "coarse"
	// RouteMetricsOff keeps request counts and histograms per backend only: every
	// route label is empty.
	RouteMetricsOff RouteMetrics = "off"
)

// ParseRouteMetrics reads a --route-metrics value; empty means full.
func ParseRouteMetrics(v string) (RouteMetrics, error) {
	switch m := RouteMetrics(v); m {
	case "":
		return RouteMetricsFull, nil
	case RouteMetricsFull, RouteMetricsCoarse, RouteMetricsOff:
		return m, nil
	}
	return "", fmt.Errorf("route metrics %q: want full, coarse or off", v)
}

// durationBuckets are the upper bounds, in seconds, of the request duration
// histograms: from a millisecond, for requests answered on loopback, to ten
// seconds.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// codeClasses are the values of the code label, by status / 100.
var codeClasses = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// metrics holds the vectors of the request metrics and the children resolved from
// them. Label values come from the configuration only (route, backend and listener
// names, the configuration's version) or from fixed sets (code classes, decisions,
// outcomes), never from requests.
type metrics struct {
	mode       RouteMetrics
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	inFlight   *prometheus.GaugeVec
	unmatched  *prometheus.CounterVec
	retries    *prometheus.CounterVec
	rateLimits *prometheus.CounterVec
	reloads    *prometheus.CounterVec
	configInfo *prometheus.GaugeVec
	lastReload prometheus.Gauge
	// pools exports the counters the backend pools keep.
	pools *backendCollector

	// mu guards the maps of resolved entries, their stamps and generation.
	mu        sync.Mutex
	pairs     map[pairKey]*series
	hists     map[histKey]*histogram
	backends  map[string]*Backend
	routes    map[string]*rateLimitSeries
	listeners map[string]*Listener
	// generation counts the compilations begun; entries are stamped with the ones
	// that use them.
	generation uint64
	// version is the version label of configInfo now set.
	version string
}

type (
	pairKey struct{ route, backend string }
	histKey pairKey
)

// stamp records which compilations created and last used an entry (a series, a
// histogram, a backend's, a route's or a listener's children), so that a compilation
// going into service can drop the entries its generation does not use, and one that
// is refused can drop those it created, without a set of marks to allocate.
type stamp struct{ born, used uint64 }

// stale reports whether the end of compilation gen drops the entry.
func (s *stamp) stale(gen uint64, inService bool) bool {
	if inService {
		return s.used != gen
	}
	return s.born == gen
}

func newMetrics(reg prometheus.Registerer, mode RouteMetrics) (*metrics, error) {
	m := &metrics{
		mode: mode,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_requests_total",
			Help: "Requests answered for a route, by route, backend and status class; the route label is empty under --route-metrics=off, the backend label when no backend was chosen.",
		}, []string{"route", "backend", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchyard_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, by route and backend; the route label is empty unless --route-metrics=full.",
			Buckets: durationBuckets,
		}, []string{"route", "backend"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_requests_in_flight",
			Help: "Requests being served, by listener.",
		}, []string{"listener"}),
		unmatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_unmatched_requests_total",
			Help: "Requests no route took, by listener and reason (no-route, misdirected).",
		}, []string{"listener", "reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_backend_retries_total",
			Help: "Retries sent to a backend.",
		}, []string{"backend"}),
		rateLimits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_rate_limit_decisions_total",
			Help: "Rate limit decisions by route and decision (allowed, limited); the route label is empty under --route-metrics=off.",
		}, []string{"route", "decision"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_config_reloads_total",
			Help: "Configuration snapshots the data plane applied (outcome success) or rejected (outcome failure).",
		}, []string{"outcome"}),
		configInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_config_info",
			Help: "1 for the version of the configuration in service.",
		}, []string{"version"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchyard_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration in service was applied, in Unix seconds.",
		}),
		pairs:     map[pairKey]*series{},
		hists:     map[histKey]*histogram{},
		backends:  map[string]*Backend{},
		routes:    map[string]*rateLimitSeries{},
		listeners: map[string]*Listener{},
		pools:     newBackendCollector(),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inFlight, m.unmatched, m.retries,
		m.rateLimits, m.reloads, m.configInfo, m.lastReload, m.pools} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	// Both outcomes are exported from the start, so that a rate over them is defined
	// before the first failure.
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	return m, nil
}

// series is the request metrics of one route and backend pair (or of one backend,
// with an empty route, when route metrics are off). Its children are resolved on
// first use, so that a pair exports series only for the status classes it has
// answered, and a route that sees no traffic exports none: a configuration of many
// routes costs series only for those in use.
//
// A request of a generation taken out of service may resolve a child after the
// sweep deleted the pair's series; it deletes the child again (see dead). When the
// same labels came back in a newer generation meanwhile, that deletes their series,
// which Prometheus reads as a counter reset.
type series struct {
	vec            *prometheus.CounterVec
	route, backend string
	codes          [len(codeClasses)]atomic.Pointer[prometheus.Counter]
	// hist is the duration histogram the pair observes into, its own under full
	// route metrics, its backend's otherwise.
	hist *histogram
	// dead is set once the configuration no longer has the pair and its series
	// were deleted.
	dead atomic.Bool
	stamp
}

// observe counts one request.
func (s *series) observe(status int, elapsed time.Duration) {
	s.count(status)
	s.hist.observe(elapsed.Seconds())
}

// count adds one to the status class of status.
func (s *series) count(status int) {
	class := status / 100
	if class < 1 || class >= len(codeClasses) {
		class = 0
	}
	if c := s.codes[class].Load(); c != nil {
		(*c).Inc()
		return
	}
	c := s.vec.WithLabelValues(s.route, s.backend, codeClasses[class])
	s.codes[class].Store(&c)
	c.Inc()
	if s.dead.Load() {
		s.vec.DeleteLabelValues(s.route, s.backend, codeClasses[class])
	}
}

// histogram is one child of the duration histogram vector, resolved on first use
// like a series' codes.
type histogram struct {
	vec   *prometheus.HistogramVec
	key   histKey
	child atomic.Pointer[prometheus.Observer]
	dead  atomic.Bool
	stamp
}

func (h *histogram) observe(v float64) {
	if c := h.child.Load(); c != nil {
		(*c).Observe(v)
		return
	}
	c := h.vec.WithLabelValues(h.key.route, h.key.backend)
	h.child.Store(&c)
	c.Observe(v)
	if h.dead.Load() {
		h.vec.DeleteLabelValues(h.key.route, h.key.backend)
	}
}

// rateLimitSeries counts one route's rate limit decisions.
type rateLimitSeries struct {
	allowed, limited prometheus.Counter
	stamp
}

// routeLabel is the route label of a route's request counts.
func (m *metrics) routeLabel(route string) string {
	if m.mode == RouteMetricsOff {
		return ""
	}
	return route
}

// pair returns the series of a route and backend, creating it once.
func (m *metrics) pair(route, backend string) *series {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pairLocked(route, backend)
}

// pairLocked is pair with m.mu held.
func (m *metrics) pairLocked(route, backend string) *series {
	route = m.routeLabel(route)
	key := pairKey{route, backend}
	gen := m.generation
	if s := m.pairs[key]; s != nil {
		s.used, s.hist.used = gen, gen
		return s
	}
	// Under coarse and off the histogram is the backend's, shared by its routes,
	// and stays while any of them is configured.
	hk := histKey{route, backend}
	if m.mode != RouteMetricsFull {
		hk.route = ""
	}
	h := m.hists[hk]
	if h == nil {
		h = &histogram{vec: m.duration, key: hk, stamp: stamp{born: gen}}
		m.hists[hk] = h
	}
	h.used = gen
	s := &series{vec: m.requests, route: route, backend: backend, hist: h, stamp: stamp{born: gen, used: gen}}
	m.pairs[key] = s
	return s
}

// rateLimitLocked returns the rate limit decision counters of a route; m.mu is held.
func (m *metrics) rateLimitLocked(route string) *rateLimitSeries {
	route = m.routeLabel(route)
	s := m.routes[route]
	if s == nil {
		s = &rateLimitSeries{allowed: m.rateLimits.WithLabelValues(route, "allowed"),
			limited: m.rateLimits.WithLabelValues(route, "limited"), stamp: stamp{born: m.generation}}
		m.routes[route] = s
	}
	s.used = m.generation
	return s
}

// backend returns the children of a backend's own metrics.
func (m *metrics) backend(name string) *Backend {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.backends[name]
	if b == nil {
		b = &Backend{retries: m.retries.WithLabelValues(name), stamp: stamp{born: m.generation}}
		m.backends[name] = b
	}
	b.used = m.generation
	return b
}

// listener returns the children of a listener's metrics.
func (m *metrics) listener(o *Observer, name string) *Listener {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.listeners[name]
	if l == nil {
		l = &Listener{o: o, name: name, inFlight: m.inFlight.WithLabelValues(name),
			noRoute: m.unmatched.WithLabelValues(name, "no-route"), misdirected: m.unmatched.WithLabelValues(name, "misdirected"),
			stamp: stamp{born: m.generation}}
		m.listeners[name] = l
	}
	l.used = m.generation
	return l
}

func (m *metrics) beginCompile() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.generation++
}

// endCompile ends a compilation. When its generation went into service, the entries
// it does not use are dropped and their series deleted: their routes, backends and
// listeners are gone from the configuration. When it was refused, the entries it
// created are. Deleting by full label values costs a lookup each, where a partial
// match would scan every series for every deletion.
func (m *metrics) endCompile(inService bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	gen := m.generation
	for key, s := range m.pairs {
		if s.stale(gen, inService) {
			s.dead.Store(true)
			delete(m.pairs, key)
			for _, class := range codeClasses {
				m.requests.DeleteLabelValues(key.route, key.backend, class)
			}
		}
	}
	for key, h := range m.hists {
		if h.stale(gen, inService) {
			h.dead.Store(true)
			delete(m.hists, key)
			m.duration.DeleteLabelValues(key.route, key.backend)
		}
	}
	for name, b := range m.backends {
		if b.stale(gen, inService) {
			delete(m.backends, name)
			m.retries.DeleteLabelValues(name)
		}
	}
	for route, r := range m.routes {
		if r.stale(gen, inService) {
			delete(m.routes, route)
			m.rateLimits.DeleteLabelValues(route, "allowed")
			m.rateLimits.DeleteLabelValues(route, "limited")
		}
	}
	for name, l := range m.listeners {
		if l.stale(gen, inService) {
			delete(m.listeners, name)
			m.inFlight.DeleteLabelValues(name)
			m.unmatched.DeleteLabelValues(name, "no-route")
			m.unmatched.DeleteLabelValues(name, "misdirected")
		}
	}
}

// configApplied records a snapshot that went into service.
func (m *metrics) configApplied(version string, at time.Time) {
	m.reloads.WithLabelValues("success").Inc()
	m.mu.Lock()
	if m.version != version {
		m.configInfo.DeleteLabelValues(m.version)
		m.version = version
	}
	m.configInfo.WithLabelValues(version).Set(1)
	m.mu.Unlock()
	m.lastReload.Set(float64(at.UnixNano()) / 1e9)
}

func (m *metrics) configRejected() { m.reloads.WithLabelValues("failure").Inc() }

// ruleMetrics resolves the series of one rule: one per backend it references, one
// for the requests answered before a backend was chosen, and its rate limit
// counters when it has a rate limit.
func (m *metrics) ruleMetrics(route string, rule *config.Rule, r *Rule) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range rule.Backends {
		name := rule.Backends[i].Backend
		if rule.Backends[i].Invalid != nil || name == "" || slices.ContainsFunc(r.backends, func(b ruleBackend) bool { return b.name == name }) {
			continue
		}
		r.backends = append(r.backends, ruleBackend{name: name, series: m.pairLocked(route, name)})
	}
	r.none = m.pairLocked(route, "")
	if hasRateLimit(rule) {
		r.rateLimit = m.rateLimitLocked(route)
	}
}

func hasRateLimit(rule *config.Rule) bool {
	has := func(fs []config.Filter) bool {
		for i := range fs {
			if fs[i].Type == config.FilterRateLimit {
				return true
			}
		}
		return false
	}
	if has(rule.Filters) {
		return true
	}
	for i := range rule.Backends {
		if has(rule.Backends[i].Filters) {
			return true
		}
	}
	return false
}

// ruleIndexNames are the names of the first rule indexes, so that naming the rules
// of a large configuration does not allocate a string for each.
var ruleIndexNames = [...]string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15"}

// ruleName is how access logs name a rule: its name, or its index.
func ruleName(rule *config.Rule, index int) string {
	switch {
	case rule.Name != "":
		return rule.Name
	case index >= 0 && index < len(ruleIndexNames):
		return ruleIndexNames[index]
	}
	return strconv.Itoa(index)
}
