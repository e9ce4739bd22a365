package dataplane

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

func TestBackendOutcomesOutliveGenerations(t *testing.T) {
	e := New(Options{})
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(failing.Close)
	snap := snapshotFor("one", startBackend(t, "ok"))
	// A header-routed canary on a weightless second backend.
	rule := &snap.Listeners[0].VirtualHosts[0].Routes[0].Rules[0]
	rule.Backends = append(rule.Backends, config.BackendRef{Backend: "default/canary:80", Weight: 0})
	rule.HeaderRoute = &config.HeaderRoute{Headers: []config.Header{{Name: "x-canary", Value: "1"}}, Backend: 1}
	snap.Backends = append(snap.Backends, config.Backend{Name: "default/canary:80", Protocol: config.AppProtocolHTTP1,
		Endpoints: []config.Endpoint{{Address: failing.Listener.Addr().String(), Ready: true, Serving: true}}})
	if err := e.Apply(snap); err != nil {
		t.Fatal(err)
	}
	url := "http://" + e.Addr("127.0.0.1:0") + "/"
	canary := func() int {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("X-Canary", "1")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for range 2 {
		if code, body := get(t, url); code != http.StatusOK || body != "ok" {
			t.Fatalf("got %d %q", code, body)
		}
	}
	if code := canary(); code != http.StatusBadGateway {
		t.Fatalf("canary answered %d", code)
	}
	// A new generation, compiled again, keeps counting into the same totals.
	next := *snap
	next.Version, next.RoutesVersion = "two", "routes-two"
	if err := e.Apply(&next); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, url); code != http.StatusOK {
		t.Fatalf("after the new generation: %d", code)
	}
	stable, canaryTotals := e.BackendOutcome("default/b:80"), e.BackendOutcome("default/canary:80")
	if stable.Requests != 3 || stable.Errors != 0 || canaryTotals.Requests != 1 || canaryTotals.Errors != 1 {
		t.Fatalf("stable %+v, canary %+v; want 3 ok and 1 failed", stable, canaryTotals)
	}
	if all := e.BackendOutcomes(); len(all) != 2 || all["default/b:80"].Requests != 3 {
		t.Fatalf("BackendOutcomes = %v", all)
	}
}
