package standalone_test

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testredis"
)

// rateLimitPolicyYAML is a TrafficPolicy named after the HTTPRoute it limits, with
// the given rateLimit stanza.
func rateLimitPolicyYAML(route, stanza string) string {
	return fmt.Sprintf(`apiVersion: switchyard.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: %s, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: %s}]
  rateLimit: %s
`, route, route, stanza)
}

// TestRateLimitLocalAndGlobal checks Local limits by client address, header and
// route with their response headers, then a Global limit shared by two gateway
// processes through one Redis, and that losing Redis under load with LocalFallback
// never turns into a server error.
func TestRateLimitLocalAndGlobal(t *testing.T) {
	t.Run("local", testLocalRateLimits)
	t.Run("global", testGlobalRateLimit)
}

func testLocalRateLimits(t *testing.T) {
	b := startBackend(t, "backend")
	port := freePort(t)
	g := startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": serviceYAML("app", "", b.port),
		"routes.yaml": routeYAML("by-client", "/client", "app") + "---\n" +
			routeYAML("by-user", "/user", "app") + "---\n" + routeYAML("by-route", "/route", "app"),
		"policies.yaml": rateLimitPolicyYAML("by-client", "{rules: [{key: {type: ClientIP}, requests: 5, per: 1m}]}") + "---\n" +
			rateLimitPolicyYAML("by-user", "{rules: [{key: {type: Header, name: x-user}, requests: 2, per: 1m}]}") + "---\n" +
			rateLimitPolicyYAML("by-route", "{mode: Local, rules: [{key: {type: Route}, requests: 3, per: 1m}]}"),
	}, "--trusted-proxies", "127.0.0.0/8")
	for _, name := range []string{"by-client", "by-user", "by-route"} {
		g.waitPolicyReason(t, name, "Accepted")
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	// Each client address (from X-Forwarded-For, sent by a trusted proxy) has its own
	// bucket of five.
	drainBucket(t, g, base+"/client", 5, "X-Forwarded-For", "192.0.2.1")
	if o := g.send(http.MethodGet, base+"/client", "X-Forwarded-For", "192.0.2.2"); o.status != http.StatusOK {
		t.Errorf("another client address: %s, want 200", o.key())
	}
	drainBucket(t, g, base+"/user", 2, "X-User", "alice")
	if o := g.send(http.MethodGet, base+"/user", "X-User", "bob"); o.status != http.StatusOK {
		t.Errorf("another x-user: %s, want 200", o.key())
	}
	// A Route key counts every client together.
	for i := range 3 {
		if o := g.send(http.MethodGet, base+"/route", "X-Forwarded-For", "192.0.2."+strconv.Itoa(10+i)); o.status != http.StatusOK {
			t.Errorf("route request %d: %s, want 200", i, o.key())
		}
	}
	if o := g.send(http.MethodGet, base+"/route", "X-Forwarded-For", "192.0.2.99", "X-User", "carol"); o.status != http.StatusTooManyRequests {
		t.Errorf("fourth request on the route from a new client: %s, want 429", o.key())
	}
}

// drainBucket sends limit admitted requests, checking the RateLimit headers count
// down, and one more that must be refused with Retry-After.
func drainBucket(t *testing.T, g *gateway, url string, limit int, headers ...string) {
	t.Helper()
	for i := range limit {
		o := g.send(http.MethodGet, url, headers...)
		if o.status != http.StatusOK {
			t.Fatalf("%s request %d of %d: %s, want 200", url, i+1, limit, o.key())
		}
		checkRateLimitHeaders(t, o.header, limit, limit-i-1)
	}
	o := g.send(http.MethodGet, url, headers...)
	if o.status != http.StatusTooManyRequests {
		t.Fatalf("%s request %d of a limit of %d: %s, want 429", url, limit+1, limit, o.key())
	}
	checkRateLimitHeaders(t, o.header, limit, 0)
	if s, err := strconv.Atoi(o.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("%s: 429 with Retry-After %q, want whole seconds, at least 1", url, o.header.Get("Retry-After"))
	}
}

func checkRateLimitHeaders(t *testing.T, h http.Header, limit, remaining int) {
	t.Helper()
	if got := h.Get("RateLimit-Limit"); got != strconv.Itoa(limit) {
		t.Errorf("RateLimit-Limit %q, want %d", got, limit)
	}
	if got := h.Get("RateLimit-Remaining"); got != strconv.Itoa(remaining) {
		t.Errorf("RateLimit-Remaining %q, want %d", got, remaining)
	}
	if s, err := strconv.Atoi(h.Get("RateLimit-Reset")); err != nil || s < 0 {
		t.Errorf("RateLimit-Reset %q, want whole seconds", h.Get("RateLimit-Reset"))
	}
}

// globalLimit is the shared limit: 20 a minute, so that refill during the test
// is small next to the capacity.
const globalLimit, globalPer = 20, time.Minute

func testGlobalRateLimit(t *testing.T) {
	redis := testredis.Start(t)
	b := startBackend(t, "backend")
	policies := rateLimitPolicyYAML("shared", fmt.Sprintf("{mode: Global, failureMode: LocalFallback, rules: [{key: {type: Route}, requests: %d, per: %v}]}", globalLimit, globalPer)) +
		"---\n" + rateLimitPolicyYAML("roomy", "{mode: Global, failureMode: LocalFallback, rules: [{key: {type: Route}, requests: 5000, per: 1s}]}")
	var gateways []*gateway
	var bases []string
	for range 2 {
		port := freePort(t)
		g := startGateway(t, map[string]string{
			"gateway.yaml":  gatewayYAML("gw", port),
			"services.yaml": serviceYAML("app", "", b.port),
			"routes.yaml":   routeYAML("shared", "/shared", "app") + "---\n" + routeYAML("roomy", "/roomy", "app"),
			"policy.yaml":   policies,
		}, "--redis-url", redis.URL())
		g.waitPolicyReason(t, "shared", "Accepted")
		g.waitPolicyReason(t, "roomy", "Accepted")
		gateways, bases = append(gateways, g), append(bases, fmt.Sprintf("http://127.0.0.1:%d", port))
	}

	start := time.Now()
	admitted := []int{0, 0}
	for i := range 60 {
		switch o := gateways[i%2].send(http.MethodGet, bases[i%2]+"/shared"); o.status {
		case http.StatusOK:
			admitted[i%2]++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("request %d: %s, want 200 or 429", i, o.key())
		}
	}
	// Each process leases at most one token at a time at this rate, and may hold two
	// leases; refill adds one token per three seconds.
	refill := int(math.Ceil(time.Since(start).Seconds() * globalLimit / globalPer.Seconds()))
	bound := globalLimit + refill + 2*2
	total := admitted[0] + admitted[1]
	t.Logf("admitted %v of 60 through two gateways sharing a limit of %d (bound %d)", admitted, globalLimit, bound)
	if total > bound || total < globalLimit-2*2 {
		t.Errorf("two gateways admitted %d requests (%v) under a shared limit of %d, want %d to %d",
			total, admitted, globalLimit, globalLimit-4, bound)
	}
	if admitted[0] == 0 || admitted[1] == 0 {
		t.Errorf("admitted %v: one gateway admitted nothing", admitted)
	}

	checkRedisOutage(t, redis, gateways, bases)
}

// checkRedisOutage keeps both gateways under load on both routes while Redis goes
// away and comes back. No request may fail with a server error or a broken
// connection; the exhausted shared limit keeps answering 429 or 200, and the roomy
// limit, far above the load, admits every request: LocalFallback enforces the limit
// locally instead of refusing.
func checkRedisOutage(t *testing.T, redis *testredis.Server, gateways []*gateway, bases []string) {
	stop := make(chan struct{})
	var mu sync.Mutex
	counts := map[string]int{}
	roomyDuringOutage := 0
	down := false
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := []string{"/shared", "/roomy"}[w/2]
			g, url := gateways[w%2], bases[w%2]+path
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				o := g.send(http.MethodGet, url)
				mu.Lock()
				counts[path+" "+o.key()]++
				if down && path == "/roomy" {
					roomyDuringOutage++
				}
				mu.Unlock()
			}
		}()
	}
	setDown := func(v bool) {
		mu.Lock()
		down = v
		mu.Unlock()
	}
	time.Sleep(500 * time.Millisecond)
	redis.Stop()
	setDown(true)
	time.Sleep(1500 * time.Millisecond)
	setDown(false)
	redis.Restart()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	t.Logf("under load while Redis went away for 1.5 s and came back: %v", counts)
	for key, n := range counts {
		if key != "/shared backend" && key != "/shared status 429" && key != "/roomy backend" {
			t.Errorf("%d requests got %s, want only 200 or, on /shared, 429", n, key)
		}
	}
	if roomyDuringOutage == 0 {
		t.Errorf("no request was sent to /roomy while Redis was away; the check proves nothing")
	}
}
