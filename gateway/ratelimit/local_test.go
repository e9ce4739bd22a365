package ratelimit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// clock is a settable time source for tests of the bucket arithmetic.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestLocal(limit Limit, maxKeys int) (*Local, *clock) {
	c := &clock{t: time.Unix(1_000_000, 0)}
	l := NewLocal(limit, maxKeys)
	l.now = c.now
	return l, c
}

func TestLocalBucketStartsFullAndRefills(t *testing.T) {
	l, c := newTestLocal(Limit{Requests: 10, Per: time.Second, Burst: 5}, 0)
	ctx := context.Background()
	for i := range 15 {
		d := l.Take(ctx, "k")
		if !d.Allowed || d.Limit != 15 || d.Remaining != int64(14-i) {
			t.Fatalf("request %d: %+v; want allowed with %d remaining of 15", i+1, d, 14-i)
		}
	}
	d := l.Take(ctx, "k")
	if d.Allowed || d.RetryAfter != 101*time.Millisecond || d.Remaining != 0 {
		t.Fatalf("16th request: %+v; want denied, retry after 101ms", d)
	}
	if d.Reset != 1501*time.Millisecond {
		t.Errorf("reset %v; want 1.501s to refill 15 tokens at 10/s", d.Reset)
	}
	c.advance(250 * time.Millisecond)
	allowed := 0
	for range 5 {
		if l.Take(ctx, "k").Allowed {
			allowed++
		}
	}
	if allowed != 2 {
		t.Fatalf("after 250ms at 10/s, %d requests allowed; want 2", allowed)
	}
	// Other keys have buckets of their own.
	if !l.Take(ctx, "other").Allowed {
		t.Fatal("a fresh key was denied")
	}
	// A long idle period refills to capacity, not beyond.
	c.advance(time.Hour)
	if d := l.Take(ctx, "k"); d.Remaining != 14 {
		t.Fatalf("after an hour idle: %+v; want 14 remaining", d)
	}
}

func TestLocalForgetsLeastRecentlyUsedKeys(t *testing.T) {
	l, _ := newTestLocal(Limit{Requests: 1, Per: time.Hour}, 100)
	ctx := context.Background()
	for i := range 1000 {
		l.Take(ctx, fmt.Sprint("key-", i))
	}
	if l.Len() != 100 {
		t.Fatalf("%d buckets kept; want the bound of 100", l.Len())
	}
	if l.Take(ctx, "key-999").Allowed {
		t.Fatal("a recent key's empty bucket was forgotten")
	}
}

// TestLocalKeepsAKeyInUseThroughAFlood sends a flood of new keys while one key keeps
// being used: its bucket, recently used in its shard, is never the one forgotten.
func TestLocalKeepsAKeyInUseThroughAFlood(t *testing.T) {
	l, _ := newTestLocal(Limit{Requests: 1, Per: time.Hour}, 64)
	ctx := context.Background()
	if !l.Take(ctx, "hot").Allowed {
		t.Fatal("a fresh key was denied")
	}
	for i := range 5000 {
		l.Take(ctx, fmt.Sprint("flood-", i))
		if l.Take(ctx, "hot").Allowed {
			t.Fatalf("after %d new keys the key in use was forgotten and got a full bucket", i+1)
		}
	}
	if l.Len() != 64 {
		t.Fatalf("%d buckets kept; want the bound of 64", l.Len())
	}
}

// TestLocalTakeAtCountsFromTheGivenTime checks that TakeAt refills by the times it
// is given, not by the clock, and that a time older than a bucket's last refill
// takes from what the bucket holds without refilling it backwards.
func TestLocalTakeAtCountsFromTheGivenTime(t *testing.T) {
	l, c := newTestLocal(Limit{Requests: 10, Per: time.Second}, 0)
	l.now = func() time.Time {
		t.Fatal("TakeAt read the limiter's clock")
		return time.Time{}
	}
	start := c.t
	for i := range 10 {
		if d := l.TakeAt("k", start); !d.Allowed {
			t.Fatalf("request %d of a full bucket of 10 was denied: %+v", i+1, d)
		}
	}
	if d := l.TakeAt("k", start); d.Allowed {
		t.Fatalf("an empty bucket allowed a request: %+v", d)
	}
	// Three tokens are earned by start+300ms; a request stamped earlier than that
	// reading takes one of them rather than earning any again.
	late := start.Add(300 * time.Millisecond)
	if d := l.TakeAt("k", late); !d.Allowed || d.Remaining != 2 {
		t.Fatalf("at +300ms: %+v; want allowed with 2 remaining", d)
	}
	if d := l.TakeAt("k", start.Add(200*time.Millisecond)); !d.Allowed || d.Remaining != 1 {
		t.Fatalf("a request stamped +200ms after one at +300ms: %+v; want allowed with 1 remaining", d)
	}
	if d := l.TakeAt("k", late); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("at +300ms again: %+v; want allowed with 0 remaining", d)
	}
	if d := l.TakeAt("k", late); d.Allowed {
		t.Fatalf("at +300ms, a fourth request was allowed: %+v", d)
	}
}

// TestLocalTakeAtAgreesWithTake checks that TakeAt and Take, given the same times,
// decide alike for a sequence of requests of more keys than the limiters keep, some
// allowed and some denied.
func TestLocalTakeAtAgreesWithTake(t *testing.T) {
	limit := Limit{Requests: 7, Per: 700 * time.Millisecond, Burst: 3}
	byClock, c := newTestLocal(limit, 4)
	byTime := NewLocal(limit, 4)
	// The same seed puts each key in the same shard of both, so that they forget
	// the same keys.
	byTime.seed = byClock.seed
	allowed := 0
	const requests = 500
	for i := range requests {
		// Runs of twelve requests of a key empty its bucket of ten; six keys in
		// turn are more than the four kept.
		key := fmt.Sprint("k", i/12%6)
		want := byClock.Take(context.Background(), key)
		if got := byTime.TakeAt(key, c.t); got != want {
			t.Fatalf("request %d (%s): TakeAt %+v, Take %+v", i, key, got, want)
		}
		if want.Allowed {
			allowed++
		}
		c.advance(time.Duration(i%5) * 3 * time.Millisecond)
	}
	if allowed == 0 || allowed == requests {
		t.Fatalf("%d of %d requests allowed; the sequence should have both outcomes", allowed, requests)
	}
}

func TestLimitValidateAndScale(t *testing.T) {
	for _, bad := range []Limit{{}, {Requests: 1}, {Requests: -1, Per: time.Second}, {Requests: 1, Per: time.Second, Burst: -1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
	l := Limit{Requests: 100, Per: time.Second, Burst: 30}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	if s := l.Scaled(3); s.Requests != 33 || s.Burst != 10 {
		t.Errorf("scaled by 3: %+v", s)
	}
	if s := (Limit{Requests: 2, Per: time.Second}).Scaled(5); s.Requests != 1 {
		t.Errorf("a share never drops below one request: %+v", s)
	}
}

func BenchmarkLocalTake(b *testing.B) {
	l := NewLocal(Limit{Requests: 1 << 30, Per: time.Second}, 0)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("client-", i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Take(ctx, keys[i%len(keys)])
			i++
		}
	})
}

// BenchmarkLocalTakeAt is a token of one key, the client of a busy connection, at a
// time the caller read already, as the rate limit filter takes it.
func BenchmarkLocalTakeAt(b *testing.B) {
	l := NewLocal(Limit{Requests: 1 << 30, Per: time.Second}, 0)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		l.TakeAt("192.0.2.1", now)
	}
}
