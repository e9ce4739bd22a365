package dataplane

import (
	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/router"
)

// ListenerTable is one listener of the serving generation with its compiled route
// table, for the admin API's route listing and match explanations.
type ListenerTable struct {
	// Listener is the listener as served; it must not be modified.
	Listener *config.Listener
	// Table is its compiled route table, the one requests are looked up in.
	Table *router.Table
	// Addr is the bound address, "" while the socket is not bound.
	Addr string
}

// RouteTables returns the serving snapshot's version and its listeners' route
// tables in snapshot order; nothing before the first Apply.
func (e *Engine) RouteTables() (version string, tables []ListenerTable) {
	gen := e.current.Load()
	if gen == nil {
		return "", nil
	}
	for i := range gen.snapshot.Listeners {
		l := &gen.snapshot.Listeners[i]
		if cl := gen.routes.listeners[l.Name]; cl != nil {
			tables = append(tables, ListenerTable{Listener: cl.spec, Table: cl.table, Addr: e.servers.Addr(l.Name)})
		}
	}
	return gen.snapshot.Version, tables
}

// BackendSnapshot returns the state of every backend pool: settings, breaker
// counters and per-endpoint health, ejection, drain and request counters.
func (e *Engine) BackendSnapshot() []backend.PoolSnapshot { return e.backends.Snapshot() }

// SetEndpointDrained drains or undrains endpoints of a Service on this replica; see
// backend.Manager.SetDrained.
func (e *Engine) SetEndpointDrained(sel backend.EndpointSelector, drained bool) ([]backend.DrainedEndpoint, error) {
	return e.backends.SetDrained(sel, drained)
}

// RateLimitSharing reports how Global rate limits are enforced: through Redis when
// one is configured, else by each replica for its share of the replicas counted.
func (e *Engine) RateLimitSharing() (redis bool, replicas int) {
	replicas = 1
	if e.plugins.Replicas != nil {
		replicas = max(1, e.plugins.Replicas())
	}
	return e.plugins.Redis != nil, replicas
}
