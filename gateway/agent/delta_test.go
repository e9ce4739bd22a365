package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/controller/distribute"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

// withEndpoints gives every backend of s endpointsPer endpoints.
func withEndpoints(s *config.Snapshot, endpointsPer int) *config.Snapshot {
	for i := range s.Backends {
		b := &s.Backends[i]
		for e := len(b.Endpoints); e < endpointsPer; e++ {
			b.Endpoints = append(b.Endpoints, config.Endpoint{
				Address: fmt.Sprintf("10.%d.%d.%d:8080", e, i/250, i%250), Ready: true, Serving: true, Zone: "zone-b"})
		}
	}
	return s
}

func sameJSON(t testing.TB, a, b *config.Snapshot) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	must(t, err)
	jb, err := json.Marshal(b)
	must(t, err)
	return string(ja) == string(jb)
}

// At 5,000 routes and 20,000 endpoints, a one-route change and a one-endpoint change
// reach the replica as delta frames of a few kilobytes, and the replica runs exactly
// the published snapshot after each.
func TestOneChangeTravelsAsASmallDelta(t *testing.T) {
	pki := newTestPKI(t)
	c := startController(t, pki, "127.0.0.1:0", distribute.Options{})
	rec := &recorder{}
	runAgent(t, baseOptions(t, pki, c, rec, testToken))
	base := syntheticSnapshot(5000, "delta")
	base.Backends = base.Backends[:2500] // 2,500 backends of 8 endpoints: 20,000
	withEndpoints(base, 8)
	c.Publish(base)
	sent := func() distribute.ReplicaStatus {
		r, _ := c.replica("gw-1", distribute.RoleEdge)
		return r
	}
	waitWithin(t, time.Minute, "the first snapshot acked", func() bool { return sent().AckedVersion == base.Version })
	full := sent().BytesSent

	routeChange := withRouteChanged(base, 1234, "delta-route")
	endpointChange := *routeChange
	endpointChange.Version = "delta-endpoint"
	endpointChange.Backends = slices.Clone(routeChange.Backends)
	b := &endpointChange.Backends[777]
	b.Endpoints = slices.Clone(b.Endpoints)
	b.Endpoints[5].Ready = false
	for i, next := range []*config.Snapshot{routeChange, &endpointChange} {
		before := sent().BytesSent
		c.Publish(next)
		waitWithin(t, time.Minute, next.Version+" acked", func() bool { return sent().AckedVersion == next.Version })
		cost := sent().BytesSent - before
		t.Logf("%s: %d bytes on the wire; the whole snapshot was %d", next.Version, cost, full)
		if r := sent(); r.DeltasSent != i+1 || cost > 4<<10 || cost*10 > full {
			t.Errorf("%s: %d bytes and %d deltas sent; want a delta of at most 4 KiB", next.Version, cost, r.DeltasSent)
		}
		if !sameJSON(t, rec.last(), next) {
			t.Errorf("%s: the replica runs a snapshot that differs from the published one", next.Version)
		}
	}
}

// A delta frame against lines the replica does not hold makes it drop the stream and
// reconnect, and the whole snapshot it is sent then is what it runs: it never applies a
// configuration built from the wrong base.
func TestADeltaAgainstAnotherBaseLeadsToAFullResync(t *testing.T) {
	pki := newTestPKI(t)
	encode := func(s *config.Snapshot) *distribute.SnapshotLines {
		payload, err := distribute.EncodeSnapshot(s)
		must(t, err)
		lines, err := distribute.ParseSnapshotLines(payload, distribute.DefaultMaxFrameBytes)
		must(t, err)
		return lines
	}
	first, second := smallSnapshot("v1", "/one", "10.0.0.1:80"), smallSnapshot("v2", "/two", "10.0.0.2:80")
	stranger := encode(smallSnapshot("v0", "/zero", "10.0.0.9:80"))
	wrongDelta, err := distribute.EncodeDelta(stranger, encode(second))
	must(t, err)
	firstPayload, err := distribute.EncodeSnapshot(first)
	must(t, err)
	secondPayload, err := distribute.EncodeSnapshot(second)
	must(t, err)

	var connects atomic.Int32
	var mu sync.Mutex
	var queries []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == distribute.PathAcks {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		w.Header().Set(distribute.HeaderStream, "s")
		w.Header().Set(distribute.HeaderHeartbeatMs, "1000")
		if connects.Add(1) == 1 {
			must(t, distribute.WriteFrame(w, distribute.FrameSnapshot, firstPayload))
			must(t, distribute.WriteFrame(w, distribute.FrameDelta, wrongDelta))
		} else {
			must(t, distribute.WriteFrame(w, distribute.FrameSnapshot, secondPayload))
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	addr := serveTLS(t, pki, h)
	rec := &recorder{}
	opts := baseOptions(t, pki, nil, rec, testToken)
	opts.ControllerURL = "https://" + addr
	runAgent(t, opts)
	waitFor(t, "v2 applied", func() bool { return rec.last() != nil && rec.last().Version == "v2" })
	for _, v := range rec.versions() {
		if v != "v1" && v != "v2" {
			t.Errorf("applied %q", v)
		}
	}
	if !sameJSON(t, rec.last(), second) {
		t.Error("the replica runs a snapshot that differs from the one sent whole")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(queries) < 2 {
		t.Fatalf("stream requests %q, want a reconnect", queries)
	}
	for i, raw := range queries {
		q, err := url.ParseQuery(raw)
		must(t, err)
		if q.Get("delta") != "1" {
			t.Errorf("stream request %q does not ask for deltas", raw)
		}
		// Lines the controller disagreed on are not offered as a base again.
		if i > 0 && q.Get("base") != "" {
			t.Errorf("stream request %q after the refused delta offers a base", raw)
		}
	}
}
