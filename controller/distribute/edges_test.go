package distribute

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

// edge returns a report of an edge's cumulative totals, all in the first bucket.
func edge(caller, callee string, requests, errors int64) EdgeReport {
	return EdgeReport{Caller: caller, Callee: callee, Totals: totals(requests, errors)}
}

func (ts *testServer) reportEdges(t *testing.T, stream string, edges ...EdgeReport) {
	t.Helper()
	if code := ts.ack(t, testToken, Ack{Stream: stream, Edges: edges}); code != http.StatusNoContent {
		t.Fatalf("ack with edges: %d", code)
	}
}

// wantEdge fails the test unless the fleet totals of an edge are requests and errors.
func wantEdge(t *testing.T, s *Server, caller, callee string, requests, errors int64) {
	t.Helper()
	got := s.EdgeOutcomes()[outcome.EdgeKey{Caller: caller, Callee: callee}]
	if got.Requests != requests || got.Errors != errors || (requests > 0 && got.Latency[0] != requests) {
		t.Fatalf("fleet totals of %s -> %s: %+v; want %d requests, %d errors", caller, callee, got, requests, errors)
	}
}

func TestFleetEdgesAddUpReplicasMonotonically(t *testing.T) {
	ts := startServer(t, Options{ForgetAfter: time.Millisecond})
	one, _ := instanceStream(t, ts, "i1")
	two, twoResp := instanceStream(t, ts, "i2")
	ts.reportEdges(t, one, edge("shop/web", "shop/cart", 10, 1))
	ts.reportEdges(t, two, edge("shop/web", "shop/cart", 5, 0), edge("shop/cart", "shop/db", 3, 3))
	wantEdge(t, ts.Server, "shop/web", "shop/cart", 15, 1)
	wantEdge(t, ts.Server, "shop/cart", "shop/db", 3, 3)

	// Only growth counts; the same report twice (an ack whose answer was lost) adds
	// nothing, and neither does an edge given twice in one ack.
	ts.reportEdges(t, one, edge("shop/web", "shop/cart", 12, 1))
	ts.reportEdges(t, one, edge("shop/web", "shop/cart", 12, 1), edge("shop/web", "shop/cart", 12, 1))
	wantEdge(t, ts.Server, "shop/web", "shop/cart", 17, 1)

	// Totals below the last report come from a restarted count: all of them are new.
	ts.reportEdges(t, one, edge("shop/web", "shop/cart", 4, 2))
	wantEdge(t, ts.Server, "shop/web", "shop/cart", 21, 3)

	// A replica forgotten takes nothing from the fleet totals.
	twoResp.Body.Close()
	waitFor(t, "the second replica to be forgotten", func() bool { return len(ts.Replicas()) == 1 })
	wantEdge(t, ts.Server, "shop/web", "shop/cart", 21, 3)
	wantEdge(t, ts.Server, "shop/cart", "shop/db", 3, 3)

	// Edges and backends are counted apart, even under one name.
	ts.report(t, one, map[string]outcome.Totals{"shop/cart": totals(100, 0)})
	wantEdge(t, ts.Server, "shop/web", "shop/cart", 21, 3)
	if n := len(ts.EdgeOutcomes()); n != 2 {
		t.Fatalf("%d edges, want 2", n)
	}
}

func TestFleetEdgesSurviveAReconnection(t *testing.T) {
	ts := startServer(t, Options{})
	first, firstResp := instanceStream(t, ts, "i1")
	ts.reportEdges(t, first, edge("shop/web", "shop/cart", 10, 0))
	again, _ := instanceStream(t, ts, "i1")
	firstResp.Body.Close()
	ts.reportEdges(t, again, edge("shop/web", "shop/cart", 11, 0))
	wantEdge(t, ts.Server, "shop/web", "shop/cart", 11, 0)
}

func TestAckEdgesAreBounded(t *testing.T) {
	ts := startServer(t, Options{})
	stream, _ := instanceStream(t, ts, "i1")
	tooMany := make([]EdgeReport, MaxAcceptedEdges+1)
	for i := range tooMany {
		tooMany[i] = edge("shop/web", fmt.Sprintf("shop/svc-%d", i), 1, 0)
	}
	if code := ts.ack(t, testToken, Ack{Stream: stream, Edges: tooMany}); code != http.StatusBadRequest {
		t.Fatalf("ack with %d edges: %d, want 400", len(tooMany), code)
	}
	if n := len(ts.EdgeOutcomes()); n != 0 {
		t.Fatalf("a refused ack counted: %d edges", n)
	}

	// Malformed edges are ignored; the rest of the ack counts.
	long := strings.Repeat("n", MaxEdgeNameBytes+1)
	negative := edge("shop/web", "shop/negative", 1, 0)
	negative.Latency[2] = -1
	ts.reportEdges(t, stream,
		edge("shop/web", "shop/good", 2, 1),
		edge("", "shop/no-caller", 1, 0),
		edge("shop/web", "", 1, 0),
		edge(long, "shop/long-caller", 1, 0),
		edge("shop/web", long, 1, 0),
		edge("shop/web", "shop/huge", maxOutcomeCount+1, 0),
		negative,
		EdgeReport{Caller: "shop/web", Callee: "shop/no-histogram", Totals: outcome.Totals{Requests: 4}},
	)
	all := ts.EdgeOutcomes()
	if len(all) != 2 || all[outcome.EdgeKey{Caller: "shop/web", Callee: "shop/good"}].Requests != 2 ||
		all[outcome.EdgeKey{Caller: "shop/web", Callee: "shop/no-histogram"}].Requests != 4 {
		t.Fatalf("fleet edges %v; want only the two well-formed reports", all)
	}

	// As many edges of long names as the server takes, along with as many long
	// backend names, fit MaxAckBytes.
	full := Ack{Stream: stream, Outcomes: map[string]outcome.Totals{}, Edges: make([]EdgeReport, MaxAcceptedEdges)}
	for i := range MaxAcceptedOutcomes {
		full.Outcomes[fmt.Sprintf("ns/%03d-%s:80", i, strings.Repeat("x", MaxOutcomeNameBytes-10))] = totals(1<<31, 7)
	}
	side := strings.Repeat("y", MaxEdgeNameBytes-4)
	for i := range full.Edges {
		full.Edges[i] = edge(fmt.Sprintf("%03d%s", i, side), fmt.Sprintf("%03d%s", i, side), 1<<31, 7)
	}
	if code := ts.ack(t, testToken, full); code != http.StatusNoContent {
		t.Fatalf("a full ack: %d", code)
	}
	if n := len(ts.EdgeOutcomes()); n != 2+MaxAcceptedEdges {
		t.Fatalf("%d edges after the full ack", n)
	}
}

func TestFleetEdgesMakeRoomForNewEdges(t *testing.T) {
	f := newFleetEdges()
	key := replicaKey{node: "n1", role: RoleNode, instance: "i1"}
	now := time.Unix(1_000_000, 0)
	batch := map[outcome.EdgeKey]outcome.Totals{}
	for i := range maxFleetEdges {
		batch[outcome.EdgeKey{Caller: "ns/web", Callee: fmt.Sprintf("ns/svc-%05d", i)}] = totals(1, 0)
	}
	if ignored := f.add(key, batch, now); ignored != 0 {
		t.Fatalf("%d edges ignored below the bound", ignored)
	}
	fresh := map[outcome.EdgeKey]outcome.Totals{{Caller: "ns/web", Callee: "ns/new"}: totals(1, 0)}
	if ignored := f.add(key, fresh, now.Add(time.Minute)); ignored != 1 {
		t.Fatalf("an edge past the bound was taken (ignored %d)", ignored)
	}
	later := now.Add(staleFleetOutcome + time.Minute)
	if ignored := f.add(key, fresh, later); ignored != 0 {
		t.Fatal("no room was made for a new edge once the others went stale")
	}
	if all := f.all(); len(all) != 1 {
		t.Fatalf("after the sweep: %d edges", len(all))
	}
}
