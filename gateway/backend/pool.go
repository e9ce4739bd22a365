package backend

import (
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// ErrNoEndpoints is returned by Pick when a backend has no endpoint able to serve.
var ErrNoEndpoints = errors.New("backend has no serving endpoints")

// Endpoint is one address of a backend together with the state the gateway keeps
// about it. The same Endpoint value is kept across configuration versions for as long
// as its address stays in the backend, so its counters are continuous.
type Endpoint struct {
	// Address is "ip:port" (IPv6 in brackets).
	Address string
	// Zone and NodeName locate the endpoint.
	Zone     string
	NodeName string

	// InFlight counts requests currently being forwarded to the endpoint.
	InFlight atomic.Int64
	// Requests counts requests ever forwarded to the endpoint.
	Requests atomic.Uint64
	// Failures counts requests that failed before a response arrived (connect
	// errors, resets, timeouts).
	Failures atomic.Uint64

	health endpointHealth
	// drained is an operator's drain (Manager.SetDrained): the endpoint takes no new
	// requests. It is written under the Manager's update lock.
	drained atomic.Bool
}

// Drained reports whether an operator drained the endpoint.
func (e *Endpoint) Drained() bool { return e.drained.Load() }

// EndpointState is an endpoint with its conditions in the current configuration.
type EndpointState struct {
	Endpoint    *Endpoint
	Ready       bool
	Serving     bool
	Terminating bool
}

// poolState is one configuration version of a pool. It is immutable once published,
// so Pick reads it without locks.
type poolState struct {
	protocol config.AppProtocol
	// tls is the transport that speaks TLS to the endpoints, or nil for cleartext.
	tls http.RoundTripper
	// ready are the endpoints eligible for new traffic. Drained endpoints are in
	// neither list.
	ready []*Endpoint
	// serving are the endpoints that are serving but not ready (typically
	// terminating); they take traffic only when no endpoint is ready.
	serving []*Endpoint
	all     []EndpointState
}

// Pool balances requests over the endpoints of one backend.
type Pool struct {
	name  string
	next  atomic.Uint64
	state atomic.Pointer[poolState]
	// breaker enforces the backend's circuit breaker caps.
	breaker Breaker
	// outlier holds the outlier detection settings; checker probes the endpoints.
	// guarded is set when either may hold endpoints out of service, so that Pick
	// looks at endpoint health only then.
	outlier outlierState
	checker *healthChecker
	guarded atomic.Bool
	// ejections counts the endpoints outlier detection has ejected since the pool
	// was created, for metrics.
	ejections atomic.Uint64
}

// Breaker is the pool's circuit breaker.
func (p *Pool) Breaker() *Breaker { return &p.breaker }

// Ejections counts the ejections outlier detection has made in the pool since it was
// created.
func (p *Pool) Ejections() uint64 { return p.ejections.Load() }

func newPool(b *config.Backend, tls http.RoundTripper) *Pool {
	p := &Pool{name: b.Name}
	p.update(b, tls)
	return p
}

// Name is the config.Backend name of the pool.
func (p *Pool) Name() string { return p.name }

// Protocol is how the pool's endpoints are spoken to.
func (p *Pool) Protocol() config.AppProtocol { return p.state.Load().protocol }

// Transport returns, from one configuration version, the pool's protocol and the
// transport that speaks TLS to its endpoints, which is nil when they are spoken to
// in cleartext over the Manager's shared transports.
func (p *Pool) Transport() (config.AppProtocol, http.RoundTripper) {
	s := p.state.Load()
	return s.protocol, s.tls
}

// Endpoints lists the endpoints of the current configuration with their conditions.
// The returned slice is shared and must not be modified.
func (p *Pool) Endpoints() []EndpointState { return p.state.Load().all }

// Pick chooses an endpoint round-robin among the ready endpoints, or among the
// serving ones when none is ready. It does not allocate.
func (p *Pool) Pick() (*Endpoint, error) {
	s := p.state.Load()
	candidates := s.ready
	if len(candidates) == 0 {
		candidates = s.serving
		if len(candidates) == 0 {
			return nil, ErrNoEndpoints
		}
	}
	n := p.next.Add(1) - 1
	count := uint64(len(candidates))
	if !p.guarded.Load() {
		return candidates[n%count], nil
	}
	// The clock is read only for an endpoint that has been ejected at some time:
	// one never ejected is available whenever it is not unhealthy.
	var now int64
	for i := range count {
		ep := candidates[(n+i)%count]
		if ep.health.unhealthy.Load() {
			continue
		}
		if ep.health.ejectedUntil.Load() == 0 {
			return ep, nil
		}
		if now == 0 {
			now = time.Now().UnixNano()
		}
		if ep.health.available(now) {
			return ep, nil
		}
	}
	// Every endpoint is held out: spread the traffic over all of them rather than
	// fail it all, since the checks may be what is wrong.
	return candidates[n%count], nil
}

// PickExcept is Pick, preferring an endpoint other than avoid when another can
// serve, so that a retry does not go back to the endpoint that just failed.
func (p *Pool) PickExcept(avoid *Endpoint) (*Endpoint, error) {
	ep, err := p.Pick()
	if err != nil || ep != avoid || avoid == nil {
		return ep, err
	}
	s := p.state.Load()
	if len(s.ready) > 1 || (len(s.ready) == 0 && len(s.serving) > 1) {
		return p.Pick()
	}
	return ep, nil
}

// update installs a new configuration of the backend. Endpoints whose address,
// zone and node are unchanged keep their Endpoint value and with it their counters;
// an operator's drain follows the address, so that it outlives a change of zone or
// node too.
func (p *Pool) update(b *config.Backend, tls http.RoundTripper) {
	known := map[endpointKey]*Endpoint{}
	drainedAddrs := map[string]bool{}
	if old := p.state.Load(); old != nil {
		for _, es := range old.all {
			e := es.Endpoint
			known[endpointKey{e.Address, e.Zone, e.NodeName}] = e
			if e.Drained() {
				drainedAddrs[e.Address] = true
			}
		}
	}
	p.breaker.setLimits(b.CircuitBreaker)
	p.outlier.settings.Store(b.OutlierDetection)
	p.guarded.Store(b.OutlierDetection != nil || b.HealthCheck != nil)
	s := &poolState{protocol: b.Protocol, tls: tls, all: make([]EndpointState, 0, len(b.Endpoints))}
	if s.protocol == "" {
		s.protocol = config.AppProtocolHTTP1
	}
	for _, ce := range b.Endpoints {
		key := endpointKey{ce.Address, ce.Zone, ce.NodeName}
		e := known[key]
		if e == nil {
			e = &Endpoint{Address: ce.Address, Zone: ce.Zone, NodeName: ce.NodeName}
			e.drained.Store(drainedAddrs[ce.Address])
			known[key] = e
		}
		s.all = append(s.all, EndpointState{Endpoint: e, Ready: ce.Ready, Serving: ce.Serving, Terminating: ce.Terminating})
	}
	s.sortByCondition()
	p.state.Store(s)
}

// sortByCondition fills the ready and serving lists from all, leaving drained
// endpoints out of both.
func (s *poolState) sortByCondition() {
	s.ready, s.serving = nil, nil
	for _, es := range s.all {
		switch {
		case es.Endpoint.Drained():
		case es.Ready:
			s.ready = append(s.ready, es.Endpoint)
		case es.Serving:
			s.serving = append(s.serving, es.Endpoint)
		}
	}
}

type endpointKey struct{ address, zone, node string }
