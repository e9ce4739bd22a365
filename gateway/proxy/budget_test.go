package proxy

import (
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
