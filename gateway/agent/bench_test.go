package agent

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/controller/distribute"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

// BenchmarkPushLatency measures the time from Publish on the controller to Apply
// returning on a replica, over TLS on loopback, for a small configuration and for one of
// 5,000 routes (where the controller encodes the whole view again but sends the replica
// only a delta of the changed lines).
func BenchmarkPushLatency(b *testing.B) {
	for _, routes := range []int{10, 5000} {
		b.Run(fmt.Sprintf("routes=%d", routes), func(b *testing.B) { benchmarkPush(b, routes) })
	}
}

func benchmarkPush(b *testing.B, routes int) {
	pki := newTestPKI(b)
	c := startController(b, pki, "127.0.0.1:0", distribute.Options{})
	applied := make(chan string, 1)
	rec := &recorder{}
	opts := baseOptions(b, pki, c, rec, testToken)
	opts.Apply = func(s *config.Snapshot) error {
		applied <- s.Version
		return nil
	}
	runAgent(b, opts)
	base := syntheticSnapshot(routes, "bench")
	c.Publish(base)
	<-applied

	latencies := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		i++
		next := withRouteChanged(base, i, fmt.Sprintf("bench-%d", i))
		start := time.Now()
		c.Publish(next)
		for v := range applied {
			if v == next.Version {
				break
			}
		}
		latencies = append(latencies, time.Since(start))
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "p99-µs")
}

// withRouteChanged returns a copy of s, under a new version, in which the path of one
// route (the i-th, cyclically) is different: a typical single-route update. The copy
// shares everything else with s.
func withRouteChanged(s *config.Snapshot, i int, version string) *config.Snapshot {
	next := *s
	next.Version = version
	next.Listeners = slices.Clone(s.Listeners)
	next.Listeners[0].VirtualHosts = slices.Clone(s.Listeners[0].VirtualHosts)
	vh := &next.Listeners[0].VirtualHosts[0]
	vh.Routes = slices.Clone(vh.Routes)
	route := &vh.Routes[i%len(vh.Routes)]
	rule := route.Rules[0]
	rule.Matches = []config.Match{{Path: &config.PathMatch{Type: config.PathPrefix, Value: "/" + version}}}
	route.Rules = []config.Rule{rule}
	return &next
}

// TestWireBytesFor5000Routes measures what a whole snapshot costs on the wire at 5,000
// routes: the first one a replica gets is its whole view, gzip-compressed (later
// changes travel as deltas, see TestOneChangeTravelsAsASmallDelta).
func TestWireBytesFor5000Routes(t *testing.T) {
	snap := syntheticSnapshot(5000, "size")
	raw, err := json.Marshal(snap)
	must(t, err)
	start := time.Now()
	gz, err := distribute.EncodeSnapshot(snap)
	must(t, err)
	encodeTook := time.Since(start)
	nodeView, err := distribute.ForRole(snap, distribute.RoleNode)
	must(t, err)
	nodeGz, err := distribute.EncodeSnapshot(nodeView)
	must(t, err)
	t.Logf("5000 routes: JSON %d bytes, gzip %d bytes (%.1fx) encoded in %s; node view gzip %d bytes",
		len(raw), len(gz), float64(len(raw))/float64(len(gz)), encodeTook.Round(time.Millisecond), len(nodeGz))
	if len(gz)*4 > len(raw) {
		t.Errorf("gzip %d bytes is not a quarter of JSON %d bytes", len(gz), len(raw))
	}

	// The bytes a replica actually receives for the change: one frame.
	pki := newTestPKI(t)
	c := startController(t, pki, "127.0.0.1:0", distribute.Options{})
	rec := &recorder{}
	runAgent(t, baseOptions(t, pki, c, rec, testToken))
	c.Publish(snap)
	// Encoding and decoding 5,000 routes takes seconds under the race detector on a
	// busy machine.
	waitWithin(t, time.Minute, "the snapshot acked", func() bool {
		r, _ := c.replica("gw-1", distribute.RoleEdge)
		return r.AckedVersion == snap.Version
	})
	r, _ := c.replica("gw-1", distribute.RoleEdge)
	if want := int64(len(gz) + distribute.FrameHeaderSize); r.BytesSent != want {
		t.Errorf("sent %d bytes, want one frame of %d", r.BytesSent, want)
	}
}
