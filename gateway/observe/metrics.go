package observe

import (
	"fmt"
	"strconv"
	"sync"
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

	// mu guards the maps of resolved entries, their stamps, the generations and
	// compiled, and the first use of a pair (see resolve).
	mu sync.Mutex
	// pairs and hists hold the pairs and histograms that requests have resolved
	// (see pairs.go); backends, routes and listeners hold the entries that
	// compilations resolve.
	pairs     map[pairKey]*series
	hists     map[histKey]*histogram
	backends  map[string]*Backend
	routes    map[string]*rateLimitSeries
	listeners map[string]*Listener
	// generation counts the compilations begun; entries are stamped with the ones
	// that use them. live is the generation in service (0 before the first), and
	// compiling says that generation is being compiled.
	generation uint64
	live       uint64
	compiling  bool
	// compiled holds the Rules of the compilation under way, whose pairs its end
	// stamps (see stampCompiled); it is released then.
	compiled []*Rule
	// version is the version label of configInfo now set.
	version string
}

// stamp records which compilations created and last used an entry (a series, a
// histogram, a backend's, a route's or a listener's children), so that a compilation
// going into service can drop the entries its generation does not use, and one that
// is refused can drop those it created, without a set of marks to allocate.
type stamp struct{ born, used uint64 }

// use records that generation gen uses the entry. A request of the generation in
// service may use an entry while a newer generation is being compiled, and must not
// take back the newer one's mark, so the mark only moves forward.
func (s *stamp) use(gen uint64) { s.used = max(s.used, gen) }

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
		l = &Listener{o: o, name: name, logField: listenerLogField(name), inFlight: m.inFlight.WithLabelValues(name),
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
	m.compiling, m.compiled = true, nil
}

// endCompile ends a compilation. When its generation went into service, it first
// marks the pairs it uses among those that exist (stampCompiled); then the entries
// it does not use are dropped and their series deleted: their routes, backends and
// listeners are gone from the configuration. When it was refused, the entries it
// created are; pairs and histograms are created by requests only, and a refused
// generation serves none, so that drops none of them. Deleting by full label values
// costs a lookup each, where a partial match would scan every series for every
// deletion.
func (m *metrics) endCompile(inService bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	gen := m.generation
	if inService {
		m.stampCompiled(gen)
		m.live = gen
	}
	m.compiling, m.compiled = false, nil
	for key, s := range m.pairs {
		if s.stale(gen, inService) {
			delete(m.pairs, key)
			for _, class := range codeClasses {
				m.requests.DeleteLabelValues(key.route, key.backend, class)
			}
		}
	}
	for key, h := range m.hists {
		if h.stale(gen, inService) {
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

// ruleMetrics prepares the metrics of one rule: a slot for the series of each
// backend it references, filled on the first request sent there or by the end of
// the compilation when the pair already exists (see pairs.go), and its rate limit
// counters when it has a rate limit. Rate limit counters are resolved now: only the
// rules with a rate limit have them, and they are few.
func (m *metrics) ruleMetrics(route string, rule *config.Rule, r *Rule) {
	// Each name's slot is made in place, since a slot is not to be copied once in
	// use; a rule names a handful of backends, so a scan finds repeated names.
	r.backends = make([]ruleBackend, 0, len(rule.Backends))
	for i := range rule.Backends {
		name := rule.Backends[i].Backend
		if rule.Backends[i].Invalid != nil || name == "" || r.hasBackend(name) {
			continue
		}
		r.backends = r.backends[:len(r.backends)+1]
		r.backends[len(r.backends)-1].name = name
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// A rule made outside a compilation (as tests make them) is one of the
	// generation in service: the latest generation may have been refused.
	r.m, r.gen = m, m.live
	if m.compiling {
		r.gen = m.generation
		m.compiled = append(m.compiled, r)
	}
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
