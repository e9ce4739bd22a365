package observe

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// compile resolves the pairs of one generation and puts it in service.
func compile(m *metrics, pairs ...[2]string) []*series {
	m.beginCompile()
	out := make([]*series, len(pairs))
	for i, p := range pairs {
		out[i] = m.pair(p[0], p[1])
	}
	m.endCompile(true)
	return out
}

func TestSweepKeepsSharedHistogramsWhileARouteUsesThem(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg, RouteMetricsCoarse)
	if err != nil {
		t.Fatal(err)
	}
	count := func(name string) int {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == name {
				return len(f.GetMetric())
			}
		}
		return 0
	}
	both := compile(m, [2]string{"r/a", "b"}, [2]string{"r/c", "b"})
	a, c := both[0], both[1]
	if count("switchyard_requests_total") != 0 || count("switchyard_request_duration_seconds") != 0 {
		t.Fatal("pairs without requests export series")
	}
	a.observe(200, time.Millisecond)
	c.observe(200, time.Millisecond)
	if count("switchyard_requests_total") != 2 || count("switchyard_request_duration_seconds") != 1 {
		t.Fatalf("after a request on each route: %d request series, %d histograms; want 2 and the backend's 1",
			count("switchyard_requests_total"), count("switchyard_request_duration_seconds"))
	}
	if again := compile(m, [2]string{"r/c", "b"}); again[0] != c {
		t.Fatal("a pair kept by the new generation was created anew")
	}
	if count("switchyard_requests_total") != 1 || count("switchyard_request_duration_seconds") != 1 {
		t.Fatal("removing one route must drop its counts and keep the backend's histogram")
	}
	compile(m)
	// Requests of the generations taken out of service still finish.
	a.observe(500, time.Millisecond)
	c.observe(404, time.Millisecond)
	if n := count("switchyard_requests_total") + count("switchyard_request_duration_seconds"); n != 0 {
		t.Fatalf("%d series remain after every route was removed", n)
	}
	m.beginCompile()
	m.pair("r/x", "b")
	m.endCompile(false)
	if len(m.pairs) != 1 {
		t.Fatalf("a compilation that did not go into service changed the pairs: %v", m.pairs)
	}
}

func TestSeriesObserveDoesNotAllocate(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry(), RouteMetricsFull)
	if err != nil {
		t.Fatal(err)
	}
	s := compile(m, [2]string{"r/a", "b"})[0]
	s.observe(200, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() { s.observe(200, time.Millisecond) }); n != 0 {
		t.Fatalf("observe allocates %v times per request", n)
	}
}
