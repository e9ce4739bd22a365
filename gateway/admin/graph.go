package admin

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// Graph is what the controller's service graph endpoint reports on: the caller ->
// callee edges that node replicas forward, added up across the fleet. Its methods are
// called concurrently.
type Graph interface {
	// ServiceGraph returns the edges with traffic over the recent window.
	ServiceGraph() GraphView
}

// GraphView is what GET /api/v1/graph shows.
type GraphView struct {
	// Edges are those with requests in the window, busiest first (then by caller and
	// callee), at most a bounded number.
	Edges []GraphEdge `json:"edges"`
	// Window is how far back the rates look, such as "60s".
	Window string `json:"window"`
	// GeneratedAt is when the view was computed.
	GeneratedAt time.Time `json:"generatedAt"`
	// OmittedEdges counts the edges with traffic left out by the bound, the quietest.
	OmittedEdges int `json:"omittedEdges,omitempty"`
}

// GraphEdge is one edge of the service graph over the window.
type GraphEdge struct {
	// Caller is the calling workload, "namespace/workload"; Callee the Service
	// called, "namespace/service".
	Caller string `json:"caller"`
	Callee string `json:"callee"`
	// RequestsPerSecond is Requests over the time the window covers for this edge.
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	// ErrorRate is Errors over Requests, between 0 and 1.
	ErrorRate float64 `json:"errorRate"`
	// LatencyMs holds latency percentiles in milliseconds, interpolated within the
	// buckets of the replicas' latency histograms.
	LatencyMs LatencyPercentiles `json:"latencyMs"`
	// Requests and Errors count the requests that ended, and failed (5xx answers,
	// connection failures, timeouts), in the window.
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
}

// LatencyPercentiles are latency percentiles in milliseconds.
type LatencyPercentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

// addGraphRoutes adds GET /api/v1/graph.
func addGraphRoutes(api *gin.RouterGroup, graph Graph) {
	api.GET("/graph", func(c *gin.Context) { renderJSON(c, http.StatusOK, graph.ServiceGraph()) })
}
