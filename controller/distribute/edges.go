package distribute

import (
	"time"

	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

// Limits of the service graph's edges that acks carry (see Ack.Edges).
const (
	// MaxAckEdges is the most edges a replica reports in one ack; edges left out are
	// reported in the next acks.
	MaxAckEdges = 64
	// MaxAcceptedEdges is the most edges the server takes in one ack; an ack with
	// more is refused with 400. It is above MaxAckEdges so that a later replica that
	// sends more per ack is still heard by this server.
	MaxAcceptedEdges = 256
	// MaxEdgeNameBytes bounds each side of an edge, caller and callee: a replica does
	// not report an edge with a longer one, and the server ignores it.
	MaxEdgeNameBytes = 512
	// maxFleetEdges bounds the edges the server keeps fleet totals for.
	maxFleetEdges = 1 << 13
)

// EdgeReport is one edge's cumulative totals in an ack.
type EdgeReport struct {
	// Caller is the workload that sent the requests, "namespace/workload".
	Caller string `json:"caller"`
	// Callee is the Service they went to, "namespace/service".
	Callee string `json:"callee"`
	outcome.Totals
}

// Key returns the edge the report is about.
func (r EdgeReport) Key() outcome.EdgeKey { return outcome.EdgeKey{Caller: r.Caller, Callee: r.Callee} }

// validEdge reports whether the server keeps totals for an edge.
func validEdge(k outcome.EdgeKey) bool {
	return k.Caller != "" && k.Callee != "" && len(k.Caller) <= MaxEdgeNameBytes && len(k.Callee) <= MaxEdgeNameBytes
}

// addReports adds an ack's outcome and edge reports to the fleet totals. An edge
// reported twice in one ack counts once, with its last report.
func (s *Server) addReports(key replicaKey, ack *Ack, now time.Time) {
	if len(ack.Outcomes) > 0 {
		if ignored := s.outcomes.add(key, ack.Outcomes, now); ignored > 0 {
			s.logger.Warn("ignored outcome reports of a replica", "node", key.node, "role", key.role,
				"instance", key.instance, "ignored", ignored, "reported", len(ack.Outcomes))
		}
	}
	if len(ack.Edges) > 0 {
		edges := make(map[outcome.EdgeKey]outcome.Totals, len(ack.Edges))
		for _, e := range ack.Edges {
			edges[e.Key()] = e.Totals
		}
		if ignored := s.edges.add(key, edges, now); ignored > 0 {
			s.logger.Warn("ignored edge reports of a replica", "node", key.node, "role", key.role,
				"instance", key.instance, "ignored", ignored, "reported", len(ack.Edges))
		}
	}
}

// EdgeOutcomes returns the fleet's cumulative request outcomes of every service graph
// edge that node replicas reported, caller -> callee: the sum over every replica
// since this server started, never decreasing, as BackendOutcome's. Readers take
// differences between two readings.
func (s *Server) EdgeOutcomes() map[outcome.EdgeKey]outcome.Totals { return s.edges.all() }
