package backend

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

func endpoints(addrs ...string) []config.Endpoint {
	out := make([]config.Endpoint, len(addrs))
	for i, a := range addrs {
		out[i] = config.Endpoint{Address: a, Ready: true, Serving: true}
	}
	return out
}

func outlierPool(t *testing.T, od config.OutlierDetection, addrs ...string) *Pool {
	t.Helper()
	m := NewManager(Options{})
	t.Cleanup(m.Close)
	m.Update([]config.Backend{{Name: "b", Protocol: config.AppProtocolHTTP1, Endpoints: endpoints(addrs...), OutlierDetection: &od}})
	return m.Pool("b")
}

var ejectAfterThree = config.OutlierDetection{ConsecutiveGatewayErrors: 3, BaseEjectionTime: config.Duration(30 * time.Second),
	Interval: config.Duration(10 * time.Second), MaxEjectionPercent: 50}

func TestOutlierEjectsAtTheThreshold(t *testing.T) {
	p := outlierPool(t, ejectAfterThree, "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3")
	bad := p.Endpoints()[0].Endpoint
	for i := range 3 {
		if bad.Ejected() {
			t.Fatalf("ejected after %d failures; the threshold is 3", i)
		}
		p.Report(bad, OutcomeGatewayError)
	}
	if !bad.Ejected() {
		t.Fatal("not ejected after 3 gateway errors in a row")
	}
	for range 30 {
		if ep, _ := p.Pick(); ep == bad {
			t.Fatal("an ejected endpoint was picked")
		}
	}
	// A success in between resets the count.
	other := p.Endpoints()[1].Endpoint
	p.Report(other, OutcomeGatewayError)
	p.Report(other, OutcomeGatewayError)
	p.Report(other, OutcomeSuccess)
	p.Report(other, OutcomeGatewayError)
	if other.Ejected() {
		t.Fatal("failures separated by a success ejected the endpoint")
	}
}

func TestOutlierRespectsMaxEjectionPercent(t *testing.T) {
	p := outlierPool(t, ejectAfterThree, "127.0.0.1:1", "127.0.0.1:2")
	for _, es := range p.Endpoints() {
		for range 3 {
			p.Report(es.Endpoint, OutcomeGatewayError)
		}
	}
	ejected := 0
	for _, es := range p.Endpoints() {
		if es.Endpoint.Ejected() {
			ejected++
		}
	}
	if ejected != 1 {
		t.Fatalf("%d of 2 endpoints ejected; 50%% allows 1", ejected)
	}
}

func TestOutlierEjectionGrowsWithRepeats(t *testing.T) {
	p := outlierPool(t, ejectAfterThree, "127.0.0.1:1", "127.0.0.1:2")
	ep := p.Endpoints()[0].Endpoint
	od := &ejectAfterThree
	start := time.Unix(1_000_000, 0)
	p.eject(ep, od, start)
	first := time.Duration(ep.health.ejectedUntil.Load() - start.UnixNano())
	// Ejected again as soon as the first ejection ends: twice as long.
	again := start.Add(first)
	p.eject(ep, od, again)
	second := time.Duration(ep.health.ejectedUntil.Load() - again.UnixNano())
	if first != 30*time.Second || second != 60*time.Second {
		t.Fatalf("ejections of %v then %v; want 30s then 60s", first, second)
	}
	// Long in service earns the multiplier back.
	later := again.Add(second + time.Hour)
	p.eject(ep, od, later)
	if third := time.Duration(ep.health.ejectedUntil.Load() - later.UnixNano()); third != 30*time.Second {
		t.Fatalf("after an hour in service the ejection lasts %v; want the base 30s", third)
	}
}

// healthServer answers /healthz with the status in code.
func healthServer(t *testing.T, code *atomic.Int32, hits *atomic.Int32) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(int(code.Load()))
			return
		}
		hits.Add(1)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestHealthChecksTakeEndpointsOutAndBack(t *testing.T) {
	var codeA, codeB, hitsA, hitsB atomic.Int32
	codeA.Store(500)
	codeB.Store(200)
	a, b := healthServer(t, &codeA, &hitsA), healthServer(t, &codeB, &hitsB)
	m := NewManager(Options{})
	t.Cleanup(m.Close)
	hc := &config.HealthCheck{Path: "/healthz", Interval: config.Duration(20 * time.Millisecond),
		Timeout: config.Duration(time.Second), HealthyThreshold: 2, UnhealthyThreshold: 2}
	m.Update([]config.Backend{{Name: "b", Protocol: config.AppProtocolHTTP1, Endpoints: endpoints(a, b), HealthCheck: hc}})
	p := m.Pool("b")
	epA := p.Endpoints()[0].Endpoint
	waitFor(t, epA.Unhealthy)
	for range 20 {
		if ep, _ := p.Pick(); ep == epA {
			t.Fatal("an unhealthy endpoint was picked while a healthy one exists")
		}
	}
	// All unhealthy: panic mode spreads traffic over all rather than failing.
	codeB.Store(503)
	epB := p.Endpoints()[1].Endpoint
	waitFor(t, epB.Unhealthy)
	seen := map[*Endpoint]bool{}
	for range 10 {
		ep, err := p.Pick()
		if err != nil {
			t.Fatal(err)
		}
		seen[ep] = true
	}
	if len(seen) != 2 {
		t.Fatalf("with every endpoint unhealthy, %d of 2 take traffic; want all", len(seen))
	}
	codeA.Store(200)
	waitFor(t, func() bool { return !epA.Unhealthy() })
	// Removing the backend stops its checker.
	m.Update(nil)
	if p.checker != nil {
		t.Fatal("the checker of a removed backend still runs")
	}
}

func BenchmarkPickGuarded(b *testing.B) {
	m := NewManager(Options{})
	defer m.Close()
	var addrs []string
	for i := range 16 {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", 1000+i))
	}
	od := ejectAfterThree
	m.Update([]config.Backend{{Name: "b", Endpoints: endpoints(addrs...), OutlierDetection: &od}})
	p := m.Pool("b")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = p.Pick()
	}
}
