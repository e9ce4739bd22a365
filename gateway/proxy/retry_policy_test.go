package proxy

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/plugins"
)

// failWith answers every request with status and counts them.
func failWith(status int, calls *atomic.Int32) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(status)
	}
}

func retryGateway(t *testing.T, addr string, retry config.Retry) *gateway {
	t.Helper()
	return newGateway(t, Options{}, []config.Backend{httpBackend("f", ready(addr))}, config.Rule{
		Retry: &retry, Backends: []config.BackendRef{{Backend: "f", Weight: 1}},
	}, nil)
}

func TestRetryConditionClasses(t *testing.T) {
	cases := []struct {
		on     []config.RetryCondition
		status int
		calls  int32
	}{
		{[]config.RetryCondition{config.RetryGatewayError}, 502, 3},
		{[]config.RetryCondition{config.RetryGatewayError}, 504, 3},
		{[]config.RetryCondition{config.RetryGatewayError}, 500, 1},
		{[]config.RetryCondition{config.Retry5xx}, 500, 3},
		{[]config.RetryCondition{config.Retry5xx}, 429, 1},
		{[]config.RetryCondition{config.RetryReset}, 503, 1},
		{nil, 503, 1},
	}
	for _, tc := range cases {
		var calls atomic.Int32
		g := retryGateway(t, startBackend(t, failWith(tc.status, &calls)), config.Retry{Attempts: 2, On: tc.on})
		if status, _ := post(t, g, "x"); status != tc.status || calls.Load() != tc.calls {
			t.Errorf("on %v, status %d: %d after %d calls; want %d calls", tc.on, tc.status, status, calls.Load(), tc.calls)
		}
	}
}

func TestRetryIdempotentOnly(t *testing.T) {
	var calls atomic.Int32
	addr := startBackend(t, failWith(503, &calls))
	g := retryGateway(t, addr, config.Retry{Attempts: 2, Codes: []int{503}, IdempotentOnly: true})
	if status, _ := post(t, g, "x"); status != 503 || calls.Load() != 1 {
		t.Fatalf("POST under IdempotentOnly: %d after %d calls; want one try", status, calls.Load())
	}
	calls.Store(0)
	req, _ := http.NewRequest(http.MethodPut, g.url+"/", strings.NewReader("x"))
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if calls.Load() != 3 {
		t.Fatalf("PUT under IdempotentOnly: %d calls; want 3 (PUT is idempotent)", calls.Load())
	}
	// A connect failure is retried even for a POST: the backend never saw it.
	var live atomic.Int32
	eps := ready(closedAddr(t), startBackend(t, flaky(0, &live)))
	g2 := newGateway(t, Options{}, []config.Backend{httpBackend("f", eps)}, config.Rule{
		Retry:    &config.Retry{Attempts: 1, IdempotentOnly: true},
		Backends: []config.BackendRef{{Backend: "f", Weight: 1}},
	}, nil)
	for i := range 6 {
		if status, _ := post(t, g2, "x"); status != http.StatusOK {
			t.Fatalf("POST %d with a refusing endpoint: %d", i, status)
		}
	}
}

func TestRetryBudgetBoundsAmplification(t *testing.T) {
	var calls atomic.Int32
	addr := startBackend(t, failWith(503, &calls))
	g := retryGateway(t, addr, config.Retry{Attempts: 3, Codes: []int{503},
		Budget: &config.RetryBudget{Percent: 20}})
	const requests = 100
	for range requests {
		post(t, g, "x")
	}
	// Without a budget this would be 400 calls; with it, retries stay within 20% of
	// the requests (plus the one retry that the check lets through before counting).
	if n := calls.Load(); n < requests || n > requests+requests/5+1 {
		t.Fatalf("%d backend calls for %d requests; want at most %d", n, requests, requests+requests/5+1)
	}
	t.Logf("amplification with a 20%% budget under a failing backend: %.2f", float64(calls.Load())/requests)
}

func TestRetryPrefersAnotherEndpoint(t *testing.T) {
	var bad, good atomic.Int32
	eps := ready(startBackend(t, failWith(503, &bad)), startBackend(t, flaky(0, &good)))
	g := newGateway(t, Options{}, []config.Backend{httpBackend("f", eps)}, config.Rule{
		Retry:    &config.Retry{Attempts: 1, Codes: []int{503}},
		Backends: []config.BackendRef{{Backend: "f", Weight: 1}},
	}, nil)
	for i := range 20 {
		if status, _ := post(t, g, "x"); status != http.StatusOK {
			t.Fatalf("request %d: %d; the retry went back to the failing endpoint", i, status)
		}
	}
}

func TestRetryPerTryTimeout(t *testing.T) {
	var calls atomic.Int32
	addr := startBackend(t, slowFirst(1, &calls))
	g := retryGateway(t, addr, config.Retry{Attempts: 1, PerTryTimeout: dur(100 * time.Millisecond),
		On: []config.RetryCondition{config.RetryGatewayError}})
	start := time.Now()
	if status, body := post(t, g, "x"); status != http.StatusOK || body != "fast" || calls.Load() != 2 {
		t.Fatalf("got %d %q after %d calls; want the second try", status, body, calls.Load())
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the per-try timeout did not cut the first try: %v", took)
	}
}

func TestRetryBackoffStaysWithinBounds(t *testing.T) {
	p := newRetryPolicy(&config.Retry{Attempts: 5, Backoff: dur(25 * time.Millisecond), MaxBackoff: dur(250 * time.Millisecond)})
	for n := 1; n <= 8; n++ {
		ceiling := min(250*time.Millisecond, 25*time.Millisecond<<(n-1))
		for range 200 {
			if w := p.wait(n); w < 25*time.Millisecond || w > ceiling {
				t.Fatalf("wait before retry %d is %v; want within [25ms, %v]", n, w, ceiling)
			}
		}
	}
	constant := newRetryPolicy(&config.Retry{Attempts: 1, Backoff: dur(40 * time.Millisecond)})
	if constant.wait(5) != 40*time.Millisecond {
		t.Fatalf("without maxBackoff the wait is %v; want 40ms", constant.wait(5))
	}
}

func TestRetryBudgetWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	b := &retryBudget{percent: 10, minRPS: 1, now: func() time.Time { return now }}
	// The minimum allows ten retries in the window with no requests at all.
	for i := range 10 {
		if !b.allows() {
			t.Fatalf("retry %d denied within minRetriesPerSecond", i)
		}
		b.retried()
	}
	if b.allows() {
		t.Fatal("an eleventh retry was allowed with no requests")
	}
	for range 10 {
		b.request()
	}
	if !b.allows() {
		t.Fatal("10% of ten requests allows one more retry")
	}
	// After the window passes, the old counts are gone.
	now = now.Add(budgetWindow * time.Second)
	b.retried()
	if !b.allows() {
		t.Fatal("retries of a past window still count")
	}
}

func TestCircuitBreakerAnswers503AtOnce(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	stalled := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})
	b := httpBackend("f", ready(stalled))
	b.CircuitBreaker = &config.CircuitBreaker{MaxRequests: 2}
	g := newGateway(t, Options{}, []config.Backend{b}, config.Rule{Backends: []config.BackendRef{{Backend: "f", Weight: 1}}}, nil)
	done := make(chan int, 2)
	for range 2 {
		go func() {
			status, _, _ := g.get(t, "/")
			done <- status
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	status, reason, _ := g.get(t, "/")
	if status != http.StatusServiceUnavailable || reason != "circuit-open" || time.Since(start) > time.Second {
		t.Fatalf("third request: %d %q after %v; want an immediate 503 circuit-open", status, reason, time.Since(start))
	}
	close(release)
	for range 2 {
		if s := <-done; s != http.StatusOK {
			t.Errorf("an admitted request got %d", s)
		}
	}
	if status, _, _ := g.get(t, "/"); status != http.StatusOK {
		t.Fatalf("after the load went: %d", status)
	}
}

func TestOutlierDetectionStopsTrafficToAFailingEndpoint(t *testing.T) {
	var bad, good1, good2 atomic.Int32
	b := httpBackend("f", ready(startBackend(t, failWith(503, &bad)),
		startBackend(t, flaky(0, &good1)), startBackend(t, flaky(0, &good2))))
	b.OutlierDetection = &config.OutlierDetection{ConsecutiveGatewayErrors: 3,
		BaseEjectionTime: dur(time.Minute), MaxEjectionPercent: 50}
	g := newGateway(t, Options{}, []config.Backend{b}, config.Rule{Backends: []config.BackendRef{{Backend: "f", Weight: 1}}}, nil)
	failures := 0
	for range 60 {
		if status, _ := post(t, g, "x"); status != http.StatusOK {
			failures++
		}
	}
	if bad.Load() != 3 || failures != 3 {
		t.Fatalf("the failing endpoint got %d requests (%d failed answers); want 3 before its ejection", bad.Load(), failures)
	}
}

// TestUnusedRetryBudgetsAreDropped checks that the budgets kept for backends do not
// pile up as backends and budget settings come and go: a configuration going into
// service keeps the budgets its handlers use, with their counts, and drops the rest.
func TestUnusedRetryBudgetsAreDropped(t *testing.T) {
	m := backend.NewManager(backend.Options{})
	t.Cleanup(m.Close)
	p := New(m, Options{})
	retry := &config.Retry{Attempts: 1, Budget: &config.RetryBudget{Percent: 20, MinRetriesPerSecond: 1}}
	build := func(backends ...string) {
		t.Helper()
		rule := config.Rule{Retry: retry}
		for _, b := range backends {
			rule.Backends = append(rule.Backends, config.BackendRef{Backend: b, Weight: 1})
		}
		if _, err := p.RuleHandler(plugins.Context{Upstream: m}, &rule); err != nil {
			t.Fatal(err)
		}
		p.RetainOutcomes(backends)
	}
	kept := func(backend string) *retryBudget {
		b, ok := p.budgets.Load(backend + "/20/1")
		if !ok {
			return nil
		}
		return b.(*retryBudget)
	}
	build("ns/a:80", "ns/b:80")
	a := kept("ns/a:80")
	if a == nil || kept("ns/b:80") == nil {
		t.Fatal("the budgets of the configuration in service were dropped")
	}
	a.request()
	build("ns/a:80")
	if kept("ns/b:80") != nil {
		t.Fatal("the budget of a backend no longer in service was kept")
	}
	if kept("ns/a:80") != a {
		t.Fatal("the budget of a backend still in service was replaced, losing its counts")
	}
}
