package observe

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/gateway/config"
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
	kept := compile(m, [2]string{"r/k", "b"})[0]
	kept.observe(200, time.Millisecond)
	m.beginCompile()
	m.pair("r/k", "b")
	m.pair("r/x", "b")
	m.backend("x")
	m.endCompile(false)
	if len(m.pairs) != 1 || m.pairs[pairKey{"r/k", "b"}] != kept || len(m.backends) != 0 {
		t.Fatalf("a refused compilation must drop what it created and keep the rest: pairs %v, backends %v", m.pairs, m.backends)
	}
	if count("switchyard_requests_total") != 1 || count("switchyard_request_duration_seconds") != 1 {
		t.Fatal("a refused compilation deleted series in service")
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

// BenchmarkExchange is what observing one request costs by itself: Begin, a rule's
// series, and End, around a handler that only writes a status.
func BenchmarkExchange(b *testing.B) {
	for _, withMetrics := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "metrics"}[withMetrics], func(b *testing.B) {
			var l *Listener
			var rule *Rule
			if withMetrics {
				o, err := New(Options{Registerer: prometheus.NewRegistry()})
				if err != nil {
					b.Fatal(err)
				}
				l = o.Listener("l")
				rule = o.Rule("default/app", 0, &config.Rule{Backends: []config.BackendRef{{Backend: "default/app:80", Weight: 1}}})
			}
			r := httptest.NewRequest(http.MethodGet, "http://app.example.com/", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				x, r := l.Begin(w, r)
				x.Route(rule)
				x.Info.Backend = "default/app:80"
				x.Writer().WriteHeader(http.StatusOK)
				_ = r
				x.End()
			}
		})
	}
}
