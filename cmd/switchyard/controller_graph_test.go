package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/controller/distribute"
	"github.com/switchyard-dev/switchyard/controller/graph"
	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/agent"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/outcome"
	"github.com/switchyard-dev/switchyard/internal/testpki"
)

// edgeRecorders stand in for a node replica's per-edge recorders.
type edgeRecorders struct {
	mu        sync.Mutex
	recorders map[outcome.EdgeKey]*outcome.Recorder
}

func (e *edgeRecorders) record(caller, callee string, n int, failed int, latency time.Duration) {
	e.mu.Lock()
	key := outcome.EdgeKey{Caller: caller, Callee: callee}
	r := e.recorders[key]
	if r == nil {
		r = &outcome.Recorder{}
		e.recorders[key] = r
	}
	e.mu.Unlock()
	for i := range n {
		r.Record(latency, i < failed)
	}
}

func (e *edgeRecorders) totals() map[outcome.EdgeKey]outcome.Totals {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[outcome.EdgeKey]outcome.Totals, len(e.recorders))
	for key, r := range e.recorders {
		out[key] = r.Totals()
	}
	return out
}

// startSnapshotServer serves a snapshot server over TLS on loopback and publishes a
// snapshot.
func startSnapshotServer(t *testing.T, pki *testpki.PKI) (*distribute.Server, string) {
	t.Helper()
	snaps, err := distribute.NewServer(distribute.Options{Authenticator: distribute.SharedToken("t0ken"),
		HeartbeatInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- snaps.Serve(ctx, ln, pki.Server) }()
	t.Cleanup(func() { cancel(); <-done })
	snaps.Publish(&config.Snapshot{SchemaVersion: config.SchemaVersion, Version: "v1"})
	return snaps, ln.Addr().String()
}

// startNodeAgent runs a real agent of a node replica reporting recorders' edges.
func startNodeAgent(t *testing.T, pki *testpki.PKI, addr string, recorders *edgeRecorders) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("t0ken"), 0o600); err != nil {
		t.Fatal(err)
	}
	ag, err := agent.New(agent.Options{ControllerURL: "https://" + addr, Node: "node-1", Role: distribute.RoleNode,
		TokenFile: tokenFile, TLSConfig: pki.Client, Apply: func(*config.Snapshot) error { return nil },
		Logger: slog.New(slog.DiscardHandler), Edges: recorders.totals})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ag.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("agent: %v", err)
		}
	})
}

// TestControllerServesTheServiceGraph sends edges from a real node replica agent to a
// real snapshot server, and reads them back from the controller's admin API and
// switchyard ctl.
func TestControllerServesTheServiceGraph(t *testing.T) {
	pki := testpki.New(t)
	snaps, addr := startSnapshotServer(t, pki)
	recorders := &edgeRecorders{recorders: map[outcome.EdgeKey]*outcome.Recorder{}}
	// Requests from before the graph's first sample of an edge are not in its
	// window: the fleet totals hold them at once, from no matter how long ago.
	recorders.record("shop/web", "shop/cart", 500, 500, time.Second)
	startNodeAgent(t, pki, addr, recorders)
	// sampledBefore is set once the graph's sampler has read fleet totals holding
	// those requests; only the sampler reads them before the graph is first viewed.
	key := outcome.EdgeKey{Caller: "shop/web", Callee: "shop/cart"}
	var sampledBefore atomic.Bool
	source := func() map[outcome.EdgeKey]outcome.Totals {
		totals := snaps.EdgeOutcomes()
		if totals[key].Requests == 500 {
			sampledBefore.Store(true)
		}
		return totals
	}
	g, err := graph.New(graph.Options{Source: source, Window: 30 * time.Second, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go g.Run(ctx)
	servers, err := startAdminServers(adminConfig{addr: "127.0.0.1:0", state: controllerStateStub{}, graph: g},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = servers[0].Shutdown(context.Background()) })
	base := "http://" + servers[0].Addr()
	// The graph measures an edge from its first sample that holds it, so the new
	// requests must come after such a sample; a fixed pause could end before a
	// sampler held up on a busy machine took one.
	waitUntil(t, "the graph to sample the fleet totals", sampledBefore.Load)

	recorders.record("shop/web", "shop/cart", 90, 9, 7500*time.Microsecond)
	recorders.record("shop/web", "shop/cart", 10, 0, 20*time.Millisecond)
	var view admin.GraphView
	waitUntil(t, "the graph to show the new requests", func() bool {
		view = getGraph(t, base)
		return len(view.Edges) == 1 && view.Edges[0].Requests == 100
	})
	e := view.Edges[0]
	if e.Caller != "shop/web" || e.Callee != "shop/cart" || e.Errors != 9 || math.Abs(e.ErrorRate-0.09) > 1e-9 ||
		e.RequestsPerSecond <= 0 || view.Window != "30s" || view.GeneratedAt.IsZero() {
		t.Fatalf("graph %+v", view)
	}
	// 90 requests in the 5-10ms bucket and 10 in the 10-25ms one.
	if math.Abs(e.LatencyMs.P50-7.778) > 1e-9 || e.LatencyMs.P90 != 10 || math.Abs(e.LatencyMs.P99-23.5) > 1e-9 {
		t.Fatalf("latency percentiles %+v", e.LatencyMs)
	}
	s := &ctlStack{admin: base}
	s.mustRun(t, []string{"edges over the last 30s", "CALLER", "shop/web", "shop/cart", "9.00%", "7.78ms", "10.0ms", "23.5ms", "100"}, "graph")
	out := s.mustRun(t, nil, "-o", "json", "graph")
	var fromCtl admin.GraphView
	if err := json.Unmarshal([]byte(out), &fromCtl); err != nil || len(fromCtl.Edges) != 1 {
		t.Fatalf("ctl -o json graph: %v\n%s", err, out)
	}
}

func getGraph(t *testing.T, base string) admin.GraphView {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/graph")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var view admin.GraphView
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/graph: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&view); err != nil {
		t.Fatal(err)
	}
	return view
}

// waitUntil polls cond until it holds, or fails the test after 10 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
