package admin

import (
	"errors"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/dataplane"
	"github.com/switchyard-dev/switchyard/gateway/outcome"
	"github.com/switchyard-dev/switchyard/gateway/router"
)

// engineDataPlane serves the data plane endpoints from a gateway's engine.
type engineDataPlane struct {
	engine *dataplane.Engine
}

// NewEngineDataPlane returns the DataPlane of a gateway's engine: its serving route
// tables, backend pools and rate limits.
func NewEngineDataPlane(e *dataplane.Engine) DataPlane { return engineDataPlane{engine: e} }

func (d engineDataPlane) Routes() RoutesView {
	version, tables := d.engine.RouteTables()
	view := RoutesView{Version: version, Listeners: make([]ListenerRoutes, 0, len(tables))}
	for _, lt := range tables {
		l := ListenerRoutes{Name: lt.Listener.Name, Port: lt.Listener.Port, Protocol: lt.Listener.Protocol,
			BoundAddr: lt.Addr, VirtualHosts: []VirtualHostRoutes{}}
		for _, order := range lt.Table.MatchOrder() {
			vh := VirtualHostRoutes{Name: order.VirtualHost.Name, Hostname: order.VirtualHost.Hostname, Tiers: []RouteTier{}}
			for _, tier := range order.Tiers {
				t := RouteTier{Kind: string(tier.Kind), Hostname: tier.Hostname, Matches: make([]RouteMatch, len(tier.Candidates))}
				for i, c := range tier.Candidates {
					t.Matches[i] = routeMatch(c)
				}
				vh.Tiers = append(vh.Tiers, t)
			}
			l.VirtualHosts = append(l.VirtualHosts, vh)
		}
		view.Listeners = append(view.Listeners, l)
	}
	return view
}

// routeMatch describes a compiled match with the rule it belongs to.
func routeMatch(c router.Candidate) RouteMatch {
	rule := &c.Route.Rules[c.RuleIndex]
	m := RouteMatch{Route: c.Route.Name, Rule: c.RuleIndex, RuleName: rule.Name, Conditions: c.Match}
	if c.Match != nil {
		index := c.MatchIndex
		m.Match = &index
	}
	for _, ref := range rule.Backends {
		b := RouteBackend{Backend: ref.Backend, Weight: ref.Weight}
		if ref.Invalid != nil {
			b.Invalid = ref.Invalid.Reason
		}
		m.Backends = append(m.Backends, b)
	}
	for _, f := range rule.Filters {
		m.Filters = append(m.Filters, string(f.Type))
	}
	return m
}

func (d engineDataPlane) Match(q MatchQuery) (MatchView, error) {
	r, err := q.request()
	if err != nil {
		return MatchView{}, err
	}
	version, tables := d.engine.RouteTables()
	view := MatchView{Version: version, Listeners: []ListenerMatch{}, Request: MatchRequestView{
		Path: r.URL.Path, Query: r.URL.RawQuery, Method: r.Method, Headers: r.Header}}
	for _, lt := range tables {
		if (q.Port != 0 && lt.Listener.Port != q.Port) || (q.Listener != "" && lt.Listener.Name != q.Listener) {
			continue
		}
		ex := lt.Table.Explain(r)
		view.Request.Host = ex.Host
		view.Listeners = append(view.Listeners, listenerMatch(lt.Listener, ex, q.All))
	}
	if len(view.Listeners) == 0 && (q.Port != 0 || q.Listener != "") {
		return view, errorf(ErrNotFound, "no listener matches port %d and listener %q", q.Port, q.Listener)
	}
	return view, nil
}

// listenerMatch converts one listener's explanation; all keeps the matches whose
// route's hostnames do not accept the host, which are otherwise only counted.
func listenerMatch(l *config.Listener, ex *router.Explanation, all bool) ListenerMatch {
	out := ListenerMatch{Listener: l.Name, Port: l.Port, Protocol: string(l.Protocol), Result: MatchResultNoVirtualHost,
		Candidates: make([]MatchCandidate, 0, len(ex.Candidates))}
	if ex.VirtualHost == nil {
		return out
	}
	out.VirtualHost, out.Result = ex.VirtualHost.Name, MatchResultNoRoute
	for _, c := range ex.Candidates {
		if c.Tier == router.TierNone && !all {
			out.OmittedForHostname++
			continue
		}
		mc := MatchCandidate{RouteMatch: routeMatch(c.Candidate), Tier: string(c.Tier), TierHostname: c.Hostname, Outcome: string(c.Outcome)}
		for _, reason := range c.Reasons {
			mc.Reasons = append(mc.Reasons, MatchReason{Criterion: string(reason.Criterion), Detail: reason.Detail})
		}
		if c.Outcome == router.OutcomeChosen {
			chosen := mc.RouteMatch
			out.Chosen, out.Result = &chosen, MatchResultMatched
		}
		out.Candidates = append(out.Candidates, mc)
	}
	return out
}

func (d engineDataPlane) Backends() BackendsView {
	outcomes := d.engine.BackendOutcomes()
	pools := d.engine.BackendSnapshot()
	view := BackendsView{Backends: make([]BackendView, 0, len(pools))}
	now := time.Now()
	for _, p := range pools {
		b := BackendView{Name: p.Name, Protocol: string(p.Protocol), TLS: p.TLS, CircuitBreaker: p.CircuitBreaker,
			OutlierDetection: p.OutlierDetection, HealthCheck: p.HealthCheck, Breaker: BreakerView(p.Breaker),
			Outcomes: outcomeView(outcomes[p.Name]), Endpoints: make([]EndpointView, len(p.Endpoints))}
		b.Service, b.Port, _ = backend.ServiceOf(p.Name)
		for i, e := range p.Endpoints {
			b.Endpoints[i] = endpointView(e, now)
		}
		view.Backends = append(view.Backends, b)
	}
	return view
}

func outcomeView(t outcome.Totals) OutcomeView {
	v := OutcomeView{Requests: t.Requests, Errors: t.Errors}
	if t.Requests > 0 {
		p50 := float64(t.Quantile(0.5)) / float64(time.Millisecond)
		p99 := float64(t.Quantile(0.99)) / float64(time.Millisecond)
		v.P50Millis, v.P99Millis = &p50, &p99
	}
	return v
}

func endpointView(e backend.EndpointSnapshot, now time.Time) EndpointView {
	v := EndpointView{Address: e.Address, Zone: e.Zone, NodeName: e.NodeName, Ready: e.Ready, Serving: e.Serving,
		Terminating: e.Terminating, Drained: e.Drained, Healthy: !e.Unhealthy, EjectedUntil: e.EjectedUntil,
		Ejections: e.Ejections, Consecutive5xx: e.Consecutive5xx, ConsecutiveGatewayErrors: e.ConsecutiveGatewayErrors,
		InFlight: e.InFlight, Requests: e.Requests, Failures: e.Failures}
	switch {
	case e.Drained:
		v.State = "Drained"
	case e.Unhealthy:
		v.State = "Unhealthy"
	case e.EjectedUntil.After(now):
		v.State = "Ejected"
	case e.Ready:
		v.State = "Ready"
	case e.Serving:
		v.State = "Serving"
	default:
		v.State = "NotServing"
	}
	return v
}

func (d engineDataPlane) Drain(req DrainRequest) (DrainView, error) {
	service := req.Namespace + "/" + req.Name
	changed, err := d.engine.SetEndpointDrained(backend.EndpointSelector{Service: service, Port: req.Port, Address: req.Address}, req.Drain)
	switch {
	case errors.Is(err, backend.ErrInvalidAddress):
		return DrainView{}, errorf(ErrInvalid, "%v", err)
	case errors.Is(err, backend.ErrUnknownService), errors.Is(err, backend.ErrUnknownEndpoint):
		return DrainView{}, errorf(ErrNotFound, "%v", err)
	case err != nil:
		return DrainView{}, err
	}
	view := DrainView{Service: service, Port: req.Port, Action: "undrain", Endpoints: make([]DrainedEndpointView, len(changed))}
	if req.Drain {
		view.Action = "drain"
	}
	for i, c := range changed {
		view.Endpoints[i] = DrainedEndpointView(c)
	}
	return view, nil
}
