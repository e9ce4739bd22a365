package observe

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The request metrics of a rule are kept per pair of route and backend: a series of
// request counts and a duration histogram. Most routes of a large configuration see
// no traffic, so a pair is created on the first request that counts in it, not when
// the configuration is compiled: a compilation only gives each rule an empty slot
// per backend, and a rule that never sees a request costs no pair.
//
// Generations and first use interact by these rules, all applied with metrics.mu
// held:
//
//   - The end of a compilation that goes into service stamps, for every Rule it
//     made, the pairs and histograms that already exist (stampCompiled), and hands
//     the Rules those pairs; the sweep that follows drops the rest. A pair counted
//     by the generation taken out of service and kept by the new one thus keeps its
//     series, and the new generation's requests count on in them.
//   - The stamping is done at the end of the compilation rather than as each Rule is
//     made, so that it also sees the pairs that first requests of the generation in
//     service created while the new one was being compiled (which a stamp made
//     earlier would miss, letting the sweep delete a series still in use, which
//     Prometheus would read as a counter reset).
//   - A first request of a generation in service, or of the one being compiled
//     (which serves from just before its compilation ends), creates the pair when
//     it does not exist, stamped with its Rule's generation.
//   - A first request of a generation taken out of service (or refused) never
//     creates a pair: the configuration in service may not have the route, and an
//     entry it made would export a series no sweep removes until the next reload.
//     It counts in the pair when one exists, which the generation in service uses,
//     and is not counted otherwise. That loses the count of a request in flight
//     across a reload whose pair no request had resolved before, when the new
//     generation has the pair too but has not served it yet, along with its
//     duration, though under coarse and off the backend's histogram may be in
//     service; a lost count is preferred to a stale series. Such a request leaves
//     its Rule's slot empty, so each of them takes metrics.mu, which bounds the
//     cost by the requests in flight when a generation is taken out of service.
//   - A series' or histogram's children are resolved on their first use, and only
//     while the pair or histogram has its entry in metrics.pairs or metrics.hists
//     (another one of the same labels, made since, will do). The sweep deletes the
//     children of the entries it drops, so a vector has children only for the
//     entries in the maps: nothing is left behind for a route the configuration
//     no longer has, and no request ever deletes a series, which could be one a
//     newer generation counts in. A request of an old generation whose pair was
//     dropped counts in the children it had resolved before, which are no longer
//     exported: those counts are lost, as they were before pairs were lazy.

// pairKey names a pair by its label values: its route label is empty when route
// metrics are off. histKey names a histogram, whose route label is empty unless
// route metrics are full.
type (
	pairKey struct{ route, backend string }
	histKey pairKey
)

// series is the request metrics of one route and backend pair (or of one backend,
// with an empty route, when route metrics are off). Its children are resolved on
// first use, so that a pair exports series only for the status classes it has
// answered.
type series struct {
	m     *metrics
	key   pairKey
	codes [len(codeClasses)]atomic.Pointer[prometheus.Counter]
	// hist is the duration histogram the pair observes into, its own under full
	// route metrics, its backend's otherwise.
	hist *histogram
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
	s.m.firstCount(s, class)
}

// use records that generation gen uses the pair and its histogram.
func (s *series) use(gen uint64) {
	s.stamp.use(gen)
	s.hist.stamp.use(gen)
}

// histogram is one child of the duration histogram vector, resolved on first use
// like a series' codes.
type histogram struct {
	m     *metrics
	key   histKey
	child atomic.Pointer[prometheus.Observer]
	stamp
}

func (h *histogram) observe(v float64) {
	if c := h.child.Load(); c != nil {
		(*c).Observe(v)
		return
	}
	h.m.firstObserve(h, v)
}

// histKeyOf returns the key of the histogram a pair observes into. Under coarse and
// off the histogram is the backend's, shared by its routes, and stays while any of
// them is configured.
func (m *metrics) histKeyOf(key pairKey) histKey {
	if m.mode != RouteMetricsFull {
		return histKey{"", key.backend}
	}
	return histKey(key)
}

// serves reports whether Rules of generation gen are in service, or about to be.
func (m *metrics) serves(gen uint64) bool {
	return gen == m.live || (m.compiling && gen == m.generation)
}

// resolve returns the series that a request of r sent to backend counts in, found
// by seriesOf's slot empty, and fills the slot so that the rule's next requests
// there find the series with an atomic load. It returns nil when the request is not
// counted (see the rules above).
func (m *metrics) resolve(r *Rule, slot *atomic.Pointer[series], backend string) *series {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := slot.Load(); s != nil {
		// Another request of the rule resolved it meanwhile.
		return s
	}
	key := pairKey{m.routeLabel(r.route), backend}
	s := m.pairs[key]
	switch {
	case !m.serves(r.gen):
		if s == nil {
			return nil
		}
	case s == nil:
		s = m.newPairLocked(key, r.gen)
	default:
		s.use(r.gen)
	}
	slot.Store(s)
	return s
}

// newPairLocked creates the pair of key for generation gen; m.mu is held.
func (m *metrics) newPairLocked(key pairKey, gen uint64) *series {
	hk := m.histKeyOf(key)
	h := m.hists[hk]
	if h == nil {
		h = &histogram{m: m, key: hk, stamp: stamp{born: gen}}
		m.hists[hk] = h
	}
	s := &series{m: m, key: key, hist: h, stamp: stamp{born: gen}}
	s.use(gen)
	m.pairs[key] = s
	return s
}

// firstCount counts a request in a status class of s that has no child yet,
// resolving the child while s's pair is in the configuration.
func (m *metrics) firstCount(s *series, class int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := s.codes[class].Load()
	if c == nil {
		if m.pairs[s.key] == nil {
			return
		}
		child := m.requests.WithLabelValues(s.key.route, s.key.backend, codeClasses[class])
		c = &child
		s.codes[class].Store(c)
	}
	(*c).Inc()
}

// firstObserve observes into a histogram that has no child yet, resolving the
// child while the histogram is in the configuration.
func (m *metrics) firstObserve(h *histogram, v float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := h.child.Load()
	if c == nil {
		if m.hists[h.key] == nil {
			return
		}
		child := m.duration.WithLabelValues(h.key.route, h.key.backend)
		c = &child
		h.child.Store(c)
	}
	(*c).Observe(v)
}

// stampCompiled stamps with gen, the generation going into service, the pairs and
// histograms its Rules use among those that exist, and fills the Rules' slots of
// those pairs; m.mu is held. Pairs that do not exist are left to the first request.
// Each lookup has a struct key and allocates nothing.
func (m *metrics) stampCompiled(gen uint64) {
	for _, r := range m.compiled {
		route := m.routeLabel(r.route)
		for i := range r.backends {
			m.stampPairLocked(&r.backends[i].series, pairKey{route, r.backends[i].name}, gen)
		}
		m.stampPairLocked(&r.none, pairKey{route, ""}, gen)
	}
}

// stampPairLocked is stampCompiled for one slot. A backend's histogram is stamped
// even when this route's pair does not exist, since under coarse and off it is
// shared by the routes of the backend.
func (m *metrics) stampPairLocked(slot *atomic.Pointer[series], key pairKey, gen uint64) {
	if s := m.pairs[key]; s != nil {
		s.use(gen)
		slot.Store(s)
		return
	}
	if h := m.hists[m.histKeyOf(key)]; h != nil {
		h.use(gen)
	}
}
