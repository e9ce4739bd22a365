package dataplane

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/observe"
)

// BenchmarkProxyRequestPolicies serves a GET through a listener's handler to a
// loopback backend, as BenchmarkProxyRequestObservability does, with:
//
//   - off: no policy and no Observer;
//   - on: the typical policy set: retries (two, on 503 and the default failure
//     classes, within a retry budget), a circuit breaker with every cap, outlier
//     detection, a local rate limit per client address that never refuses, request
//     metrics and an access log line for every request (written to io.Discard);
//   - on+timeouts: on with a request timeout and a per-try timeout, which forward
//     the remaining time to the backend in a header.
//
// The ratio of each variant's ns/op to off's is what the policies cost a request.
func BenchmarkProxyRequestPolicies(b *testing.B) {
	addr := startBenchBackend(b)
	variants := []struct {
		name     string
		policies bool
		timeouts bool
	}{
		{name: "off"},
		{name: "on", policies: true},
		{name: "on+timeouts", policies: true, timeouts: true},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			snap := snapshotFor("bench", addr)
			var obs *observe.Observer
			if v.policies {
				withTypicalPolicies(snap, v.timeouts)
				obs = benchObserver(b, true, true, -1)
			}
			h := benchListenerHandler(b, obs, snap)
			req := httptest.NewRequest(http.MethodGet, "http://app.example.com/bench?q=1", nil)
			req.RemoteAddr = "192.0.2.1:4000"
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.status = 0
				clear(w.header)
				h.ServeHTTP(w, req)
				if w.status != http.StatusOK {
					b.Fatalf("status %d, want 200", w.status)
				}
			}
		})
	}
}

// withTypicalPolicies adds the policies of BenchmarkProxyRequestPolicies' "on"
// variants to the one rule and the one backend of a snapshotFor snapshot.
func withTypicalPolicies(snap *config.Snapshot, timeouts bool) {
	rule := &snap.Listeners[0].VirtualHosts[0].Routes[0].Rules[0]
	rule.Retry = &config.Retry{Attempts: 2, Codes: []int{http.StatusServiceUnavailable},
		Budget: &config.RetryBudget{Percent: 20, MinRetriesPerSecond: 10}}
	rule.Filters = []config.Filter{{Type: config.FilterRateLimit, RateLimit: &config.RateLimit{
		ID: "bench", Mode: config.RateLimitLocal,
		Rules: []config.RateLimitRule{{Key: config.RateLimitKey{Type: config.KeyClientIP}, Requests: 1 << 30, Per: config.Duration(time.Second)}},
	}}}
	if timeouts {
		rule.Timeouts = &config.Timeouts{Request: config.Duration(15 * time.Second)}
		rule.Retry.PerTryTimeout = config.Duration(5 * time.Second)
	}
	backend := &snap.Backends[0]
	backend.CircuitBreaker = &config.CircuitBreaker{MaxConnections: 1024, MaxPendingRequests: 1024, MaxRequests: 1024, MaxRetries: 3}
	backend.OutlierDetection = &config.OutlierDetection{Consecutive5xx: 5, ConsecutiveGatewayErrors: 5,
		Interval: config.Duration(10 * time.Second), BaseEjectionTime: config.Duration(30 * time.Second), MaxEjectionPercent: 50}
}
