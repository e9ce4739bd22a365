package admin

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// fakeGraph is a Graph with one edge, and one left out.
type fakeGraph struct{}

func (fakeGraph) ServiceGraph() GraphView {
	return GraphView{Window: "60s", GeneratedAt: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), OmittedEdges: 1,
		Edges: []GraphEdge{{Caller: "shop/web", Callee: "shop/cart", RequestsPerSecond: 1.5, ErrorRate: 0.1,
			LatencyMs: LatencyPercentiles{P50: 3, P90: 7.5, P99: 20}, Requests: 90, Errors: 9}}}
}

func TestGraphIsServedBehindTheToken(t *testing.T) {
	_, _, base := fullServer(t)
	resp, body := call(t, http.MethodGet, base+"/api/v1/graph", "")
	assertProblem(t, resp, body, http.StatusUnauthorized)
	resp, body = call(t, http.MethodGet, base+"/api/v1/graph", "s3cret")
	var view GraphView
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &view) != nil {
		t.Fatalf("GET /api/v1/graph: %d %s", resp.StatusCode, body)
	}
	if len(view.Edges) != 1 || view.Edges[0].LatencyMs.P90 != 7.5 || view.OmittedEdges != 1 || view.Window != "60s" {
		t.Fatalf("graph %+v", view)
	}
	// A gateway has no graph.
	_, gatewayBase := startServer(t, Options{State: &fakeState{}})
	if resp, _ := call(t, http.MethodGet, gatewayBase+"/api/v1/graph", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a gateway answers GET /api/v1/graph with %d", resp.StatusCode)
	}
}
