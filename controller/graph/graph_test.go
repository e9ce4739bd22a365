package graph

import (
	"context"
	"fmt"
	"maps"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

// fleet stands in for the snapshot server's fleet totals.
type fleet struct {
	mu     sync.Mutex
	totals map[outcome.EdgeKey]outcome.Totals
}

func newFleet() *fleet { return &fleet{totals: map[outcome.EdgeKey]outcome.Totals{}} }

// add counts requests more on an edge, errors of them failed, each taking latency.
func (f *fleet) add(caller, callee string, requests, errors int64, latency time.Duration) {
	var r outcome.Recorder
	for i := range requests {
		r.Record(latency, i < errors)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := outcome.EdgeKey{Caller: caller, Callee: callee}
	f.totals[key] = f.totals[key].Add(r.Totals())
}

func (f *fleet) read() map[outcome.EdgeKey]outcome.Totals {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.totals)
}

func newGraph(t *testing.T, f *fleet, opts Options) *Graph {
	t.Helper()
	opts.Source = f.read
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func edgeOf(t *testing.T, v admin.GraphView, caller, callee string) admin.GraphEdge {
	t.Helper()
	for _, e := range v.Edges {
		if e.Caller == caller && e.Callee == callee {
			return e
		}
	}
	t.Fatalf("no edge %s -> %s in %+v", caller, callee, v.Edges)
	return admin.GraphEdge{}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestViewRatesOverTheWindow(t *testing.T) {
	f := newFleet()
	// History from before the first sample is no measure of the window.
	f.add("shop/web", "shop/cart", 1000, 1000, time.Second)
	g := newGraph(t, f, Options{})
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	g.Sample(t0)
	f.add("shop/web", "shop/cart", 90, 9, 7500*time.Microsecond)
	f.add("shop/web", "shop/cart", 10, 0, 20*time.Millisecond)
	f.add("shop/cart", "shop/db", 30, 0, time.Millisecond)
	v := g.View(t0.Add(10 * time.Second))
	if v.Window != "60s" || !v.GeneratedAt.Equal(t0.Add(10*time.Second)) || v.OmittedEdges != 0 {
		t.Fatalf("view %+v", v)
	}
	// The new edge waits for a sample; the known one counts what grew since.
	if len(v.Edges) != 1 {
		t.Fatalf("%d edges before the new one was sampled: %+v", len(v.Edges), v.Edges)
	}
	web := edgeOf(t, v, "shop/web", "shop/cart")
	if web.Requests != 100 || web.Errors != 9 || !near(web.RequestsPerSecond, 10) || !near(web.ErrorRate, 0.09) {
		t.Fatalf("edge %+v", web)
	}
	// 90 requests in the 5-10ms bucket, 10 in the 10-25ms one, spread evenly.
	want := admin.LatencyPercentiles{P50: 5 + 5*50.0/90, P90: 10, P99: 10 + 15*0.9}
	if !near(web.LatencyMs.P50, math.Round(want.P50*1000)/1000) || !near(web.LatencyMs.P90, want.P90) || !near(web.LatencyMs.P99, want.P99) {
		t.Fatalf("latency %+v, want %+v", web.LatencyMs, want)
	}

	g.Sample(t0.Add(15 * time.Second))
	f.add("shop/cart", "shop/db", 20, 20, time.Millisecond)
	v = g.View(t0.Add(20 * time.Second))
	db := edgeOf(t, v, "shop/cart", "shop/db")
	if db.Requests != 20 || !near(db.RequestsPerSecond, 4) || db.ErrorRate != 1 {
		t.Fatalf("the new edge, measured from its first sample: %+v", db)
	}
	if v.Edges[0].Caller != "shop/web" {
		t.Fatalf("edges not busiest first: %+v", v.Edges)
	}

	// Once the first samples leave the window, the oldest left is the base; an edge
	// idle over the whole window is not listed.
	g.Sample(t0.Add(30 * time.Second))
	g.Sample(t0.Add(80 * time.Second))
	v = g.View(t0.Add(85 * time.Second))
	if len(v.Edges) != 0 {
		t.Fatalf("idle edges listed: %+v", v.Edges)
	}
	f.add("shop/web", "shop/cart", 55, 0, time.Millisecond)
	v = g.View(t0.Add(85 * time.Second))
	if web := edgeOf(t, v, "shop/web", "shop/cart"); web.Requests != 55 || !near(web.RequestsPerSecond, 1) {
		t.Fatalf("after the window slid: %+v", web)
	}
	if n := len(g.samples); n != 2 {
		t.Fatalf("%d samples kept, want the two within the window", n)
	}
}

func TestViewIsBounded(t *testing.T) {
	f := newFleet()
	for i := range 10 {
		f.add("shop/web", fmt.Sprintf("shop/svc-%d", i), 1, 0, time.Millisecond)
	}
	g := newGraph(t, f, Options{MaxEdges: 3})
	t0 := time.Now()
	g.Sample(t0)
	for i := range 10 {
		f.add("shop/web", fmt.Sprintf("shop/svc-%d", i), int64(i+1), 0, time.Millisecond)
	}
	v := g.View(t0.Add(time.Second))
	if len(v.Edges) != 3 || v.OmittedEdges != 7 {
		t.Fatalf("%d edges, %d omitted; want 3 and 7", len(v.Edges), v.OmittedEdges)
	}
	for i, want := range []string{"shop/svc-9", "shop/svc-8", "shop/svc-7"} {
		if v.Edges[i].Callee != want {
			t.Fatalf("edge %d is %s, want the busiest, %s", i, v.Edges[i].Callee, want)
		}
	}
}

func TestRunSamplesUntilCanceled(t *testing.T) {
	f := newFleet()
	f.add("shop/web", "shop/cart", 1, 0, time.Millisecond)
	g := newGraph(t, f, Options{Interval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		n := len(g.samples)
		g.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d samples within 5s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.add("shop/web", "shop/cart", 5, 0, time.Millisecond)
	if e := edgeOf(t, g.ServiceGraph(), "shop/web", "shop/cart"); e.Requests != 5 {
		t.Fatalf("edge %+v", e)
	}
	cancel()
	<-done
}

func TestOptionsAreChecked(t *testing.T) {
	f := newFleet()
	for _, opts := range []Options{
		{},
		{Source: f.read, Window: -time.Second},
		{Source: f.read, Interval: 2 * time.Minute},
		{Source: f.read, MaxEdges: -1},
	} {
		if _, err := New(opts); err == nil {
			t.Errorf("New(%+v) accepted", opts)
		}
	}
}
