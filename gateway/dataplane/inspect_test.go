package dataplane

import (
	"context"
	"net/http"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/backend"
)

func TestRouteTablesFollowTheServingGeneration(t *testing.T) {
	e := newTestEngine(t)
	if version, tables := e.RouteTables(); version != "" || tables != nil {
		t.Fatalf("before any apply: %q %v", version, tables)
	}
	first := snapshotFor("one", startBackend(t, "first"))
	first.RoutesVersion = "routes-1"
	mustApply(t, e, first)
	version, tables := e.RouteTables()
	if version != "one" || len(tables) != 1 || tables[0].Listener.Name != "127.0.0.1:0" || tables[0].Addr != e.Addr("127.0.0.1:0") {
		t.Fatalf("tables %q %+v", version, tables)
	}
	// The table is the one requests are looked up in.
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	if entry := tables[0].Table.Lookup(req); entry == nil || entry.Route.Name != "default/r" {
		t.Fatalf("lookup in the reported table: %+v", entry)
	}
	// An endpoint-only change keeps the compiled table and reports the new version.
	second := snapshotFor("two", startBackend(t, "second"))
	second.RoutesVersion = "routes-1"
	mustApply(t, e, second)
	if version, again := e.RouteTables(); version != "two" || again[0].Table != tables[0].Table {
		t.Errorf("after an endpoint change: %q, same table %v", version, again[0].Table == tables[0].Table)
	}
}

func TestDrainThroughTheEngine(t *testing.T) {
	e := newTestEngine(t)
	addr := startBackend(t, "only")
	mustApply(t, e, snapshotFor("one", addr))
	url := "http://" + e.Addr("127.0.0.1:0") + "/"
	expectBody(t, url, "only")
	drained, err := e.SetEndpointDrained(backend.EndpointSelector{Service: "default/b", Address: addr}, true)
	if err != nil || len(drained) != 1 || drained[0].Available != 0 {
		t.Fatalf("drain: %+v %v", drained, err)
	}
	if code, _ := get(t, url); code != http.StatusServiceUnavailable {
		t.Errorf("with the only endpoint drained: %d, want 503", code)
	}
	pools := e.BackendSnapshot()
	if len(pools) != 1 || !pools[0].Endpoints[0].Drained || pools[0].Endpoints[0].Requests != 1 {
		t.Errorf("snapshot %+v", pools)
	}
	if _, err := e.SetEndpointDrained(backend.EndpointSelector{Service: "default/b", Address: addr}, false); err != nil {
		t.Fatal(err)
	}
	expectBody(t, url, "only")
}

func TestRateLimitSharing(t *testing.T) {
	if redis, replicas := New(Options{}).RateLimitSharing(); redis || replicas != 1 {
		t.Errorf("default: %v %d", redis, replicas)
	}
	e := New(Options{Replicas: func() int { return 3 }})
	defer func() { _ = e.Shutdown(context.Background()) }()
	if redis, replicas := e.RateLimitSharing(); redis || replicas != 3 {
		t.Errorf("three replicas: %v %d", redis, replicas)
	}
	zero := New(Options{Replicas: func() int { return 0 }})
	if _, replicas := zero.RateLimitSharing(); replicas != 1 {
		t.Errorf("zero replicas reported as %d", replicas)
	}
}
