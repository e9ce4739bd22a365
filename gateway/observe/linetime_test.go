package observe

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestAppendTimeMatchesRFC3339Nano checks the access log's time against
// time.RFC3339Nano for times in several zones, whole seconds and fractions with
// trailing zeros among them, in an order that both reuses and replaces the text of
// the last second.
func TestAppendTimeMatchesRFC3339Nano(t *testing.T) {
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("east", 5*3600+30*60),
		time.FixedZone("west", -3*3600), time.FixedZone("seconds", 3600+17)}
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Now()
	times := []time.Time{base, base.Truncate(time.Second), base.Truncate(time.Millisecond),
		time.Unix(0, 0), time.Unix(1, 100), time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC)}
	// Each group of three digits of the fraction, with trailing zeros in and after
	// it: the groups are written and trimmed one by one.
	for _, ns := range []int64{5e8, 5e7, 120e6, 999e6, 1e3, 120e3, 7e5, 123456e3, 1, 10, 100, 123456780, 999999999} {
		times = append(times, time.Unix(1700000000, ns), base.Truncate(time.Second).Add(time.Duration(ns)))
	}
	for range 2000 {
		// Mostly within a few seconds, as lines come, with some far away.
		d := time.Duration(rng.Int64N(int64(3 * time.Second)))
		if rng.IntN(10) == 0 {
			d = time.Duration(rng.Int64N(int64(50 * 365 * 24 * time.Hour)))
		}
		times = append(times, base.Add(d))
	}
	for i, tm := range times {
		tm = tm.In(zones[i/7%len(zones)])
		want := tm.Format(time.RFC3339Nano)
		if got := string(appendTime(nil, tm)); got != want {
			t.Fatalf("appendTime(%v) = %s, want %s", tm, got, want)
		}
		// Again, from the text of this second.
		if got := string(appendTime([]byte("x"), tm)); got != "x"+want {
			t.Fatalf("appendTime(%v) again = %s, want x%s", tm, got, want)
		}
	}
}

// BenchmarkAppendTime is the access log's time field, from the text of its second.
func BenchmarkAppendTime(b *testing.B) {
	now := time.Now()
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendTime(buf[:0], now)
	}
}
