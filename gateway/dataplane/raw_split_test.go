package dataplane

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/observe"
)

// A rule that splits its requests by weight among backends without filters of
// their own is served on the raw path too: each request goes to a backend picked
// by weight, as the rule's handler picks one, and counts against that backend.

// splitBackend answers every request with a field in lower case, which shows
// whether the raw path relayed the answer as it came, and counts the requests.
func splitBackend(t *testing.T) (string, func() int) {
	t.Helper()
	return countingBackend(t, func(_ int, w http.ResponseWriter) {
		w.Header()["x-lower"] = []string{"v"}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "ok")
	})
}

// splitSnapshot is snapshotFor's route, its rule splitting requests among refs.
func splitSnapshot(refs []config.BackendRef, addrs map[string]string) *config.Snapshot {
	snap := snapshotFor("split", "")
	snap.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Backends = refs
	snap.Backends = nil
	for name, addr := range addrs {
		snap.Backends = append(snap.Backends, config.Backend{Name: name, Protocol: config.AppProtocolHTTP1,
			Endpoints: []config.Endpoint{{Address: addr, Ready: true, Serving: true}}})
	}
	return snap
}

func TestRawForwardingSplitsByWeight(t *testing.T) {
	rawServed := rawServedHere(t)
	stable, stableCount := splitBackend(t)
	canary, canaryCount := splitBackend(t)
	idle, idleCount := splitBackend(t)
	refs := []config.BackendRef{{Backend: "default/stable:80", Weight: 1}, {Backend: "default/canary:80", Weight: 1},
		{Backend: "default/idle:80", Weight: 0}}
	snap := splitSnapshot(refs, map[string]string{"default/stable:80": stable, "default/canary:80": canary, "default/idle:80": idle})
	reg := prometheus.NewRegistry()
	obs, err := observe.New(observe.Options{Registerer: reg, RouteMetrics: observe.RouteMetricsFull})
	if err != nil {
		t.Fatal(err)
	}
	e := New(Options{Forwarding: ForwardRaw, Observer: obs})
	t.Cleanup(func() { shutdownEngine(e) })
	mustApply(t, e, snap)
	addr := e.Addr("127.0.0.1:0")
	const requests = 100
	relayed := 0
	for range requests {
		wire := exchange(t, addr, "GET /split HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
		if res := parseResponses(t, wire, http.MethodGet); res[0].status != http.StatusOK {
			t.Fatalf("status %d, want 200", res[0].status)
		}
		if bytes.Contains(wire, []byte("\r\nx-lower: v\r\n")) {
			relayed++
		}
	}
	if want := map[bool]int{true: requests, false: 0}[rawServed]; relayed != want {
		t.Errorf("%d answers relayed as they came, want %d", relayed, want)
	}
	// An even split of 100 requests leaves fewer than 20 to one side about once
	// in two billion runs.
	if s, c := stableCount(), canaryCount(); s < 20 || c < 20 || s+c != requests || idleCount() != 0 {
		t.Errorf("stable got %d, canary %d, the backend of weight 0 %d, of %d requests", s, c, idleCount(), requests)
	}
	settle(t, reg)
	counts := countsOf(t, reg)
	for backend, count := range map[string]int{"default/stable:80": stableCount(), "default/canary:80": canaryCount()} {
		key := fmt.Sprintf(`switchyard_requests_total{backend=%q|code="2xx"|route="default/r"}`, backend)
		if counts[key] != float64(count) {
			t.Errorf("%s = %v, want the %d requests the backend got (counts %v)", key, counts[key], count, counts)
		}
	}
}

// TestRawForwardingLeavesInvalidSharesToTheHandler: a split with a share that is
// answered with an error stays on the handler path, which answers it.
func TestRawForwardingLeavesInvalidSharesToTheHandler(t *testing.T) {
	stable, _ := splitBackend(t)
	refs := []config.BackendRef{{Backend: "default/stable:80", Weight: 1},
		{Weight: 1, Invalid: &config.InvalidBackend{StatusCode: http.StatusInternalServerError}}}
	e, addr := rawTestEngineOf(t, ForwardRaw, stable)
	mustApply(t, e, splitSnapshot(refs, map[string]string{"default/stable:80": stable}))
	statuses := map[int]int{}
	for range 40 {
		wire := exchange(t, addr, "GET /split HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
		statuses[parseResponses(t, wire, http.MethodGet)[0].status]++
		if bytes.Contains(wire, []byte("\r\nx-lower: v\r\n")) {
			t.Fatalf("the raw path served a split with an invalid share:\n%q", wire)
		}
	}
	// Both statuses show, but about once in a trillion runs.
	if statuses[http.StatusOK] == 0 || statuses[http.StatusInternalServerError] == 0 || len(statuses) != 2 {
		t.Errorf("statuses %v, want both 200 and 500", statuses)
	}
}

// TestRawForwardingFollowsTheHeaderRoute sends the requests that carry a header
// route's headers to its backend, of weight zero, and the others to the split; a
// rule whose filters edit such a header stays on the handler path, which matches
// the edited header.
func TestRawForwardingFollowsTheHeaderRoute(t *testing.T) {
	rawServed := rawServedHere(t)
	stable, stableCount := splitBackend(t)
	canary, canaryCount := splitBackend(t)
	refs := []config.BackendRef{{Backend: "default/stable:80", Weight: 1}, {Backend: "default/canary:80", Weight: 0}}
	addrs := map[string]string{"default/stable:80": stable, "default/canary:80": canary}
	requests := []string{
		"GET /a HTTP/1.1\r\nHost: app.example.com\r\nX-Canary: yes\r\n\r\n",
		"GET /b HTTP/1.1\r\nHost: app.example.com\r\nx-canary: no\r\nX-Canary: yes\r\n\r\n",
		"GET /c HTTP/1.1\r\nHost: app.example.com\r\nX-Canary: no\r\n\r\n",
		"GET /d HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
	}
	setCanary := config.Filter{Type: config.FilterRequestHeaderModifier, RequestHeaderModifier: &config.HeaderModifier{
		Set: []config.Header{{Name: "X-Canary", Value: "yes"}}}}
	for _, tc := range []struct {
		name           string
		filters        []config.Filter
		canary, stable int
		raw            bool
	}{
		{"header route", nil, 2, 2, true},
		{"header route after an edit", []config.Filter{setCanary}, 4, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := splitSnapshot(refs, addrs)
			rule := &snap.Listeners[0].VirtualHosts[0].Routes[0].Rules[0]
			rule.HeaderRoute = &config.HeaderRoute{Headers: []config.Header{{Name: "x-canary", Value: "yes"}}, Backend: 1}
			rule.Filters = tc.filters
			e, addr := rawTestEngineOf(t, ForwardRaw, stable)
			mustApply(t, e, snap)
			canaryBefore, stableBefore := canaryCount(), stableCount()
			for _, req := range requests {
				wire := exchange(t, addr, req)
				if res := parseResponses(t, wire, http.MethodGet); res[0].status != http.StatusOK {
					t.Fatalf("%q: status %d", req, res[0].status)
				}
				if relayed := bytes.Contains(wire, []byte("\r\nx-lower: v\r\n")); relayed != (tc.raw && rawServed) {
					t.Errorf("%q: answer relayed as it came: %v, want %v", req, relayed, tc.raw && rawServed)
				}
			}
			if c, s := canaryCount()-canaryBefore, stableCount()-stableBefore; c != tc.canary || s != tc.stable {
				t.Errorf("the canary got %d requests and the stable backend %d, want %d and %d", c, s, tc.canary, tc.stable)
			}
		})
	}
}
