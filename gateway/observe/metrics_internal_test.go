package observe

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// compile compiles a generation of one rule per route and backend pair, sending
// requests to the backend, and puts it in service or refuses it.
func compile(m *metrics, inService bool, pairs ...[2]string) []*Rule {
	o := &Observer{metrics: m}
	o.BeginCompile()
	out := make([]*Rule, len(pairs))
	for i, p := range pairs {
		out[i] = o.Rule(p[0], 0, &config.Rule{Backends: []config.BackendRef{{Backend: p[1], Weight: 1}}})
	}
	o.EndCompile(inService)
	return out
}

// request counts a request of r sent to the rule's first backend, answered with
// status, as the data plane counts one.
func request(r *Rule, status int) {
	r.RecordRaw(&reqctx.Info{Start: time.Now(), Backend: r.backends[0].name}, status)
}

// seriesCount returns how many series the family of a name has in reg.
func seriesCount(t *testing.T, reg prometheus.Gatherer, name string) int {
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

func TestSweepKeepsSharedHistogramsWhileARouteUsesThem(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg, RouteMetricsCoarse)
	if err != nil {
		t.Fatal(err)
	}
	count := func(name string) int { t.Helper(); return seriesCount(t, reg, name) }
	both := compile(m, true, [2]string{"r/a", "b"}, [2]string{"r/c", "b"})
	a, c := both[0], both[1]
	if count("switchyard_requests_total") != 0 || count("switchyard_request_duration_seconds") != 0 {
		t.Fatal("pairs without requests export series")
	}
	request(a, 200)
	request(c, 200)
	if count("switchyard_requests_total") != 2 || count("switchyard_request_duration_seconds") != 1 {
		t.Fatalf("after a request on each route: %d request series, %d histograms; want 2 and the backend's 1",
			count("switchyard_requests_total"), count("switchyard_request_duration_seconds"))
	}
	if again := compile(m, true, [2]string{"r/c", "b"}); again[0].backends[0].series.Load() != c.backends[0].series.Load() {
		t.Fatal("a pair kept by the new generation was not handed to its rule")
	}
	if count("switchyard_requests_total") != 1 || count("switchyard_request_duration_seconds") != 1 {
		t.Fatal("removing one route must drop its counts and keep the backend's histogram")
	}
	compile(m, true)
	// Requests of the generations taken out of service still finish.
	request(a, 500)
	request(c, 404)
	if n := count("switchyard_requests_total") + count("switchyard_request_duration_seconds"); n != 0 {
		t.Fatalf("%d series remain after every route was removed", n)
	}
	kept := compile(m, true, [2]string{"r/k", "b"})[0]
	request(kept, 200)
	m.beginCompile()
	(&Observer{metrics: m}).Rule("r/x", 0, &config.Rule{Backends: []config.BackendRef{{Backend: "b", Weight: 1}}})
	m.backend("x")
	m.endCompile(false)
	if len(m.pairs) != 1 || m.pairs[pairKey{"r/k", "b"}] != kept.backends[0].series.Load() || len(m.backends) != 0 {
		t.Fatalf("a refused compilation must drop what it created and keep the rest: pairs %v, backends %v", m.pairs, m.backends)
	}
	if count("switchyard_requests_total") != 1 || count("switchyard_request_duration_seconds") != 1 {
		t.Fatal("a refused compilation deleted series in service")
	}
}

// TestRuleCountDoesNotAllocate checks the path of a request after its rule's first
// one: a slot's atomic load, then the children's adds.
func TestRuleCountDoesNotAllocate(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry(), RouteMetricsFull)
	if err != nil {
		t.Fatal(err)
	}
	r := compile(m, true, [2]string{"r/a", "b"})[0]
	info := &reqctx.Info{Start: time.Now(), Backend: "b"}
	r.RecordRaw(info, 200)
	if n := testing.AllocsPerRun(1000, func() { r.RecordRaw(info, 200) }); n != 0 {
		t.Fatalf("counting a request allocates %v times", n)
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
