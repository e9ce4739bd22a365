package mesh

import (
	"fmt"
	"testing"
	"time"
)

func TestEdgeStatsCapsDistinctEdges(t *testing.T) {
	s := NewEdgeStats(3)
	key := func(caller, svc string) EdgeKey {
		return EdgeKey{CallerNamespace: "shop", CallerWorkload: caller, ServiceNamespace: "shop", Service: svc}
	}
	s.Record(key("web", "db"), 3*time.Millisecond, false)
	s.Record(key("web", "db"), 30*time.Millisecond, true)
	s.Record(key("api", "db"), time.Millisecond, false)
	s.Record(EdgeKey{CallerNamespace: "shop", CallerWorkload: "web", Egress: "api.example.com"}, time.Millisecond, false)
	for i := range 5 {
		s.Record(key("batch", fmt.Sprint(i)), time.Millisecond, i%2 == 0)
	}
	r := s.Report()
	if len(r.Edges) != 3 {
		t.Fatalf("%d edges kept, want 3", len(r.Edges))
	}
	if r.Overflow.Requests != 5 || r.Overflow.Errors != 3 || r.OverflowEdges != 5 {
		t.Errorf("overflow %+v, %d refused; want 5 requests, 3 errors, 5 refused", r.Overflow, r.OverflowEdges)
	}
	want := []string{"shop/api -> shop/db", "shop/web -> api.example.com", "shop/web -> shop/db"}
	for i, e := range r.Edges {
		if got := e.Caller() + " -> " + e.Callee(); got != want[i] {
			t.Errorf("edge %d is %s, want %s", i, got, want[i])
		}
	}
	webDB := r.Edges[2].Totals
	if webDB.Requests != 2 || webDB.Errors != 1 || webDB.Latency[2] != 1 || webDB.Latency[5] != 1 {
		t.Errorf("shop/web -> shop/db: %+v", webDB)
	}
	k := key("web", "db")
	if n := testing.AllocsPerRun(100, func() { s.Record(k, time.Millisecond, false) }); n != 0 {
		t.Errorf("recording on a known edge allocates %v times", n)
	}
}

func TestEdgeStatsDefaultCap(t *testing.T) {
	if s := NewEdgeStats(0); s.max != DefaultMaxEdges {
		t.Fatalf("cap %d", s.max)
	}
}
