package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/controller/distribute"
	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

// outcomeSource stands in for a replica's data plane: cumulative totals the test sets.
type outcomeSource struct {
	mu     sync.Mutex
	totals map[string]outcome.Totals
}

func newOutcomeSource() *outcomeSource {
	return &outcomeSource{totals: map[string]outcome.Totals{}}
}

// set makes a backend's cumulative totals requests and errors, all in the first
// latency bucket.
func (s *outcomeSource) set(name string, requests, errors int64) {
	t := outcome.Totals{Requests: requests, Errors: errors, Latency: make([]int64, outcome.Buckets)}
	t.Latency[0] = requests
	s.mu.Lock()
	defer s.mu.Unlock()
	s.totals[name] = t
}

func (s *outcomeSource) read() map[string]outcome.Totals {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.totals)
}

// fleetHas reports whether the controller's fleet totals of a backend are requests
// and errors.
func fleetHas(c *controller, name string, requests, errors int64) bool {
	got := c.BackendOutcome(name)
	return got.Requests == requests && got.Errors == errors && got.Latency[0] == requests
}

func waitForFleet(t *testing.T, c *controller, name string, requests, errors int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("fleet totals of %s to be %d requests, %d errors", name, requests, errors), func() bool {
		return fleetHas(c, name, requests, errors)
	})
}

// outcomeAgent starts an agent named node reporting src to c.
func outcomeAgent(t *testing.T, pki testPKI, c *controller, node string, src *outcomeSource) (*Agent, func()) {
	t.Helper()
	opts := baseOptions(t, pki, c, &recorder{}, testToken)
	opts.Node, opts.Outcomes = node, src.read
	return runAgent(t, opts)
}

// displace opens a stream as the agent's own instance, which makes the controller end
// the agent's stream; the agent then reconnects and displaces this one in turn.
func displace(t *testing.T, pki testPKI, c *controller, a *Agent) {
	t.Helper()
	pem, err := os.ReadFile(pki.caFile)
	must(t, err)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	t.Cleanup(client.CloseIdleConnections)
	st := a.Status()
	u := distribute.StreamURL(a.base, distribute.StreamParams{Node: a.opts.Node, Role: a.opts.Role, Schema: a.schema, Instance: st.Instance})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := client.Do(req)
	must(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("displacing stream: %d", resp.StatusCode)
	}
	displacedSince := time.Now()
	waitFor(t, "the agent to reconnect", func() bool {
		for _, r := range c.Replicas() {
			if r.Instance == st.Instance && r.Connected && r.ConnectedSince.After(displacedSince) && !r.LastAck.Before(r.ConnectedSince) {
				return true
			}
		}
		return false
	})
}

func TestFleetOutcomesAddUpAcrossReplicasAndRestarts(t *testing.T) {
	pki := newTestPKI(t)
	c := startController(t, pki, "127.0.0.1:0", distribute.Options{HeartbeatInterval: 50 * time.Millisecond})
	srcA, srcB := newOutcomeSource(), newOutcomeSource()
	srcA.set("ns/x:80", 10, 1)
	srcB.set("ns/x:80", 5, 0)
	srcB.set("ns/y:80", 3, 0)
	agentA, stopA := outcomeAgent(t, pki, c, "gw-1", srcA)
	outcomeAgent(t, pki, c, "gw-2", srcB)
	waitForFleet(t, c, "ns/x:80", 15, 1)
	waitForFleet(t, c, "ns/y:80", 3, 0)
	if n := c.LiveReplicas(); n != 2 {
		t.Fatalf("LiveReplicas = %d, want 2", n)
	}

	srcA.set("ns/x:80", 20, 2)
	waitForFleet(t, c, "ns/x:80", 25, 2)

	// A reconnecting agent reports every backend again on its new stream; the
	// controller counts only what grew.
	displace(t, pki, c, agentA)
	srcA.set("ns/x:80", 21, 2)
	waitForFleet(t, c, "ns/x:80", 26, 2)

	// A restarted replica is a new process whose counts start from zero: what it
	// reports adds to the fleet totals, which neither drop to its counts nor count
	// the old process's totals twice.
	stopA()
	fresh := newOutcomeSource()
	fresh.set("ns/x:80", 4, 1)
	restarted, _ := outcomeAgent(t, pki, c, "gw-1", fresh)
	waitForFleet(t, c, "ns/x:80", 30, 3)
	// A few more rounds of acks change nothing.
	acked := time.Now()
	waitFor(t, "more acks of the restarted replica", func() bool {
		for _, r := range c.Replicas() {
			if r.Instance == restarted.Status().Instance && r.LastAck.After(acked.Add(200*time.Millisecond)) {
				return true
			}
		}
		return false
	})
	if !fleetHas(c, "ns/x:80", 30, 3) || !fleetHas(c, "ns/y:80", 3, 0) {
		t.Fatalf("fleet totals moved without new requests: x %+v, y %+v", c.BackendOutcome("ns/x:80"), c.BackendOutcome("ns/y:80"))
	}
}

// legacyAcks is what a controller older than outcome reports makes of acks: bodies up
// to distribute.LegacyMaxAckBytes, of which it reads only the fields it knows. It
// notes the backends and edges reported, by name.
type legacyAcks struct {
	next http.Handler

	mu          sync.Mutex
	refused     int
	largest     int
	acks        int
	withReports int
	reported    map[string]bool
}

func (l *legacyAcks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != distribute.PathAcks {
		l.next.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, distribute.LegacyMaxAckBytes))
	var known struct {
		Stream   string `json:"stream"`
		Applied  string `json:"applied,omitempty"`
		Rejected string `json:"rejected,omitempty"`
		Error    string `json:"error,omitempty"`
	}
	var seen struct {
		Outcomes map[string]json.RawMessage `json:"outcomes"`
		Edges    []outcome.EdgeKey          `json:"edges"`
	}
	if err == nil {
		err = json.Unmarshal(body, &known)
	}
	_ = json.Unmarshal(body, &seen)
	l.mu.Lock()
	l.acks++
	l.largest = max(l.largest, len(body))
	if err != nil {
		l.refused++
	}
	if len(seen.Outcomes) > 0 || len(seen.Edges) > 0 {
		l.withReports++
	}
	for name := range seen.Outcomes {
		l.reported[name] = true
	}
	for _, e := range seen.Edges {
		l.reported[e.String()] = true
	}
	l.mu.Unlock()
	if err != nil {
		http.Error(w, "bad ack: "+err.Error(), http.StatusBadRequest)
		return
	}
	legacy, _ := json.Marshal(known)
	r.Body = io.NopCloser(bytes.NewReader(legacy))
	r.ContentLength = int64(len(legacy))
	l.next.ServeHTTP(w, r)
}

func (l *legacyAcks) counts() (acks, withReports, reported, refused, largest int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acks, l.withReports, len(l.reported), l.refused, l.largest
}

func TestOutcomeReportsFitAnOlderController(t *testing.T) {
	pki := newTestPKI(t)
	srv, err := distribute.NewServer(distribute.Options{Authenticator: distribute.SharedToken(testToken), HeartbeatInterval: 50 * time.Millisecond})
	must(t, err)
	t.Cleanup(srv.Close)
	legacy := &legacyAcks{next: srv.Handler(), reported: map[string]bool{}}
	addr := serveTLS(t, pki, legacy)
	srv.Publish(smallSnapshot("v1", "/a", "127.0.0.1:1"))

	// Names that JSON escapes six times over make a full ack of reports far larger
	// than an older controller takes; the agent sends fewer per ack instead.
	src := newOutcomeSource()
	const backends = 200
	for i := range backends {
		src.set(fmt.Sprintf("ns/%03d%s:80", i, strings.Repeat("<", distribute.MaxOutcomeNameBytes-10)), int64(i+1), 0)
	}
	opts := baseOptions(t, pki, nil, &recorder{}, testToken)
	opts.ControllerURL, opts.Outcomes = "https://"+addr, src.read
	a, _ := runAgent(t, opts)
	waitFor(t, "every backend to be reported", func() bool {
		_, _, reported, _, _ := legacy.counts()
		return reported == backends
	})
	acks, withReports, _, refused, largest := legacy.counts()
	if refused != 0 || largest > distribute.LegacyMaxAckBytes {
		t.Fatalf("%d acks refused, largest %d bytes; want none refused within %d", refused, largest, distribute.LegacyMaxAckBytes)
	}
	if withReports < 2 {
		t.Fatalf("%d reports went in %d acks; want them spread over several", backends, withReports)
	}
	if st := a.Status(); !st.Connected || st.Version != "v1" {
		t.Fatalf("agent status %+v", st)
	}
	// Once everything is reported, an idle replica's keepalives carry no reports.
	waitFor(t, "more keepalives", func() bool {
		n, _, _, _, _ := legacy.counts()
		return n >= acks+5
	})
	if _, again, _, _, _ := legacy.counts(); again != withReports {
		t.Fatalf("idle keepalives carried reports: %d acks with reports, then %d", withReports, again)
	}
}

func TestOutcomeReporterTakesTurnsAndForgets(t *testing.T) {
	src := newOutcomeSource()
	for i := range distribute.MaxAckOutcomes + 10 {
		src.set(fmt.Sprintf("ns/%03d:80", i), 1, 0)
	}
	src.set("ns/"+strings.Repeat("n", distribute.MaxOutcomeNameBytes)+":80", 1, 0)
	r := newOutcomeReporter(src.read)
	first, more := r.pending()
	if len(first) != distribute.MaxAckOutcomes || !more {
		t.Fatalf("first batch: %d reports, more %v", len(first), more)
	}
	r.accept(first)
	// The ten left out go next, with the first batch's changes behind them.
	src.set("ns/000:80", 2, 0)
	second, more := r.pending()
	if len(second) != 11 || more || second[0].key != fmt.Sprintf("ns/%03d:80", distribute.MaxAckOutcomes) || second[10].key != "ns/000:80" {
		t.Fatalf("second batch: %d reports starting %v, more %v", len(second), second[0].key, more)
	}
	// A batch the controller did not accept is offered again.
	if again, _ := r.pending(); len(again) != len(second) {
		t.Fatalf("unaccepted batch: %d reports offered again, want %d", len(again), len(second))
	}
	r.accept(second)
	if rest, more := r.pending(); len(rest) != 0 || more {
		t.Fatalf("nothing changed, yet %d reports pending", len(rest))
	}
	// Backends the source dropped are forgotten.
	src.mu.Lock()
	clear(src.totals)
	src.mu.Unlock()
	r.pending()
	if len(r.accepted) != 0 || len(r.sentAt) != 0 {
		t.Fatalf("the reporter keeps %d backends the source dropped", len(r.accepted))
	}
	if pending, more := newOutcomeReporter(nil).pending(); pending != nil || more {
		t.Fatal("a reporter without a source reports")
	}
}
