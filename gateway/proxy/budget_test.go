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
