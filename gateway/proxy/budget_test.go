package proxy

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestRetryBudgetCountsConcurrentRequestsExactly counts requests and retries from
// several goroutines at once, and checks that none is lost and that a slot reused
// by a later second starts over.
func TestRetryBudgetCountsConcurrentRequestsExactly(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := &retryBudget{percent: 10, now: func() time.Time { return now }}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				b.request()
				b.retried()
			}
		}()
	}
	wg.Wait()
	sec := now.Unix()
	slot := sec % budgetWindow
	if got := inWindow(b.requests[slot].Load(), sec); got != 4000 {
		t.Fatalf("%d requests counted; want 4000", got)
	}
	if got := inWindow(b.retries[slot].Load(), sec); got != 4000 {
		t.Fatalf("%d retries counted; want 4000", got)
	}
	// The same slot, a window later, counts from one again.
	b.request()
	later := sec + budgetWindow
	now = time.Unix(later, 0)
	b.request()
	if got := inWindow(b.requests[slot].Load(), later); got != 1 {
		t.Fatalf("a slot reused a window later holds %d requests; want 1", got)
	}
	if got := inWindow(b.retries[slot].Load(), later); got != 0 {
		t.Fatalf("retries of a past window count %d; want 0", got)
	}
}

// TestRetryBudgetCountsAtTheGivenTimes checks that requestAt and allowsAt count by
// the readings of the clock they are given, which the forwarder makes anyway, and
// never read the budget's own.
func TestRetryBudgetCountsAtTheGivenTimes(t *testing.T) {
	b := &retryBudget{percent: 50, now: func() time.Time {
		t.Fatal("the budget read its own clock")
		return time.Time{}
	}}
	start := time.Unix(1_700_000_000, 0)
	if b.allowsAt(start) {
		t.Fatal("a retry was allowed with no requests and no minimum")
	}
	b.requestAt(start)
	b.requestAt(start.Add(500 * time.Millisecond))
	if !b.allowsAt(start.Add(time.Second)) {
		t.Fatal("50% of two requests in the window does not allow a retry")
	}
	countIn(&b.retries, start.Unix())
	if b.allowsAt(start.Add(time.Second)) {
		t.Fatal("a second retry was allowed for two requests at 50%")
	}
	// A window after the requests, they no longer count.
	if b.allowsAt(start.Add(budgetWindow * time.Second)) {
		t.Fatal("requests of a past window still allow retries")
	}
}

// TestRetryBudgetAllowsAsItsFormula fills a budget's slots with random counts of
// random seconds and checks allowsAt against the budget's rule, retries within
// percent of requests plus minRPS a second, summed over the window in full: the
// shortcut that skips the requests while the retries are under the floor must not
// change an answer.
func TestRetryBudgetAllowsAsItsFormula(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 1))
	now := time.Unix(1_800_000_000, 0)
	sec := now.Unix()
	for range 5000 {
		b := &retryBudget{percent: rng.IntN(60), minRPS: rng.IntN(4)}
		requests, retries := 0, 0
		for i := range budgetWindow {
			// Slots of seconds in the window and out of it.
			reqSec, retSec := sec-int64(rng.IntN(2*budgetWindow)), sec-int64(rng.IntN(2*budgetWindow))
			reqN, retN := rng.IntN(50), rng.IntN(12)
			b.requests[i].Store(uint64(uint32(reqSec))<<32 | uint64(reqN))
			b.retries[i].Store(uint64(uint32(retSec))<<32 | uint64(retN))
			if sec-reqSec < budgetWindow {
				requests += reqN
			}
			if sec-retSec < budgetWindow {
				retries += retN
			}
		}
		want := retries*100 < requests*b.percent+b.minRPS*budgetWindow*100
		if got := b.allowsAt(now); got != want {
			t.Fatalf("allowsAt = %v with %d retries, %d requests, %d%% and %d a second; want %v",
				got, retries, requests, b.percent, b.minRPS, want)
		}
	}
}
