package outcome

import (
	"testing"
	"time"
)

func TestPercentileInterpolatesWithinABucket(t *testing.T) {
	// 100 requests between 5ms and 10ms, 100 more between 10ms and 25ms.
	h := Totals{Requests: 200, Latency: make([]int64, Buckets)}
	h.Latency[3], h.Latency[4] = 100, 100
	cases := []struct {
		q    float64
		want time.Duration
	}{
		{0.25, 7500 * time.Microsecond}, // half-way through the 5-10ms bucket
		{0.5, 10 * time.Millisecond},    // the end of the first bucket
		{0.9, 22 * time.Millisecond},    // 80% through the 10-25ms bucket
		{1, 25 * time.Millisecond},
	}
	for _, c := range cases {
		if got := h.Percentile(c.q); got != c.want {
			t.Errorf("p%v = %v, want %v", c.q*100, got, c.want)
		}
	}
	if got := (Totals{}).Percentile(0.5); got != 0 {
		t.Errorf("p50 of nothing = %v", got)
	}
	// Everything in the unbounded bucket lies between the last bound and twice it.
	slow := Totals{Requests: 4, Latency: make([]int64, Buckets)}
	slow.Latency[Buckets-1] = 4
	last := Bounds[len(Bounds)-1]
	if got := slow.Percentile(0.5); got != last+last/2 {
		t.Errorf("p50 of the slowest bucket = %v", got)
	}
	// The first bucket starts at zero.
	fast := Totals{Requests: 2, Latency: make([]int64, Buckets)}
	fast.Latency[0] = 2
	if got := fast.Percentile(0.5); got != Bounds[0]/2 {
		t.Errorf("p50 of the fastest bucket = %v", got)
	}
}

func TestEdgeKeyOrder(t *testing.T) {
	a := EdgeKey{Caller: "shop/web", Callee: "shop/cart"}
	b := EdgeKey{Caller: "shop/web", Callee: "shop/db"}
	c := EdgeKey{Caller: "shop/worker", Callee: "shop/cart"}
	if a.Compare(b) >= 0 || b.Compare(c) >= 0 || a.Compare(a) != 0 || c.Compare(a) <= 0 {
		t.Error("edges are not ordered by caller, then callee")
	}
	if a.String() != "shop/web -> shop/cart" {
		t.Errorf("String = %q", a.String())
	}
}
