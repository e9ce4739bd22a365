package dataplane

import (
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// limited adds a route-wide rate limit of n per minute to every rule of snap.
func limited(snap *config.Snapshot, n int64) *config.Snapshot {
	for i := range snap.Listeners[0].VirtualHosts[0].Routes {
		route := &snap.Listeners[0].VirtualHosts[0].Routes[i]
		for j := range route.Rules {
			route.Rules[j].Filters = append(route.Rules[j].Filters, config.Filter{Type: config.FilterRateLimit,
				RateLimit: &config.RateLimit{ID: "default/limit", Mode: config.RateLimitLocal, Rules: []config.RateLimitRule{{
					Key: config.RateLimitKey{Type: config.KeyRoute}, Requests: n, Per: config.Duration(time.Minute)}}}})
		}
	}
	return snap
}

func TestRateLimitBucketsSurviveRecompilation(t *testing.T) {
	e := newTestEngine(t)
	backend := startBackend(t, "ok")
	mustApply(t, e, limited(snapshotFor("one", backend), 2))
	url := "http://" + e.Addr("127.0.0.1:0") + "/"
	expectBody(t, url, "ok")
	expectBody(t, url, "ok")
	// A different configuration (another route) is compiled anew; the rule's bucket
	// is the same policy and must stay empty.
	second := snapshotFor("two", backend)
	vh := &second.Listeners[0].VirtualHosts[0]
	vh.Routes = append(vh.Routes, config.Route{Name: "default/other",
		Rules: []config.Rule{{Matches: []config.Match{{Path: &config.PathMatch{Type: config.PathPrefix, Value: "/other"}}},
			Backends: []config.BackendRef{{Backend: "default/b:80", Weight: 1}}}}})
	before := e.RouteCompilations()
	mustApply(t, e, limited(second, 2))
	if e.RouteCompilations() == before {
		t.Fatal("the second snapshot was not compiled; the test needs a recompilation")
	}
	if code, _ := get(t, url); code != http.StatusTooManyRequests {
		t.Fatalf("after recompiling: %d; want 429 from the surviving bucket", code)
	}
}
