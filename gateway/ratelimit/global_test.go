package ratelimit

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard-dev/switchyard/internal/testredis"
)

func newClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

func newGlobal(t *testing.T, opts GlobalOptions) *Global {
	t.Helper()
	g := NewGlobal(opts)
	t.Cleanup(func() { g.Close() })
	return g
}

func TestGlobalEnforcesExactCountAtLowRate(t *testing.T) {
	srv := testredis.Start(t)
	g := newGlobal(t, GlobalOptions{Client: newClient(t, srv.Addr()), Prefix: "exact",
		Limit: Limit{Requests: 10, Per: time.Minute}})
	ctx := context.Background()
	allowed := 0
	for range 30 {
		if g.Take(ctx, "k").Allowed {
			allowed++
		}
	}
	if allowed != 10 {
		t.Fatalf("%d of 30 allowed; want the bucket's 10", allowed)
	}
	if g.Degraded() {
		t.Fatal("the limiter reports Redis down")
	}
	// A second replica shares the bucket: nothing left for it.
	g2 := newGlobal(t, GlobalOptions{Client: newClient(t, srv.Addr()), Prefix: "exact",
		Limit: Limit{Requests: 10, Per: time.Minute}})
	if d := g2.Take(ctx, "k"); d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("second replica: %+v; want denied with a Retry-After", d)
	}
}

// hammer sends requests from workers goroutines per limiter for d and returns the
// number allowed, the number sent and the time taken.
func hammer(limiters []*Global, workers int, d time.Duration) (int64, int64, time.Duration) {
	var allowed, sent atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for _, g := range limiters {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; n < 1_000_000 && time.Now().Before(deadline); n++ {
					sent.Add(1)
					if g.Take(context.Background(), "shared").Allowed {
						allowed.Add(1)
					}
					if n%64 == 0 {
						time.Sleep(100 * time.Microsecond)
					}
				}
			}()
		}
	}
	wg.Wait()
	return allowed.Load(), sent.Load(), time.Since(start)
}

func TestGlobalAccuracyAcrossReplicas(t *testing.T) {
	srv := testredis.Start(t)
	limit := Limit{Requests: 500, Per: time.Second, Burst: 100}
	var limiters []*Global
	for range 3 {
		// A generous Redis timeout: on a loaded machine a call slower than the default
		// would switch the replica to its fallback, whose bound this test is not about.
		limiters = append(limiters, newGlobal(t, GlobalOptions{Client: newClient(t, srv.Addr()),
			Prefix: "acc", Limit: limit, Timeout: 5 * time.Second}))
	}
	admitted, sent, elapsed := hammer(limiters, 4, 1500*time.Millisecond)
	for i, g := range limiters {
		if g.Degraded() {
			t.Fatalf("replica %d switched to its fallback; the bound only holds with Redis up", i)
		}
	}
	exact := float64(limit.Capacity()) + limit.Rate()*elapsed.Seconds()
	bound := exact + float64(2*3*limiters[0].MaxBatch())
	var calls int64
	for _, g := range limiters {
		calls += g.RedisCalls()
	}
	t.Logf("admitted %d of %d in %v; exact bucket %.0f, bound %.0f; %d Redis calls", admitted, sent, elapsed, exact, bound, calls)
	if float64(admitted) > bound {
		t.Fatalf("admitted %d, over the documented bound %.0f", admitted, bound)
	}
	if float64(admitted) < 0.85*exact {
		t.Fatalf("admitted %d, under 85%% of the %.0f allowed", admitted, exact)
	}
	if sent < 4*admitted {
		t.Fatalf("only %d requests sent for %d admitted: the test did not saturate the limit", sent, admitted)
	}
	if calls*10 > sent {
		t.Fatalf("%d Redis calls for %d requests: leases and pauses are not saving round trips", calls, sent)
	}
}

func TestGlobalFailureModesAndRecovery(t *testing.T) {
	srv := testredis.Start(t)
	limit := Limit{Requests: 4, Per: time.Minute}
	replicas := func() int { return 2 }
	modes := map[FailureMode]*Global{}
	for _, m := range []FailureMode{FailLocalFallback, FailAllow, FailDeny} {
		modes[m] = newGlobal(t, GlobalOptions{Client: newClient(t, srv.Addr()), Prefix: "fm-" + string(m),
			Limit: limit, FailureMode: m, Replicas: replicas})
	}
	ctx := context.Background()
	srv.Stop()
	for m, g := range modes {
		start := time.Now()
		allowed := 0
		for range 10 {
			if g.Take(ctx, "k").Allowed {
				allowed++
			}
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s: 10 decisions with Redis down took %v", m, took)
		}
		want := map[FailureMode]int{FailLocalFallback: 2, FailAllow: 10, FailDeny: 0}[m]
		if allowed != want {
			t.Errorf("%s with Redis down: %d of 10 allowed; want %d", m, allowed, want)
		}
		if !g.Degraded() {
			t.Errorf("%s: not degraded with Redis down", m)
		}
	}
	srv.Restart()
	g := modes[FailDeny]
	deadline := time.Now().Add(5 * time.Second)
	for g.Degraded() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if g.Degraded() {
		t.Fatal("still degraded 5 s after Redis came back")
	}
	if d := g.Take(ctx, "k"); !d.Allowed {
		t.Fatalf("after recovery: %+v; want allowed from a fresh shared bucket", d)
	}
}

func TestGlobalUnreachableFromStart(t *testing.T) {
	srv := testredis.Start(t)
	addr := srv.Addr()
	srv.Stop()
	g := newGlobal(t, GlobalOptions{Client: newClient(t, addr), Prefix: "down",
		Limit: Limit{Requests: 3, Per: time.Minute}})
	allowed := 0
	for range 5 {
		if g.Take(context.Background(), "k").Allowed {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("%d allowed by the local fallback in standalone; want the whole limit of 3", allowed)
	}
}

func TestGlobalHashesLongKeys(t *testing.T) {
	g := NewGlobal(GlobalOptions{Prefix: "p", Limit: Limit{Requests: 1, Per: time.Second}})
	long := g.redisKey(strings.Repeat("x", 10_000))
	if len(long) > 64 || long == g.redisKey(strings.Repeat("x", 10_001)) {
		t.Fatalf("long keys map to %q", long)
	}
	if g.redisKey("10-0-0-1") != "sy:rl:p:10-0-0-1" {
		t.Fatalf("short keys are kept readable: %q", g.redisKey("10-0-0-1"))
	}
}

func TestGlobalCancelledRequestDoesNotDegrade(t *testing.T) {
	srv := testredis.Start(t)
	g := newGlobal(t, GlobalOptions{Client: newClient(t, srv.Addr()), Prefix: "cancel",
		Limit: Limit{Requests: 1, Per: time.Minute}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g.Take(ctx, "k")
	if g.Degraded() {
		t.Fatal("a cancelled request put the limiter into its failure mode")
	}
	if d := g.Take(context.Background(), "k"); d.Allowed {
		t.Fatal("the one token was not spent by the cancelled request's Take, or the limit is not enforced")
	}
}
