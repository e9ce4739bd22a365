package agent

import (
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/controller/distribute"
	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

// edgeSource stands in for a node replica's edge recorder: cumulative totals per
// edge that the test sets.
type edgeSource struct {
	mu     sync.Mutex
	totals map[outcome.EdgeKey]outcome.Totals
}

func newEdgeSource() *edgeSource { return &edgeSource{totals: map[outcome.EdgeKey]outcome.Totals{}} }

// set makes an edge's cumulative totals requests and errors, all in the first bucket.
func (s *edgeSource) set(caller, callee string, requests, errors int64) {
	t := outcome.Totals{Requests: requests, Errors: errors, Latency: make([]int64, outcome.Buckets)}
	t.Latency[0] = requests
	s.mu.Lock()
	defer s.mu.Unlock()
	s.totals[outcome.EdgeKey{Caller: caller, Callee: callee}] = t
}

func (s *edgeSource) read() map[outcome.EdgeKey]outcome.Totals {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.totals)
}

// edgeAgent starts a node replica named node reporting src's edges (and backends,
// when backends is not nil) to c.
func edgeAgent(t *testing.T, pki testPKI, c *controller, node string, src *edgeSource, backends *outcomeSource) (*Agent, func()) {
	t.Helper()
	opts := baseOptions(t, pki, c, &recorder{}, testToken)
	opts.Node, opts.Role, opts.Edges = node, distribute.RoleNode, src.read
	if backends != nil {
		opts.Outcomes = backends.read
	}
	return runAgent(t, opts)
}

func waitForEdge(t *testing.T, c *controller, caller, callee string, requests, errors int64) {
	t.Helper()
	key := outcome.EdgeKey{Caller: caller, Callee: callee}
	waitFor(t, fmt.Sprintf("fleet totals of %s to be %d requests, %d errors", key, requests, errors), func() bool {
		got := c.EdgeOutcomes()[key]
		return got.Requests == requests && got.Errors == errors && got.Latency[0] == requests
	})
}

func TestFleetEdgesAddUpAcrossReplicasAndRestarts(t *testing.T) {
	pki := newTestPKI(t)
	c := startController(t, pki, "127.0.0.1:0", distribute.Options{HeartbeatInterval: 50 * time.Millisecond})
	srcA, srcB := newEdgeSource(), newEdgeSource()
	srcA.set("shop/web", "shop/cart", 10, 1)
	srcB.set("shop/web", "shop/cart", 5, 0)
	srcB.set("shop/cart", "shop/db", 3, 0)
	backends := newOutcomeSource()
	backends.set("shop/cart:80", 7, 0)
	agentA, stopA := edgeAgent(t, pki, c, "node-1", srcA, backends)
	edgeAgent(t, pki, c, "node-2", srcB, nil)
	waitForEdge(t, c, "shop/web", "shop/cart", 15, 1)
	waitForEdge(t, c, "shop/cart", "shop/db", 3, 0)
	// Backend outcomes travel in the same acks, counted apart.
	waitForFleet(t, c, "shop/cart:80", 7, 0)

	srcA.set("shop/web", "shop/cart", 20, 2)
	waitForEdge(t, c, "shop/web", "shop/cart", 25, 2)

	// A reconnecting agent reports every edge again on its new stream; the
	// controller counts only what grew.
	displace(t, pki, c, agentA)
	srcA.set("shop/web", "shop/cart", 21, 2)
	waitForEdge(t, c, "shop/web", "shop/cart", 26, 2)

	// A restarted replica is a new process whose counts start from zero.
	stopA()
	fresh := newEdgeSource()
	fresh.set("shop/web", "shop/cart", 4, 1)
	restarted, _ := edgeAgent(t, pki, c, "node-1", fresh, nil)
	waitForEdge(t, c, "shop/web", "shop/cart", 30, 3)
	acked := time.Now()
	waitFor(t, "more acks of the restarted replica", func() bool {
		for _, r := range c.Replicas() {
			if r.Instance == restarted.Status().Instance && r.LastAck.After(acked.Add(200*time.Millisecond)) {
				return true
			}
		}
		return false
	})
	got := c.EdgeOutcomes()
	if web := got[outcome.EdgeKey{Caller: "shop/web", Callee: "shop/cart"}]; web.Requests != 30 || web.Errors != 3 {
		t.Fatalf("fleet totals moved without new requests: %+v", web)
	}
	if db := got[outcome.EdgeKey{Caller: "shop/cart", Callee: "shop/db"}]; db.Requests != 3 {
		t.Fatalf("fleet totals of the other edge: %+v", db)
	}
}

func TestEdgeReportsFitAnOlderController(t *testing.T) {
	pki := newTestPKI(t)
	// Acks this large take a while to encode under the race detector: the heartbeat
	// leaves room for that, or the server would close the stream as silent and every
	// new stream would report the same first edges again.
	srv, err := distribute.NewServer(distribute.Options{Authenticator: distribute.SharedToken(testToken), HeartbeatInterval: 300 * time.Millisecond})
	must(t, err)
	t.Cleanup(srv.Close)
	legacy := &legacyAcks{next: srv.Handler(), reported: map[string]bool{}}
	addr := serveTLS(t, pki, legacy)
	srv.Publish(smallSnapshot("v1", "/a", "127.0.0.1:1"))

	// Long sides that JSON escapes six times over, and long backend names too: the
	// agent spreads them over acks an older controller takes.
	edges, backends := newEdgeSource(), newOutcomeSource()
	const count = 150
	for i := range count {
		side := fmt.Sprintf("ns/%03d%s", i, strings.Repeat("<", distribute.MaxEdgeNameBytes-10))
		edges.set(side, side, int64(i+1), 0)
		backends.set(fmt.Sprintf("ns/%03d%s:80", i, strings.Repeat("<", distribute.MaxOutcomeNameBytes-10)), int64(i+1), 0)
	}
	opts := baseOptions(t, pki, nil, &recorder{}, testToken)
	opts.ControllerURL, opts.Role, opts.Outcomes, opts.Edges = "https://"+addr, distribute.RoleNode, backends.read, edges.read
	a, _ := runAgent(t, opts)
	waitFor(t, "every backend and edge to be reported", func() bool {
		_, _, reported, _, _ := legacy.counts()
		return reported == 2*count
	})
	_, withReports, _, refused, largest := legacy.counts()
	if refused != 0 || largest > distribute.LegacyMaxAckBytes {
		t.Fatalf("%d acks refused, largest %d bytes; want none refused within %d", refused, largest, distribute.LegacyMaxAckBytes)
	}
	if withReports < 2 {
		t.Fatalf("%d reports went in %d acks; want them spread over several", 2*count, withReports)
	}
	// A node replica's view of a snapshot has a version of its own.
	if st := a.Status(); !st.Connected || !st.Ready {
		t.Fatalf("agent status %+v", st)
	}
}

func TestEdgeReporterTakesTurnsAndForgets(t *testing.T) {
	src := newEdgeSource()
	for i := range distribute.MaxAckEdges + 10 {
		src.set("shop/web", fmt.Sprintf("shop/%03d", i), 1, 0)
	}
	src.set("shop/web", "shop/"+strings.Repeat("n", distribute.MaxEdgeNameBytes), 1, 0)
	src.set("", "shop/no-caller", 1, 0)
	src.set("shop/web", "shop/idle", 0, 0)
	r := newEdgeReporter(src.read)
	first, more := r.pending()
	if len(first) != distribute.MaxAckEdges || !more {
		t.Fatalf("first batch: %d reports, more %v", len(first), more)
	}
	r.accept(first)
	src.set("shop/web", "shop/000", 2, 0)
	second, more := r.pending()
	want := outcome.EdgeKey{Caller: "shop/web", Callee: fmt.Sprintf("shop/%03d", distribute.MaxAckEdges)}
	if len(second) != 11 || more || second[0].key != want || second[10].key.Callee != "shop/000" {
		t.Fatalf("second batch: %d reports starting %v, more %v", len(second), second[0].key, more)
	}
	r.accept(second)
	if rest, more := r.pending(); len(rest) != 0 || more {
		t.Fatalf("nothing changed, yet %d reports pending", len(rest))
	}
	src.mu.Lock()
	clear(src.totals)
	src.mu.Unlock()
	r.pending()
	if len(r.accepted) != 0 || len(r.sentAt) != 0 {
		t.Fatalf("the reporter keeps %d edges the source dropped", len(r.accepted))
	}
	if pending, more := newEdgeReporter(nil).pending(); pending != nil || more {
		t.Fatal("a reporter without a source reports")
	}
}
