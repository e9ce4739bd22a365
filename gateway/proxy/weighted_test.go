package proxy

import (
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// binomialBound returns the smallest k such that a Binomial(n, p) variable strays k
// or more from its mean n*p with probability below alpha.
func binomialBound(n int, p, alpha float64) int {
	pmf := func(x int) float64 {
		lg := func(v int) float64 { r, _ := math.Lgamma(float64(v) + 1); return r }
		return math.Exp(lg(n) - lg(x) - lg(n-x) + float64(x)*math.Log(p) + float64(n-x)*math.Log(1-p))
	}
	mean := float64(n) * p
	for k := 1; k <= n; k++ {
		tail := 0.0
		for x := 0; x <= n; x++ {
			if math.Abs(float64(x)-mean) >= float64(k) {
				tail += pmf(x)
			}
		}
		if tail < alpha {
			return k
		}
	}
	return n
}

func TestWeightedSplitFollowsWeights(t *testing.T) {
	a, b := startBackend(t, named("a")), startBackend(t, named("b"))
	g := newGateway(t, Options{}, []config.Backend{httpBackend("a", ready(a)), httpBackend("b", ready(b))},
		config.Rule{Backends: []config.BackendRef{{Backend: "a", Weight: 80}, {Backend: "b", Weight: 20}}}, nil)
	const n = 1000
	counts := map[string]int{}
	for range n {
		status, _, body := g.get(t, "/")
		if status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		counts[body]++
	}
	bound := binomialBound(n, 0.8, 1e-6)
	if d := math.Abs(float64(counts["a"]) - 800); d >= float64(bound) || counts["a"]+counts["b"] != n {
		t.Fatalf("split a=%d b=%d; want a within %d of 800", counts["a"], counts["b"], bound)
	}
	t.Logf("a=%d b=%d (bound ±%d)", counts["a"], counts["b"], bound)
}

func TestWeightZeroNeverChosen(t *testing.T) {
	a, b := startBackend(t, named("a")), startBackend(t, named("b"))
	g := newGateway(t, Options{}, []config.Backend{httpBackend("a", ready(a)), httpBackend("b", ready(b))},
		config.Rule{Backends: []config.BackendRef{{Backend: "b", Weight: 0}, {Backend: "a", Weight: 1}, {Backend: "b", Weight: 0}}}, nil)
	for range 200 {
		if _, _, body := g.get(t, "/"); body != "a" {
			t.Fatalf("weight-0 backend answered: %q", body)
		}
	}
}

func TestInvalidBackendShareAnswers500(t *testing.T) {
	a := startBackend(t, named("a"))
	g := newGateway(t, Options{}, []config.Backend{httpBackend("a", ready(a))}, config.Rule{Backends: []config.BackendRef{
		{Backend: "a", Weight: 1},
		{Weight: 1, Invalid: &config.InvalidBackend{StatusCode: 500, Reason: "service not found"}},
	}}, nil)
	seen := map[int]int{}
	for range 200 {
		status, reason, body := g.get(t, "/")
		seen[status]++
		if status == http.StatusInternalServerError && (reason != "invalid-backend" || !strings.Contains(body, "invalid")) {
			t.Fatalf("invalid share answered reason %q body %q", reason, body)
		}
	}
	// Each outcome has probability 1/2 per request; missing one in 200 tries has
	// probability 2^-199.
	if seen[http.StatusOK] == 0 || seen[http.StatusInternalServerError] == 0 || len(seen) != 2 {
		t.Fatalf("statuses = %v; want both 200 and 500", seen)
	}
}

func TestNoUsableBackendsAnswer500(t *testing.T) {
	a := startBackend(t, named("a"))
	for name, refs := range map[string][]config.BackendRef{
		"none":        nil,
		"all-zero":    {{Backend: "a", Weight: 0}},
		"all-invalid": {{Weight: 3, Invalid: &config.InvalidBackend{StatusCode: 500}}},
	} {
		g := newGateway(t, Options{}, []config.Backend{httpBackend("a", ready(a))}, config.Rule{Backends: refs}, nil)
		status, _, _ := g.get(t, "/")
		if status != http.StatusInternalServerError {
			t.Errorf("%s: status %d, want 500", name, status)
		}
	}
}

func TestWeightedPickDoesNotAllocate(t *testing.T) {
	w := &weightedHandler{}
	w.add(1, errNoEndpoints)
	w.add(1, errUpstreamFailed)
	seen := map[http.Handler]bool{}
	for range 200 {
		seen[w.pick()] = true
	}
	if len(seen) != 2 {
		t.Fatalf("picked %d distinct handlers, want 2", len(seen))
	}
	if allocs := testing.AllocsPerRun(100, func() { w.pick() }); allocs != 0 {
		t.Fatalf("pick allocates %v", allocs)
	}
}
