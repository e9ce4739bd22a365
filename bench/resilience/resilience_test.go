package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/controller/source/files"
	"github.com/switchyard-dev/switchyard/gateway/ratelimit"
)

// runAgainst sends n requests to b and returns their results.
func runAgainst(t *testing.T, b *backend, n int) []result {
	t.Helper()
	results, err := runLoad(context.Background(), loadSpec{Targets: []string{b.url() + "/"}, Requests: n,
		Concurrency: 2, MaxDuration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != n {
		t.Fatalf("%d results, want %d", len(results), n)
	}
	return results
}

func TestBackendModes(t *testing.T) {
	b, err := startBackend("one", modeOK)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()

	for _, res := range runAgainst(t, b, 5) {
		if res.Status != http.StatusOK || res.Backend != "one" {
			t.Fatalf("ok mode: status %d from %q", res.Status, res.Backend)
		}
	}
	b.setMode(modeFail)
	if c := countStatuses(runAgainst(t, b, 5)); c.server5xx != 5 {
		t.Fatalf("fail mode: %+v, want five 5xx", c)
	}
	b.setMode(modeReset)
	if c := countStatuses(runAgainst(t, b, 5)); c.failed != 5 {
		t.Fatalf("reset mode: %+v, want five requests without an answer", c)
	}
	b.setMode(modeSlow)
	b.setDelay(30 * time.Millisecond)
	for _, res := range runAgainst(t, b, 3) {
		if res.Status != http.StatusOK || res.Latency < 30*time.Millisecond {
			t.Fatalf("slow mode: status %d after %s", res.Status, res.Latency)
		}
	}
	if got := b.requests(); got != 18 {
		t.Fatalf("backend counted %d requests, want 18", got)
	}
}

func TestLoadIsPacedAndBounded(t *testing.T) {
	b, err := startBackend("one", modeOK)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	// 50 requests at 100/s take about half a second; the time cap stops a run that
	// would take ten.
	results, err := runLoad(context.Background(), loadSpec{Targets: []string{b.url()}, Requests: 50, Rate: 100,
		Concurrency: 4, MaxDuration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := results[len(results)-1].Sent.Sub(results[0].Sent); got < 400*time.Millisecond {
		t.Fatalf("50 requests at 100/s started within %s", got)
	}
	results, err = runLoad(context.Background(), loadSpec{Targets: []string{b.url()}, Requests: 1000, Rate: 100,
		Concurrency: 4, MaxDuration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) >= 100 {
		t.Fatalf("%d requests sent within a 300 ms cap at 100/s", len(results))
	}
}

func TestLoadRefusesOtherHosts(t *testing.T) {
	for _, target := range []string{"http://192.0.2.1/", "http://example.com/", "::"} {
		_, err := runLoad(context.Background(), loadSpec{Targets: []string{target}, Requests: 1, Concurrency: 1, MaxDuration: time.Second})
		if err == nil {
			t.Errorf("target %q accepted", target)
		}
	}
}

func TestQuantile(t *testing.T) {
	values := []int64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for q, want := range map[float64]int64{0.5: 5, 0.99: 10, 0.1: 1, 0: 1, 1: 10} {
		if got := quantile(values, q); got != want {
			t.Errorf("quantile(%v) = %d, want %d", q, got, want)
		}
	}
	if quantile([]int64(nil), 0.5) != 0 {
		t.Error("quantile of nothing is not zero")
	}
}

func TestBucketAllows(t *testing.T) {
	limit := ratelimit.Limit{Requests: 100, Per: time.Second, Burst: 20}
	// Full at the start (120), then 100 per second: 5.5 s refill 550.
	if got := bucketAllows(limit, 5500*time.Millisecond); got != 670 {
		t.Fatalf("bucketAllows = %d, want 670", got)
	}
	perMinute := ratelimit.Limit{Requests: 60, Per: time.Minute}
	if got := bucketAllows(perMinute, 2500*time.Millisecond); got != 62 {
		t.Fatalf("bucketAllows per minute = %d, want 62", got)
	}
}

func TestAmplificationBound(t *testing.T) {
	// 4000 requests in one window: 1 + 20% + (10/s x 10 s + 64 in flight) / 4000.
	if got, want := amplificationBound(4000, 4*time.Second), 1+0.2+164.0/4000; got != want {
		t.Fatalf("bound %v, want %v", got, want)
	}
}

func TestFindRollout(t *testing.T) {
	bodies := []string{
		`{"rollouts":[{"namespace":"default","name":"other","phase":"Promoted"},{"namespace":"default","name":"r","accepted":true,"phase":"Progressing","currentStep":1,"steps":3,"canaryWeight":50}]}`,
	}
	for _, body := range bodies {
		obs, err := findRollout([]byte(body), "r")
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if obs.phase != "Progressing" || obs.step != 1 || obs.weight != 50 {
			t.Fatalf("%s: read %+v", body, obs)
		}
	}
	if _, err := findRollout([]byte(`{"rollouts":[{"namespace":"other","name":"r"}]}`), "r"); err == nil {
		t.Fatal("a missing rollout was found")
	}
}

func TestSummariseAttributesResponsesToSteps(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	timeline := []observation{
		{at: at(0), phase: "Progressing", step: 0, weight: 20},
		{at: at(100), phase: "Progressing", step: 1, weight: 50},
		{at: at(200), phase: "Promoted", step: 2, weight: 100},
	}
	results := []result{
		{Sent: at(10), Status: 200, Backend: "stable"}, {Sent: at(20), Status: 200, Backend: "canary"},
		{Sent: at(110), Status: 200, Backend: "canary"}, {Sent: at(120), Status: 0},
		{Sent: at(210), Status: 200, Backend: "canary"},
	}
	run := summarise(timeline, results, at(-50), "canary")
	if run.final != "Promoted" || run.elapsed != 250*time.Millisecond || len(run.steps) != 2 {
		t.Fatalf("run %+v", run)
	}
	if s := run.steps[0]; s.canary != 1 || s.total != 2 {
		t.Fatalf("step 0 counted %+v", s)
	}
	if s := run.steps[1]; s.canary != 1 || s.total != 1 {
		t.Fatalf("step 1 counted %+v", s)
	}
	if run.after.canary != 1 || run.after.total != 1 {
		t.Fatalf("after counted %+v", run.after)
	}
}

// TestManifestsLoad writes every scenario's kind of manifest and loads it with the
// standalone file source, which decodes strictly as an API server would.
func TestManifestsLoad(t *testing.T) {
	b, err := startBackend("one", modeOK)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	m := baseManifests(20000, b, b, b)
	m.add(trafficPolicy("p", "main", v1alpha1.TrafficPolicySpec{Retry: retryPolicy(2, nil),
		RateLimit: globalRateLimit(10, "1s", 0, "LocalFallback")}))
	m.add(rolloutObject("r", rolloutSteps(), rolloutAnalysis()))
	dir := t.TempDir()
	if err := m.write(dir); err != nil {
		t.Fatal(err)
	}
	in, err := files.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Gateways) != 1 || len(in.HTTPRoutes) != 2 || len(in.Services) != 2 || len(in.EndpointSlices) != 3 ||
		len(in.TrafficPolicies) != 1 || len(in.Rollouts) != 1 {
		t.Fatalf("loaded %d gateways, %d routes, %d services, %d slices, %d policies, %d rollouts",
			len(in.Gateways), len(in.HTTPRoutes), len(in.Services), len(in.EndpointSlices),
			len(in.TrafficPolicies), len(in.Rollouts))
	}
	if got := in.TrafficPolicies[0].Spec.RateLimit.Rules[0].Requests; got != 10 {
		t.Fatalf("rate limit read back as %d requests", got)
	}
}
