package backend

import (
	"sort"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// PoolSnapshot is what an operator sees of one backend: its settings and the state
// of its breaker and endpoints at one moment. Counters are read one by one, so two
// of them may be a request apart.
type PoolSnapshot struct {
	// Name is the backend's name in the configuration.
	Name string
	// Protocol is how the endpoints are spoken to.
	Protocol config.AppProtocol
	// TLS reports whether the endpoints are spoken to over TLS.
	TLS bool
	// CircuitBreaker, OutlierDetection and HealthCheck are the settings in force;
	// nil when not configured.
	CircuitBreaker   *config.CircuitBreaker
	OutlierDetection *config.OutlierDetection
	HealthCheck      *config.HealthCheck
	// Breaker holds the breaker's counters.
	Breaker BreakerStats
	// Endpoints are the backend's endpoints in configuration order.
	Endpoints []EndpointSnapshot
}

// BreakerStats are a circuit breaker's counters.
type BreakerStats struct {
	// Requests counts the requests admitted and not yet finished (only counted
	// while a cap is configured).
	Requests int64
	// Retries counts the retries in flight (only counted while MaxRetries is set).
	Retries int64
	// ActiveConnections counts the connection slots in use, and Pending the
	// requests waiting for one.
	ActiveConnections int
	Pending           int
	// Overflows counts the requests and retries turned away since start.
	Overflows uint64
}

// EndpointSnapshot is one endpoint's conditions and counters.
type EndpointSnapshot struct {
	// Address is "ip:port"; Zone and NodeName locate it.
	Address  string
	Zone     string
	NodeName string
	// Ready, Serving and Terminating are its conditions in the configuration.
	Ready       bool
	Serving     bool
	Terminating bool
	// Drained reports an operator's drain (see Manager.SetDrained).
	Drained bool
	// Unhealthy reports that active health checks hold it out of service.
	Unhealthy bool
	// EjectedUntil is when its outlier ejection ends; zero when not ejected now.
	EjectedUntil time.Time
	// Ejections is the length multiplier of its latest ejection (ejections in a
	// row, earned back down by time in service).
	Ejections int32
	// Consecutive5xx and ConsecutiveGatewayErrors are its current failure streaks.
	Consecutive5xx           int32
	ConsecutiveGatewayErrors int32
	// InFlight, Requests and Failures are its request counters (see Endpoint).
	InFlight int64
	Requests uint64
	Failures uint64
}

// Snapshot returns every configured backend, sorted by name.
func (m *Manager) Snapshot() []PoolSnapshot {
	// The update lock keeps the health checkers' settings still while they are read.
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	pools := *m.pools.Load()
	out := make([]PoolSnapshot, 0, len(pools))
	now := time.Now()
	for _, p := range pools {
		out = append(out, p.snapshot(now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// snapshot reads the pool's state; called under the Manager's update lock.
func (p *Pool) snapshot(now time.Time) PoolSnapshot {
	s := p.state.Load()
	out := PoolSnapshot{
		Name:             p.name,
		Protocol:         s.protocol,
		TLS:              s.tls != nil,
		CircuitBreaker:   p.breaker.limits.Load(),
		OutlierDetection: p.outlier.settings.Load(),
		Breaker:          p.breaker.stats(),
		Endpoints:        make([]EndpointSnapshot, len(s.all)),
	}
	if p.checker != nil {
		hc := p.checker.settings
		out.HealthCheck = &hc
	}
	for i, es := range s.all {
		out.Endpoints[i] = es.snapshot(now)
	}
	return out
}

func (es EndpointState) snapshot(now time.Time) EndpointSnapshot {
	e := es.Endpoint
	h := &e.health
	out := EndpointSnapshot{
		Address: e.Address, Zone: e.Zone, NodeName: e.NodeName,
		Ready: es.Ready, Serving: es.Serving, Terminating: es.Terminating,
		Drained:                  e.Drained(),
		Unhealthy:                h.unhealthy.Load(),
		Ejections:                h.ejections.Load(),
		Consecutive5xx:           h.consecutive5xx.Load(),
		ConsecutiveGatewayErrors: h.consecutiveGateway.Load(),
		InFlight:                 e.InFlight.Load(),
		Requests:                 e.Requests.Load(),
		Failures:                 e.Failures.Load(),
	}
	if until := h.ejectedUntil.Load(); until > now.UnixNano() {
		out.EjectedUntil = time.Unix(0, until)
	}
	return out
}

// stats reads the breaker's counters.
func (b *Breaker) stats() BreakerStats {
	b.mu.Lock()
	active, pending := int(b.active.Load()), len(b.queue)
	b.mu.Unlock()
	return BreakerStats{
		Requests:          b.requests.Load(),
		Retries:           b.retries.Load(),
		ActiveConnections: active,
		Pending:           pending,
		Overflows:         b.overflows.Load(),
	}
}
