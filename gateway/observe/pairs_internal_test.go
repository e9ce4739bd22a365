package observe

import (
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// requestsOf returns the request count of a route, backend and status class pair in
// reg, or -1 when it has no series.
func requestsOf(t *testing.T, reg prometheus.Gatherer, route, backend, code string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"route": route, "backend": backend, "code": code}
	for _, f := range families {
		if f.GetName() != "switchyard_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelsAre(m, want) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

func labelsAre(m *dto.Metric, want map[string]string) bool {
	if len(m.GetLabel()) != len(want) {
		return false
	}
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
			return false
		}
	}
	return true
}

func newTestMetrics(t *testing.T, mode RouteMetrics) (*metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg, mode)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// TestRuleWithoutRequestsHoldsNoPair checks that compiling rules creates no pair
// and no histogram, and that a request creates only the pair it counts in.
func TestRuleWithoutRequestsHoldsNoPair(t *testing.T) {
	m, reg := newTestMetrics(t, RouteMetricsFull)
	o := &Observer{metrics: m}
	o.BeginCompile()
	split := o.Rule("r/split", 0, &config.Rule{Backends: []config.BackendRef{{Backend: "b1", Weight: 1}, {Backend: "b2", Weight: 1}}})
	o.EndCompile(true)
	if len(m.pairs) != 0 || len(m.hists) != 0 {
		t.Fatalf("a rule without requests holds %d pairs and %d histograms", len(m.pairs), len(m.hists))
	}
	for _, name := range []string{"switchyard_requests_total", "switchyard_request_duration_seconds"} {
		if n := seriesCount(t, reg, name); n != 0 {
			t.Fatalf("a rule without requests exports %d series of %s", n, name)
		}
	}
	request(split, 200)
	if len(m.pairs) != 1 || m.pairs[pairKey{"r/split", "b1"}] == nil || len(m.hists) != 1 {
		t.Fatalf("after one request to b1: pairs %v, %d histograms; want b1's pair only", m.pairs, len(m.hists))
	}
	if got := requestsOf(t, reg, "r/split", "b1", "2xx"); got != 1 {
		t.Fatalf("b1's count is %v, want 1", got)
	}
}

// TestCountsContinueAcrossAReloadBeforeTheNewRulesFirstRequest checks that the sweep
// of a generation that keeps a pair keeps its series, though none of the new
// generation's requests has resolved the pair yet, and that the new generation
// counts on in it.
func TestCountsContinueAcrossAReloadBeforeTheNewRulesFirstRequest(t *testing.T) {
	m, reg := newTestMetrics(t, RouteMetricsFull)
	gen1 := compile(m, true, [2]string{"r/a", "b"})[0]
	request(gen1, 200)
	request(gen1, 200)
	gen2 := compile(m, true, [2]string{"r/a", "b"})[0]
	if got := requestsOf(t, reg, "r/a", "b", "2xx"); got != 2 {
		t.Fatalf("after the reload the count is %v, want the 2 counted before", got)
	}
	request(gen2, 200)
	if got := requestsOf(t, reg, "r/a", "b", "2xx"); got != 3 {
		t.Fatalf("after a request of the new generation the count is %v, want 3", got)
	}
}

// TestPairResolvedDuringACompilationIsKeptByIt checks the pair that a first request
// of the generation in service creates while a newer generation is compiled: the
// newer one keeps it when it has the pair too, and drops it when it does not.
func TestPairResolvedDuringACompilationIsKeptByIt(t *testing.T) {
	m, reg := newTestMetrics(t, RouteMetricsFull)
	gen1 := compile(m, true, [2]string{"r/a", "b"}, [2]string{"r/gone", "b"})
	o := &Observer{metrics: m}
	o.BeginCompile()
	gen2 := o.Rule("r/a", 0, &config.Rule{Backends: []config.BackendRef{{Backend: "b", Weight: 1}}})
	request(gen1[0], 200)
	request(gen1[1], 200)
	o.EndCompile(true)
	if got := requestsOf(t, reg, "r/a", "b", "2xx"); got != 1 {
		t.Fatalf("the new generation's sweep left r/a's count at %v, want 1", got)
	}
	if got := requestsOf(t, reg, "r/gone", "b", "2xx"); got != -1 {
		t.Fatalf("r/gone, which the new generation has not, still exports a count of %v", got)
	}
	request(gen2, 200)
	if got := requestsOf(t, reg, "r/a", "b", "2xx"); got != 2 {
		t.Fatalf("after a request of the new generation r/a's count is %v, want 2", got)
	}
}

// TestOldGenerationLeavesNoSeriesForARemovedRoute checks that requests of a
// generation taken out of service leave no series for a route the configuration in
// service no longer has, whether they are the first of their pair or of a status
// class of it, and count in the pairs the configuration in service keeps.
func TestOldGenerationLeavesNoSeriesForARemovedRoute(t *testing.T) {
	m, reg := newTestMetrics(t, RouteMetricsFull)
	gen1 := compile(m, true, [2]string{"r/a", "b"}, [2]string{"r/gone", "b"}, [2]string{"r/used", "b"})
	request(gen1[2], 200)
	gen2 := compile(m, true, [2]string{"r/a", "b"})[0]
	request(gen2, 200)
	// In flight across the reload: the first request of r/gone, a new status class
	// of r/used, whose pair the sweep dropped, and the first request of r/a in the
	// old generation, whose pair the new one resolved.
	request(gen1[1], 200)
	request(gen1[2], 500)
	request(gen1[0], 200)
	for _, pair := range [][2]string{{"r/gone", "2xx"}, {"r/used", "2xx"}, {"r/used", "5xx"}} {
		if got := requestsOf(t, reg, pair[0], "b", pair[1]); got != -1 {
			t.Errorf("removed route %s exports a %s count of %v", pair[0], pair[1], got)
		}
	}
	if len(m.pairs) != 1 || len(m.hists) != 1 {
		t.Errorf("pairs %v and %d histograms; want r/a's only", m.pairs, len(m.hists))
	}
	if n := seriesCount(t, reg, "switchyard_request_duration_seconds"); n != 1 {
		t.Errorf("%d histograms exported, want r/a's only", n)
	}
	if got := requestsOf(t, reg, "r/a", "b", "2xx"); got != 2 {
		t.Errorf("r/a's count is %v, want both generations' requests", got)
	}
}

// TestRefusedCompilationKeepsPairs checks that a refused compilation leaves the
// pairs in service and their counts, including a pair that a request of the
// generation in service created while it was compiled.
func TestRefusedCompilationKeepsPairs(t *testing.T) {
	m, reg := newTestMetrics(t, RouteMetricsFull)
	gen1 := compile(m, true, [2]string{"r/a", "b"}, [2]string{"r/new", "b"})
	request(gen1[0], 200)
	request(gen1[0], 200)
	kept := gen1[0].backends[0].series.Load()
	o := &Observer{metrics: m}
	o.BeginCompile()
	o.Rule("r/a", 0, &config.Rule{Backends: []config.BackendRef{{Backend: "b", Weight: 1}}})
	o.Rule("r/x", 0, &config.Rule{Backends: []config.BackendRef{{Backend: "b", Weight: 1}}})
	request(gen1[1], 200)
	o.EndCompile(false)
	if m.pairs[pairKey{"r/a", "b"}] != kept || m.pairs[pairKey{"r/new", "b"}] == nil || len(m.pairs) != 2 {
		t.Fatalf("after a refused compilation: pairs %v, want r/a's, unchanged, and r/new's", m.pairs)
	}
	request(gen1[0], 200)
	request(gen1[0], 500)
	request(gen1[1], 200)
	for _, c := range []struct {
		route, code string
		want        float64
	}{{"r/a", "2xx", 3}, {"r/a", "5xx", 1}, {"r/new", "2xx", 2}} {
		if got := requestsOf(t, reg, c.route, "b", c.code); got != c.want {
			t.Errorf("%s %s count is %v, want %v", c.route, c.code, got, c.want)
		}
	}
}

// TestFirstRequestsRaceReloads sends first requests of every generation while
// generations go into service, for the race detector, and checks that only the
// pairs of the last generation are left, with the counts its requests made.
func TestFirstRequestsRaceReloads(t *testing.T) {
	for _, mode := range []RouteMetrics{RouteMetricsFull, RouteMetricsCoarse, RouteMetricsOff} {
		t.Run(string(mode), func(t *testing.T) {
			m, reg := newTestMetrics(t, mode)
			all := [][2]string{{"r/a", "b"}, {"r/b", "b"}, {"r/c", "c"}}
			var wg sync.WaitGroup
			for i := range 20 {
				rules := compile(m, true, all[i%len(all):]...)
				for _, r := range rules {
					wg.Go(func() {
						request(r, 200)
						request(r, 503)
					})
				}
			}
			wg.Wait()
			last := compile(m, true, all[1:]...)
			if n := seriesCount(t, reg, "switchyard_request_duration_seconds"); n > len(m.hists) {
				t.Errorf("%d histograms exported for %d entries", n, len(m.hists))
			}
			for key := range m.pairs {
				if key.backend != "" && key != (pairKey{m.routeLabel("r/b"), "b"}) && key != (pairKey{m.routeLabel("r/c"), "c"}) {
					t.Errorf("pair %v of a removed route is left", key)
				}
			}
			before := requestsOf(t, reg, m.routeLabel("r/c"), "c", "2xx")
			request(last[1], 200)
			if got := requestsOf(t, reg, m.routeLabel("r/c"), "c", "2xx"); got != max(before, 0)+1 {
				t.Errorf("r/c's count went from %v to %v with one request", before, got)
			}
		})
	}
}
