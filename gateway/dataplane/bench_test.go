package dataplane

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/observe"
	// The benchmark routes use the Gateway API filters, which register themselves.
	_ "github.com/switchyard-dev/switchyard/plugins/all"
)

// Sizes of the benchmark configuration: a shared gateway with 5,000 routes and 2,500
// backends of 8 endpoints each.
const (
	benchRoutes           = 5000
	benchRoutesPerVHost   = 1000
	benchBackends         = 2500
	benchEndpointsPerPool = 8
)

// benchSnapshot builds a snapshot like the translator's for a large cluster: one
// loopback listener whose virtual hosts hold routes with one to three rules of
// prefix, exact, header and method matches, header and rewrite filters and weighted
// backends. No traffic is sent to the endpoints.
func benchSnapshot(version, routesVersion string) *config.Snapshot {
	return benchSnapshotOf(version, routesVersion, benchRoutes)
}

// benchSnapshotOf is benchSnapshot with another number of routes, a multiple of
// benchRoutesPerVHost.
func benchSnapshotOf(version, routesVersion string, routes int) *config.Snapshot {
	l := config.Listener{Name: "127.0.0.1:0", Address: "127.0.0.1", Protocol: config.ProtocolHTTP}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for v := range routes / benchRoutesPerVHost {
		vh := config.VirtualHost{Name: fmt.Sprintf("infra/gw%d/http", v), Hostname: fmt.Sprintf("*.gw%d.example.com", v)}
		for i := range benchRoutesPerVHost {
			n := v*benchRoutesPerVHost + i
			route := config.Route{
				Name:              fmt.Sprintf("team-%02d/route-%03d", n/100, n%100),
				CreationTimestamp: base.Add(time.Duration(n) * time.Second),
			}
			if n%10 != 0 {
				route.Hostnames = []string{fmt.Sprintf("app-%d.gw%d.example.com", n, v)}
			}
			for r := range 1 + n%3 {
				route.Rules = append(route.Rules, benchRule(n, r))
			}
			vh.Routes = append(vh.Routes, route)
		}
		l.VirtualHosts = append(l.VirtualHosts, vh)
	}
	snap := &config.Snapshot{
		SchemaVersion: config.SchemaVersion, Version: version, RoutesVersion: routesVersion,
		Listeners: []config.Listener{l},
	}
	for b := range benchBackends {
		backend := config.Backend{Name: benchBackendName(b), Protocol: config.AppProtocolHTTP1}
		for e := range benchEndpointsPerPool {
			backend.Endpoints = append(backend.Endpoints, config.Endpoint{
				Address: fmt.Sprintf("127.%d.%d.%d:8080", 1+b/250, b%250, 1+e),
				Ready:   true, Serving: true, Zone: fmt.Sprintf("zone-%d", e%3),
			})
		}
		snap.Backends = append(snap.Backends, backend)
	}
	return snap
}

// movedEndpoints returns a copy of snap with another version in which the endpoints
// of the first n backends have moved to other addresses, as a rollout moves Pods.
func movedEndpoints(snap *config.Snapshot, version string, n int) *config.Snapshot {
	c := *snap
	c.Version = version
	c.Backends = append([]config.Backend(nil), snap.Backends...)
	for b := range n {
		moved := append([]config.Endpoint(nil), c.Backends[b].Endpoints...)
		for e := range moved {
			moved[e].Address = fmt.Sprintf("127.%d.%d.%d:8080", 1+b/250, b%250, 101+e)
		}
		c.Backends[b].Endpoints = moved
	}
	return &c
}

func benchBackendName(b int) string {
	return fmt.Sprintf("team-%02d/svc-%02d:80", (b/50)%50, b%50)
}

// benchRule is rule r of route n: an API prefix with a header match and a request
// header filter, an exact health check on GET split over two backends, or a static
// prefix rewritten to another path with a response header.
func benchRule(n, r int) config.Rule {
	ref := func(b int, weight int32) config.BackendRef {
		return config.BackendRef{Backend: benchBackendName(b % benchBackends), Weight: weight}
	}
	switch r {
	case 0:
		rule := config.Rule{
			Matches: []config.Match{{Path: &config.PathMatch{Type: config.PathPrefix, Value: fmt.Sprintf("/api/v%d", 1+n%3)}}},
			Filters: []config.Filter{{
				Type: config.FilterRequestHeaderModifier,
				RequestHeaderModifier: &config.HeaderModifier{
					Set: []config.Header{{Name: "X-Route", Value: fmt.Sprint(n)}}, Remove: []string{"X-Debug"},
				},
			}},
			Backends: []config.BackendRef{ref(n, 1)},
		}
		if n%2 == 0 {
			rule.Matches[0].Headers = []config.ValueMatch{{Type: config.MatchExact, Name: "X-Tenant", Value: fmt.Sprintf("tenant-%d", n%13)}}
		}
		return rule
	case 1:
		return config.Rule{
			Name:     "health",
			Matches:  []config.Match{{Path: &config.PathMatch{Type: config.PathExact, Value: "/healthz"}, Method: "GET"}},
			Backends: []config.BackendRef{ref(n+1, 90), ref(n+2, 10)},
		}
	default:
		return config.Rule{
			Matches: []config.Match{
				{Path: &config.PathMatch{Type: config.PathPrefix, Value: "/static"}},
				{Path: &config.PathMatch{Type: config.PathPrefix, Value: "/assets"}},
			},
			Filters: []config.Filter{
				{Type: config.FilterURLRewrite, URLRewrite: &config.URLRewrite{Path: &config.PathModifier{Type: config.ReplacePrefixMatch, ReplacePrefixMatch: "/content"}}},
				{Type: config.FilterResponseHeaderModifier, ResponseHeaderModifier: &config.HeaderModifier{Add: []config.Header{{Name: "Cache-Control", Value: "max-age=300"}}}},
			},
			Backends: []config.BackendRef{ref(n+3, 3), ref(n+4, 1)},
		}
	}
}

// benchApply applies the first snapshot, then the others in turn, one per iteration,
// to an engine observed by obs (nil for none).
func benchApply(b *testing.B, obs *observe.Observer, snaps ...*config.Snapshot) {
	for _, s := range snaps {
		if err := s.Validate(); err != nil {
			b.Fatal(err)
		}
	}
	e := New(Options{Logger: slog.New(slog.DiscardHandler), Observer: obs})
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	if err := e.Apply(snaps[0]); err != nil {
		b.Fatal(err)
	}
	before := e.compilations.Load()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := e.Apply(snaps[i%len(snaps)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(e.compilations.Load()-before)/float64(i), "compiles/op")
}

// BenchmarkApplyEndpointChurn applies snapshots that differ in the endpoints of one
// Service, as a rollout or a scaling step produces; the route table is kept.
func BenchmarkApplyEndpointChurn(b *testing.B) {
	a := benchSnapshot("a", "routes-a")
	benchApply(b, nil, a, movedEndpoints(a, "a2", 1))
}

// BenchmarkApplyEndpointChurnAll moves every one of the 20,000 endpoints at each
// apply, the worst case for the backend manager.
func BenchmarkApplyEndpointChurnAll(b *testing.B) {
	a := benchSnapshot("a", "routes-a")
	benchApply(b, nil, a, movedEndpoints(a, "a2", benchBackends))
}

// BenchmarkApplyRouteChange applies snapshots that differ in one route: every apply
// compiles the route table. Observed, the engine also resolves the metrics of every
// rule and drops those of the route that changed.
func BenchmarkApplyRouteChange(b *testing.B) {
	a, changed := benchSnapshot("a", "routes-a"), benchSnapshot("b", "routes-b")
	rule := &changed.Listeners[0].VirtualHosts[0].Routes[1].Rules[0]
	rule.Matches[0].Path.Value = "/api/changed"
	b.Run("unobserved", func(b *testing.B) { benchApply(b, nil, a, changed) })
	b.Run("observed", func(b *testing.B) {
		obs, err := observe.New(observe.Options{Registerer: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		benchApply(b, obs, a, changed)
	})
}
