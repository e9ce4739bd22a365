package standalone_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// errorHeader is the response header in which the gateway says which of its parts
// produced an error response.
const errorHeader = "X-Switchyard-Error"

// retryPolicyYAML is a TrafficPolicy on HTTPRoute app retrying gateway errors twice,
// with extra settings appended to its retry stanza.
func retryPolicyYAML(extra string) string {
	return `apiVersion: switchyard.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: retry, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: app}]
  retry:
    attempts: 2
    retryOn: [gateway-error]
    backoff: {base: 1ms, max: 5ms}
` + extra
}

// TestRetryPolicyMasksAFailingEndpoint puts one always-failing endpoint among three
// and checks that a retry policy hides it from clients, retrying on another endpoint,
// while POSTs are retried only when the policy allows non-idempotent retries, and
// that reset connections (with retryOn reset) and tries cut off by the per-try
// timeout (as gateway errors) are retried too.
func TestRetryPolicyMasksAFailingEndpoint(t *testing.T) {
	good1, bad, good2 := startBackend(t, "good-1"), startBackend(t, "bad"), startBackend(t, "good-2")
	bad.set(behaviour{status: http.StatusServiceUnavailable})
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": serviceYAML("app", "", good1.port, bad.port, good2.port),
		"routes.yaml":   routeYAML("app", "/", "app"),
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	without := g.tally(url, 30)
	if without["status 503"] == 0 {
		t.Fatalf("without a policy no request failed (%v): the failing endpoint is not in use", without)
	}

	g.addManifest(t, "policy.yaml", retryPolicyYAML(""))
	g.waitPolicyReason(t, "retry", "Accepted")
	badBefore := bad.hits(http.MethodGet)
	outcomes := map[string]int{}
	for i := range 200 {
		outcomes[g.send(http.MethodGet, url, "X-Request-Id", "get-"+strconv.Itoa(i)).key()]++
	}
	if outcomes["good-1"]+outcomes["good-2"] != 200 {
		t.Errorf("with retries: outcomes %v, want 200 of 200 answered by good endpoints", outcomes)
	}
	if bad.hits(http.MethodGet) == badBefore {
		t.Errorf("the failing endpoint got no first tries, so nothing was retried")
	}
	if ids := bad.repeatedIDs(); len(ids) > 0 {
		t.Errorf("retries went back to the endpoint that had just failed them: %v", ids)
	}

	// POST is not idempotent: a failed try is answered as it is.
	failed, tried := postTally(t, g, url, bad, 30)
	if tried == 0 {
		t.Fatalf("no POST reached the failing endpoint; the check proves nothing")
	}
	if tried != failed {
		t.Errorf("POST: the failing endpoint got %d POSTs but clients saw %d failures: POSTs were retried", tried, failed)
	}

	g.applyManifest(t, "policy.yaml", retryPolicyYAML("    nonIdempotent: true\n"))
	if failed, tried = postTally(t, g, url, bad, 30); failed != 0 || tried == 0 {
		t.Errorf("POST with nonIdempotent: %d failures, %d tries on the failing endpoint; want 0 failures after some tries", failed, tried)
	}

	// A reset connection is retried when the policy says so.
	bad.set(behaviour{reset: true})
	g.applyManifest(t, "policy.yaml", strings.Replace(retryPolicyYAML(""), "[gateway-error]", "[reset]", 1))
	badBefore = bad.hits(http.MethodGet)
	if got := g.tally(url, 15); got["good-1"]+got["good-2"] != 15 || bad.hits(http.MethodGet) == badBefore {
		t.Errorf("resetting endpoint with retryOn [reset]: outcomes %v after %d tries on it, want 15 of 15 answered after some",
			got, bad.hits(http.MethodGet)-badBefore)
	}

	// A stalled try runs out its per-try timeout, which counts as a gateway error.
	bad.set(behaviour{stall: true})
	g.applyManifest(t, "policy.yaml", retryPolicyYAML("    perTryTimeout: 100ms\n"))
	badBefore = bad.hits(http.MethodGet)
	if got := g.tally(url, 15); got["good-1"]+got["good-2"] != 15 {
		t.Errorf("stalling endpoint with perTryTimeout: outcomes %v, want 15 of 15 answered", got)
	}
	if bad.hits(http.MethodGet) == badBefore {
		t.Errorf("the stalling endpoint got no tries, so no per-try timeout was retried")
	}
}

// postTally sends n POSTs and returns how many failed with 503 and how many reached
// the failing endpoint meanwhile. Any other failure fails the test.
func postTally(t *testing.T, g *gateway, url string, bad *loopbackBackend, n int) (failed, tried int) {
	t.Helper()
	before := bad.hits(http.MethodPost)
	for range n {
		switch o := g.send(http.MethodPost, url); {
		case o.status == http.StatusServiceUnavailable:
			failed++
		case o.status != http.StatusOK:
			t.Errorf("POST: %s, want 200 or the failing endpoint's 503", o.key())
		}
	}
	return failed, bad.hits(http.MethodPost) - before
}

// TestDeadlineHeader checks the caller's deadline: none left is refused at once
// without reaching a backend, a short one cuts a stalled backend off in about that
// time, a malformed one is ignored, and the backend is told what remains of the
// smaller of the caller's deadline and the route's own timeout.
func TestDeadlineHeader(t *testing.T) {
	b := startBackend(t, "backend")
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": serviceYAML("app", "", b.port),
		"routes.yaml":   routeYAML("plain", "/plain", "app") + "---\n" + routeYAML("bounded", "/bounded", "app"),
		"policy.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: bounded, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: bounded}]
  timeout: {request: 1s}
`,
	})
	g.waitPolicyReason(t, "bounded", "Accepted")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	for _, spent := range []string{"0", "-5"} {
		before := b.hits("")
		o := g.send(http.MethodGet, base+"/plain", "X-Switchyard-Deadline-Ms", spent)
		if o.status != http.StatusGatewayTimeout || o.header.Get(errorHeader) != "deadline-exceeded" {
			t.Errorf("deadline %s: %s (%s %q), want 504 deadline-exceeded", spent, o.key(), errorHeader, o.header.Get(errorHeader))
		}
		if b.hits("") != before {
			t.Errorf("deadline %s: the backend was contacted", spent)
		}
	}

	cases := []struct {
		path, sent string
		// maxMs is the largest deadline the backend may be told; zero means none at all.
		maxMs int
	}{
		{"/plain", "soon", 0},
		{"/plain", "5000", 4999},
		{"/bounded", "soon", 1000},
		{"/bounded", "5000", 1000},
		{"/bounded", "300", 300},
	}
	for _, c := range cases {
		o := g.send(http.MethodGet, base+c.path, "X-Switchyard-Deadline-Ms", c.sent)
		got := b.lastDeadline()
		if o.status != http.StatusOK {
			t.Errorf("%s with deadline %q: %s, want 200", c.path, c.sent, o.key())
			continue
		}
		checkForwardedDeadline(t, c.path+" with deadline "+strconv.Quote(c.sent), got, c.maxMs)
	}

	b.set(behaviour{stall: true})
	defer b.release()
	start := time.Now()
	o := g.send(http.MethodGet, base+"/plain", "X-Switchyard-Deadline-Ms", "100")
	took := time.Since(start)
	if o.status != http.StatusGatewayTimeout || o.header.Get(errorHeader) != "deadline-exceeded" {
		t.Errorf("stalled backend with deadline 100: %s (%s %q), want 504 deadline-exceeded", o.key(), errorHeader, o.header.Get(errorHeader))
	}
	// The backend never answers, so the answer can only come from the deadline; the
	// upper bound is loose since the race detector slows everything down.
	if took < 95*time.Millisecond || took > 2*time.Second {
		t.Errorf("stalled backend with deadline 100ms answered after %v", took)
	}
	got := b.lastDeadline()
	checkForwardedDeadline(t, "stalled backend with deadline 100", got, 100)
}

// checkForwardedDeadline checks the deadline header a backend received: absent when
// maxMs is zero, else a whole number of milliseconds from 1 to maxMs.
func checkForwardedDeadline(t *testing.T, what, got string, maxMs int) {
	t.Helper()
	if maxMs == 0 {
		if got != "" {
			t.Errorf("%s: the backend was told a deadline of %q, want none", what, got)
		}
		return
	}
	ms, err := strconv.Atoi(got)
	if err != nil || ms < 1 || ms > maxMs {
		t.Errorf("%s: the backend was told a deadline of %q, want 1 to %d ms", what, got, maxMs)
	}
}

// TestCircuitBreakerSheds holds two requests on a stalled backend whose breaker
// allows two at once, and expects every further request to be answered 503 at once,
// saying the breaker tripped, without reaching the backend.
func TestCircuitBreakerSheds(t *testing.T) {
	b := startBackend(t, "backend")
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": serviceYAML("app", "", b.port),
		"routes.yaml":   routeYAML("app", "/", "app"),
		"policy.yaml": `apiVersion: switchyard.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: breaker, namespace: default}
spec:
  targetRefs: [{group: "", kind: Service, name: app}]
  circuitBreaker: {maxRequests: 2}
`,
	})
	g.waitPolicyReason(t, "breaker", "Accepted")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	b.set(behaviour{stall: true})
	held := make(chan sendOutcome, 2)
	for range 2 {
		go func() { held <- g.send(http.MethodGet, url) }()
	}
	waitFor(t, 10*time.Second, func() bool { return b.inFlight.Load() == 2 })

	const extra = 8
	shed := make([]sendOutcome, extra)
	took := make([]time.Duration, extra)
	var wg sync.WaitGroup
	for i := range extra {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			shed[i] = g.send(http.MethodGet, url)
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i, o := range shed {
		if o.status != http.StatusServiceUnavailable || o.header.Get(errorHeader) != "circuit-open" {
			t.Errorf("request %d over the cap: %s (%s %q), want 503 circuit-open", i, o.key(), errorHeader, o.header.Get(errorHeader))
		}
		// The held requests stall without end, so an answer can only be the breaker's.
		if took[i] > 2*time.Second {
			t.Errorf("request %d over the cap took %v to be refused", i, took[i])
		}
	}
	if n := b.hits(""); n != 2 {
		t.Errorf("the backend received %d requests, want only the 2 held ones", n)
	}

	b.set(behaviour{})
	b.release()
	for range 2 {
		if o := <-held; o.status != http.StatusOK {
			t.Errorf("held request: %s, want 200 once released", o.key())
		}
	}
	if o := g.send(http.MethodGet, url); o.status != http.StatusOK {
		t.Errorf("after the held requests finished: %s, want 200", o.key())
	}
}

// TestOutlierEjection makes one of two endpoints fail and expects it to be ejected
// at its third failure in a row, to get no traffic for its ejection time even when
// the other endpoint starts failing too (ejecting that one as well would exceed
// maxEjectionPercent), and to be tried again afterwards.
func TestOutlierEjection(t *testing.T) {
	good, bad := startBackend(t, "good"), startBackend(t, "bad")
	bad.set(behaviour{status: http.StatusInternalServerError})
	port := freePort(t)
	const ejection = 3 * time.Second
	g := startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": serviceYAML("app", "", good.port, bad.port),
		"routes.yaml":   routeYAML("app", "/", "app"),
		"policy.yaml": fmt.Sprintf(`apiVersion: switchyard.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: outliers, namespace: default}
spec:
  targetRefs: [{group: "", kind: Service, name: app}]
  outlierDetection: {consecutive5xx: 3, baseEjectionTime: %s, maxEjectionPercent: 50}
`, ejection),
	})
	g.waitPolicyReason(t, "outliers", "Accepted")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	for i := 0; i < 50 && bad.hits("") < 3; i++ {
		g.send(http.MethodGet, url)
	}
	ejected := time.Now()
	if n := bad.hits(""); n != 3 {
		t.Fatalf("the failing endpoint got %d requests, want 3 before its ejection", n)
	}

	// For a second only the good endpoint serves.
	sent := 0
	for ; time.Since(ejected) < time.Second && sent < 500; sent++ {
		if o := g.send(http.MethodGet, url); o.key() != "good" {
			t.Fatalf("request %d after the ejection: %s, want good", sent, o.key())
		}
	}
	// Then the good endpoint fails too; it must not be ejected, since that would put
	// both endpoints (over 50%) out, so it keeps all the traffic and its errors.
	good.set(behaviour{status: http.StatusInternalServerError})
	for i := range 10 {
		if o := g.send(http.MethodGet, url); o.status != http.StatusInternalServerError {
			t.Errorf("request %d while both fail: %s, want the good endpoint's 500", i, o.key())
		}
	}
	if n := bad.hits(""); n != 3 || time.Since(ejected) > ejection {
		t.Fatalf("the ejected endpoint got %d requests within %v of its ejection, want 3 within %v",
			n, time.Since(ejected).Round(time.Millisecond), ejection)
	}
	good.set(behaviour{})
	t.Logf("%d requests in the first second of the ejection, none to the ejected endpoint", sent)

	time.Sleep(time.Until(ejected.Add(ejection + 200*time.Millisecond)))
	for i := 0; i < 20 && bad.hits("") == 3; i++ {
		g.send(http.MethodGet, url)
	}
	if bad.hits("") == 3 {
		t.Errorf("the ejected endpoint got no traffic after its ejection time")
	}
}
