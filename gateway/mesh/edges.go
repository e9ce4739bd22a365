package mesh

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

// DefaultMaxEdges bounds the distinct edges an EdgeStats keeps: enough for the
// workloads of a large node calling a large cluster's Services, small enough (a few
// MiB) that callers cannot make a replica's memory grow without bound.
const DefaultMaxEdges = 10000

// EdgeKey is one edge of the service graph: a calling workload and what it called.
type EdgeKey struct {
	// CallerNamespace and CallerWorkload name the calling workload (see
	// Caller.Workload).
	CallerNamespace string `json:"callerNamespace"`
	CallerWorkload  string `json:"callerWorkload"`
	// ServiceNamespace and Service name the Service called; both are empty for
	// egress.
	ServiceNamespace string `json:"serviceNamespace,omitempty"`
	Service          string `json:"service,omitempty"`
	// Egress is the destination host outside the mesh (a lower-case name or an IP
	// address, without port), or empty for a Service.
	Egress string `json:"egress,omitempty"`
}

// Caller returns "<namespace>/<workload>".
func (k EdgeKey) Caller() string { return k.CallerNamespace + "/" + k.CallerWorkload }

// Callee returns "<namespace>/<service>", or the egress host.
func (k EdgeKey) Callee() string {
	if k.Egress != "" {
		return k.Egress
	}
	return k.ServiceNamespace + "/" + k.Service
}

// Edge is an edge with its cumulative outcomes.
type Edge struct {
	EdgeKey
	// Totals are the edge's cumulative request outcomes: requests, errors (a 5xx
	// answer, or a CONNECT tunnel that could not be opened; refusals of egress by
	// policy are not errors) and latency (from the request's arrival until its
	// response was complete for HTTP, until the upstream connection was made for
	// CONNECT).
	Totals outcome.Totals `json:"totals"`
}

// EdgeReport is one reading of the edge statistics. Every count is cumulative since
// the replica started, so a reader takes differences between readings (see
// outcome.Totals.Sub).
type EdgeReport struct {
	// Edges are the edges seen, sorted by caller, then callee.
	Edges []Edge `json:"edges"`
	// Overflow adds up the requests of the edges not kept once the cap on distinct
	// edges was reached, so that totals over all edges stay right.
	Overflow outcome.Totals `json:"overflow"`
	// OverflowEdges counts the distinct-edge admissions refused by the cap; an edge
	// refused twice counts twice, since refused edges are not remembered.
	OverflowEdges int64 `json:"overflowEdges"`
}

// EdgeStats counts requests per edge, up to a maximum number of distinct edges. It is
// safe for concurrent use; recording a request on a known edge does not allocate.
type EdgeStats struct {
	max      int
	mu       sync.RWMutex
	edges    map[EdgeKey]*outcome.Recorder
	overflow outcome.Recorder
	refused  int64
}

// NewEdgeStats returns statistics keeping at most maxEdges distinct edges;
// DefaultMaxEdges when maxEdges is not positive.
func NewEdgeStats(maxEdges int) *EdgeStats {
	if maxEdges <= 0 {
		maxEdges = DefaultMaxEdges
	}
	return &EdgeStats{max: maxEdges, edges: map[EdgeKey]*outcome.Recorder{}}
}

// Record counts one request on edge k that took d; failed says it failed.
func (s *EdgeStats) Record(k EdgeKey, d time.Duration, failed bool) {
	s.recorder(k).Record(d, failed)
}

// recorder returns the edge's recorder, adding the edge while there is room, else
// the overflow recorder.
func (s *EdgeStats) recorder(k EdgeKey) *outcome.Recorder {
	s.mu.RLock()
	rec := s.edges[k]
	s.mu.RUnlock()
	if rec != nil {
		return rec
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec = s.edges[k]; rec != nil {
		return rec
	}
	if len(s.edges) >= s.max {
		s.refused++
		return &s.overflow
	}
	// The key's strings may share memory with a request (the egress host); copies
	// keep the request from being held for as long as the edge lives.
	k.Egress = strings.Clone(k.Egress)
	rec = &outcome.Recorder{}
	s.edges[k] = rec
	return rec
}

// Report returns the edges seen so far with their totals.
func (s *EdgeStats) Report() EdgeReport {
	s.mu.RLock()
	keys := make([]EdgeKey, 0, len(s.edges))
	recs := make([]*outcome.Recorder, 0, len(s.edges))
	for k, rec := range s.edges {
		keys = append(keys, k)
		recs = append(recs, rec)
	}
	refused := s.refused
	s.mu.RUnlock()
	r := EdgeReport{Edges: make([]Edge, len(keys)), Overflow: s.overflow.Totals(), OverflowEdges: refused}
	for i := range keys {
		r.Edges[i] = Edge{EdgeKey: keys[i], Totals: recs[i].Totals()}
	}
	slices.SortFunc(r.Edges, func(a, b Edge) int {
		return cmp.Or(cmp.Compare(a.CallerNamespace, b.CallerNamespace), cmp.Compare(a.CallerWorkload, b.CallerWorkload),
			cmp.Compare(a.ServiceNamespace, b.ServiceNamespace), cmp.Compare(a.Service, b.Service), cmp.Compare(a.Egress, b.Egress))
	})
	return r
}
