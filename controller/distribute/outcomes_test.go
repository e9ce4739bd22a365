package distribute

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

// totals returns cumulative totals of requests and errors, all in the first latency
// bucket.
func totals(requests, errors int64) outcome.Totals {
	t := outcome.Totals{Requests: requests, Errors: errors, Latency: make([]int64, outcome.Buckets)}
	t.Latency[0] = requests
	return t
}

// wantFleet fails the test unless the server's fleet totals of a backend are
// requests and errors, with the histogram in step.
func wantFleet(t *testing.T, s *Server, name string, requests, errors int64) {
	t.Helper()
	got := s.BackendOutcome(name)
	if got.Requests != requests || got.Errors != errors || (requests > 0 && got.Latency[0] != requests) {
		t.Fatalf("fleet totals of %s: %+v; want %d requests, %d errors", name, got, requests, errors)
	}
}

// instanceStream opens a stream of an edge replica instance on node gw-1 and returns
// its id and the response, whose body the caller may close to disconnect it.
func instanceStream(t *testing.T, ts *testServer, instance string) (string, *http.Response) {
	t.Helper()
	p := edgeParams("gw-1")
	p.Instance = instance
	resp := ts.openStream(t, p, testToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream of %s: %d", instance, resp.StatusCode)
	}
	return resp.Header.Get(HeaderStream), resp
}

func (ts *testServer) report(t *testing.T, stream string, outcomes map[string]outcome.Totals) {
	t.Helper()
	if code := ts.ack(t, testToken, Ack{Stream: stream, Outcomes: outcomes}); code != http.StatusNoContent {
		t.Fatalf("ack with outcomes: %d", code)
	}
}

func TestFleetOutcomesAddUpReplicasMonotonically(t *testing.T) {
	ts := startServer(t, Options{ForgetAfter: time.Millisecond})
	one, _ := instanceStream(t, ts, "i1")
	two, twoResp := instanceStream(t, ts, "i2")
	if n := ts.LiveReplicas(); n != 2 {
		t.Fatalf("LiveReplicas = %d, want 2", n)
	}
	ts.report(t, one, map[string]outcome.Totals{"ns/a:80": totals(10, 1)})
	ts.report(t, two, map[string]outcome.Totals{"ns/a:80": totals(5, 0), "ns/b:80": totals(3, 3)})
	wantFleet(t, ts.Server, "ns/a:80", 15, 1)
	wantFleet(t, ts.Server, "ns/b:80", 3, 3)

	// A replica reports cumulative totals: only the growth counts, and the same
	// report twice (an ack whose answer was lost) adds nothing.
	ts.report(t, one, map[string]outcome.Totals{"ns/a:80": totals(12, 1)})
	ts.report(t, one, map[string]outcome.Totals{"ns/a:80": totals(12, 1)})
	wantFleet(t, ts.Server, "ns/a:80", 17, 1)

	// Totals below the last report come from a restarted count: all of them are new.
	ts.report(t, one, map[string]outcome.Totals{"ns/a:80": totals(4, 2)})
	wantFleet(t, ts.Server, "ns/a:80", 21, 3)

	// A replica that goes away and is forgotten takes nothing from the fleet totals.
	twoResp.Body.Close()
	waitFor(t, "the second replica to be forgotten", func() bool { return len(ts.Replicas()) == 1 })
	if n := ts.LiveReplicas(); n != 1 {
		t.Fatalf("LiveReplicas = %d, want 1", n)
	}
	wantFleet(t, ts.Server, "ns/a:80", 21, 3)
	wantFleet(t, ts.Server, "ns/b:80", 3, 3)
	if all := ts.BackendOutcomes(); len(all) != 2 || all["ns/b:80"].Requests != 3 {
		t.Fatalf("BackendOutcomes = %v", all)
	}

	// A new process is a new instance: everything it reports is new.
	three, _ := instanceStream(t, ts, "i3")
	ts.report(t, three, map[string]outcome.Totals{"ns/a:80": totals(1, 0)})
	wantFleet(t, ts.Server, "ns/a:80", 22, 3)
}

func TestFleetOutcomesSurviveAReconnection(t *testing.T) {
	ts := startServer(t, Options{})
	first, firstResp := instanceStream(t, ts, "i1")
	ts.report(t, first, map[string]outcome.Totals{"ns/a:80": totals(10, 0)})
	// The same instance reconnects and, on its new stream, reports everything again.
	again, _ := instanceStream(t, ts, "i1")
	_, _ = io.Copy(io.Discard, firstResp.Body)
	ts.report(t, again, map[string]outcome.Totals{"ns/a:80": totals(11, 0)})
	wantFleet(t, ts.Server, "ns/a:80", 11, 0)
}

func TestAcksOfOlderReplicasCarryNoOutcomes(t *testing.T) {
	ts := startServer(t, Options{})
	stream, _ := instanceStream(t, ts, "")
	// The body of an ack from a replica that predates outcome reports.
	body := fmt.Sprintf(`{"stream":%q,"applied":"v1"}`, stream)
	req, _ := http.NewRequest(http.MethodPost, AcksURL(ts.base), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := ts.client.Do(req)
	mustNotErr(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("old ack: %d", resp.StatusCode)
	}
	if r, _ := replicaOf(ts.Server, "gw-1", RoleEdge); r.AckedVersion != "v1" {
		t.Fatalf("acked version %q", r.AckedVersion)
	}
	if all := ts.BackendOutcomes(); len(all) != 0 {
		t.Fatalf("outcomes without reports: %v", all)
	}
}

func TestAckOutcomesAreBounded(t *testing.T) {
	ts := startServer(t, Options{})
	stream, _ := instanceStream(t, ts, "i1")
	tooMany := map[string]outcome.Totals{}
	for i := range MaxAcceptedOutcomes + 1 {
		tooMany[fmt.Sprintf("ns/svc-%d:80", i)] = totals(1, 0)
	}
	if code := ts.ack(t, testToken, Ack{Stream: stream, Outcomes: tooMany}); code != http.StatusBadRequest {
		t.Fatalf("ack with %d reports: %d, want 400", len(tooMany), code)
	}
	if all := ts.BackendOutcomes(); len(all) != 0 {
		t.Fatalf("a refused ack counted: %d backends", len(all))
	}

	// Malformed reports are ignored; the rest of the ack counts.
	mixed := map[string]outcome.Totals{
		"ns/good:80":                 totals(2, 1),
		"":                           totals(1, 0),
		strings.Repeat("n", 513):     totals(1, 0),
		"ns/negative:80":             {Requests: -1},
		"ns/huge:80":                 totals(maxOutcomeCount+1, 0),
		"ns/short-histogram:80":      {Requests: 1, Latency: []int64{1}},
		"ns/negative-bucket:80":      {Requests: 1, Latency: make([]int64, outcome.Buckets)},
		"ns/no-histogram-is-fine:80": {Requests: 4},
	}
	mixed["ns/negative-bucket:80"].Latency[3] = -5
	ts.report(t, stream, mixed)
	all := ts.BackendOutcomes()
	if len(all) != 2 || all["ns/good:80"].Requests != 2 || all["ns/no-histogram-is-fine:80"].Requests != 4 {
		t.Fatalf("fleet totals %v; want only the two well-formed reports", all)
	}

	// An ack with as many reports of long names as the server takes fits
	// MaxAckBytes, though not LegacyMaxAckBytes.
	long := map[string]outcome.Totals{}
	for i := range MaxAcceptedOutcomes {
		name := fmt.Sprintf("ns/%03d-%s:80", i, strings.Repeat("x", MaxOutcomeNameBytes-10))
		long[name] = totals(math.MaxInt32, 7)
	}
	ts.report(t, stream, long)
	if n := len(ts.BackendOutcomes()); n != 2+MaxAcceptedOutcomes {
		t.Fatalf("%d backends after the long report", n)
	}
}

func TestFleetOutcomesSaturateAndMakeRoomForNewBackends(t *testing.T) {
	f := newFleetOutcomes()
	key := replicaKey{node: "gw-1", role: RoleEdge, instance: "i1"}
	now := time.Unix(1_000_000, 0)
	// A replica alternating between a huge count and a small one adds the huge one
	// every other time; the fleet total stops at the largest int64.
	for i := range 2100 {
		n := int64(maxOutcomeCount)
		if i%2 == 1 {
			n = 1
		}
		f.add(key, map[string]outcome.Totals{"ns/a:80": totals(n, 0)}, now)
	}
	if got := f.totals("ns/a:80"); got.Requests != math.MaxInt64 || got.Latency[0] != math.MaxInt64 {
		t.Fatalf("saturated totals %d, %d", got.Requests, got.Latency[0])
	}

	// Fill the table; a new backend has no room while every one was reported lately.
	batch := map[string]outcome.Totals{}
	for i := 1; i < maxFleetBackends; i++ {
		batch[fmt.Sprintf("ns/svc-%05d:80", i)] = totals(1, 0)
	}
	if ignored := f.add(key, batch, now); ignored != 0 {
		t.Fatalf("%d reports ignored below the bound", ignored)
	}
	if ignored := f.add(key, map[string]outcome.Totals{"ns/new:80": totals(1, 0)}, now.Add(time.Minute)); ignored != 1 {
		t.Fatalf("a backend past the bound was taken (ignored %d)", ignored)
	}
	// Once the others have gone unreported long enough, they make room.
	later := now.Add(staleFleetOutcome + time.Minute)
	f.add(key, map[string]outcome.Totals{"ns/svc-00001:80": totals(2, 0)}, later.Add(-time.Second))
	if ignored := f.add(key, map[string]outcome.Totals{"ns/new:80": totals(1, 0)}, later); ignored != 0 {
		t.Fatal("no room was made for a new backend")
	}
	if all := f.all(); len(all) != 2 || all["ns/svc-00001:80"].Requests != 2 || all["ns/new:80"].Requests != 1 {
		t.Fatalf("after the sweep: %d backends", len(all))
	}
	if n := len(f.reported[key]); n != 2 {
		t.Fatalf("the replica's last reports hold %d backends after the sweep, want 2", n)
	}
}
