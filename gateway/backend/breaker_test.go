package backend

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

func breakerWith(l config.CircuitBreaker) *Breaker {
	b := &Breaker{}
	b.setLimits(&l)
	return b
}

func TestBreakerMaxRequests(t *testing.T) {
	b := breakerWith(config.CircuitBreaker{MaxRequests: 2})
	r1, err1 := b.Acquire(context.Background())
	r2, err2 := b.Acquire(context.Background())
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := b.Acquire(context.Background()); !errors.Is(err, ErrOverflow) {
		t.Fatalf("third request: %v; want ErrOverflow", err)
	}
	r1()
	r3, err := b.Acquire(context.Background())
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	r2()
	r3()
	if b.Overflows() != 1 {
		t.Fatalf("%d overflows counted; want 1", b.Overflows())
	}
}

func TestBreakerQueuesForConnectionsInOrder(t *testing.T) {
	b := breakerWith(config.CircuitBreaker{MaxConnections: 1, MaxPendingRequests: 2})
	hold, err := b.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := b.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			release()
		}()
		// Let each waiter queue before the next, so the order is known.
		waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.queue) == i+1 })
	}
	if _, err := b.Acquire(context.Background()); !errors.Is(err, ErrOverflow) {
		t.Fatalf("with the queue full: %v; want ErrOverflow", err)
	}
	hold()
	wg.Wait()
	if len(order) != 2 || order[0] != 0 || order[1] != 1 {
		t.Fatalf("waiters served in order %v; want [0 1]", order)
	}
	if b.active.Load() != 0 || len(b.queue) != 0 || b.waiting.Load() != 0 || b.requests.Load() != 0 {
		t.Fatalf("state after all releases: active %d, queued %d, requests %d", b.active.Load(), len(b.queue), b.requests.Load())
	}
}

func TestBreakerWaiterGivingUpPassesTheSlotOn(t *testing.T) {
	b := breakerWith(config.CircuitBreaker{MaxConnections: 1, MaxPendingRequests: 5})
	hold, _ := b.Acquire(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a waiter past its deadline: %v", err)
	}
	hold()
	release, err := b.Acquire(context.Background())
	if err != nil {
		t.Fatalf("the slot was lost with the waiter that gave up: %v", err)
	}
	release()
}

func TestBreakerRetriesAndNoLimits(t *testing.T) {
	b := breakerWith(config.CircuitBreaker{MaxRetries: 1})
	r, ok := b.TryRetry()
	if !ok {
		t.Fatal("the first retry was refused")
	}
	if _, ok := b.TryRetry(); ok {
		t.Fatal("a second retry in flight was admitted")
	}
	r()
	r2, ok := b.TryRetry()
	if !ok {
		t.Fatal("the released retry did not free its place")
	}
	r2()
	open := &Breaker{}
	open.setLimits(&config.CircuitBreaker{})
	for range 1000 {
		if _, err := open.Acquire(context.Background()); err != nil {
			t.Fatal("a breaker without caps refused a request")
		}
	}
}

func TestBreakerRaisedCapWakesWaiters(t *testing.T) {
	b := breakerWith(config.CircuitBreaker{MaxConnections: 1, MaxPendingRequests: 1})
	hold, _ := b.Acquire(context.Background())
	defer hold()
	admitted := make(chan error, 1)
	go func() {
		release, err := b.Acquire(context.Background())
		if err == nil {
			release()
		}
		admitted <- err
	}()
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.queue) == 1 })
	b.setLimits(&config.CircuitBreaker{MaxConnections: 2, MaxPendingRequests: 1})
	select {
	case err := <-admitted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a raised cap did not admit the waiting request")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBreakerSlotsUnderContention has many requests take and release two slots at
// once, so that the lock-free admissions and releases race with queued waiters: no
// more than two requests may hold a slot at any time, none may be lost or wait for
// ever, and every count returns to zero.
func TestBreakerSlotsUnderContention(t *testing.T) {
	b := breakerWith(config.CircuitBreaker{MaxConnections: 2, MaxPendingRequests: 64})
	var holding, most atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				release, err := b.Acquire(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				n := holding.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				holding.Add(-1)
				release()
			}
		}()
	}
	wg.Wait()
	if most.Load() > 2 {
		t.Fatalf("%d requests held a slot at once; the cap is 2", most.Load())
	}
	if b.active.Load() != 0 || b.waiting.Load() != 0 || len(b.queue) != 0 || b.requests.Load() != 0 {
		t.Fatalf("state after all releases: active %d, waiting %d, queued %d, requests %d",
			b.active.Load(), b.waiting.Load(), len(b.queue), b.requests.Load())
	}
}

// TestBreakerAdmissionDoesNotAllocate checks that admitting and releasing a request
// and a retry cost no allocation, as they run for every request of the backend.
func TestBreakerAdmissionDoesNotAllocate(t *testing.T) {
	b := breakerWith(config.CircuitBreaker{MaxConnections: 4, MaxPendingRequests: 4, MaxRequests: 8, MaxRetries: 2})
	ctx := context.Background()
	n := testing.AllocsPerRun(100, func() {
		release, err := b.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		releaseRetry, ok := b.TryRetry()
		if !ok {
			t.Fatal("retry refused")
		}
		releaseRetry()
		release()
	})
	if n != 0 {
		t.Fatalf("an admission allocated %v times", n)
	}
}

func TestBreakerTryAcquireNeverWaitsOrCountsOverflows(t *testing.T) {
	b := breakerWith(config.CircuitBreaker{MaxConnections: 1, MaxPendingRequests: 5, MaxRequests: 10})
	release, ok := b.TryAcquire()
	if !ok {
		t.Fatal("a free slot was not taken")
	}
	if _, ok := b.TryAcquire(); ok {
		t.Fatal("a second request was admitted past MaxConnections 1")
	}
	if n := b.Overflows(); n != 0 {
		t.Errorf("TryAcquire counted %d overflows; Acquire counts them", n)
	}
	release()
	release, ok = b.TryAcquire()
	if !ok {
		t.Fatal("a released slot was not taken again")
	}
	release()
	unlimited := breakerWith(config.CircuitBreaker{})
	if release, ok := unlimited.TryAcquire(); !ok {
		t.Error("a breaker without caps refused a request")
	} else {
		release()
	}
	capped := breakerWith(config.CircuitBreaker{MaxRequests: 1})
	r1, ok1 := capped.TryAcquire()
	_, ok2 := capped.TryAcquire()
	if !ok1 || ok2 {
		t.Errorf("MaxRequests 1 admitted %v then %v, want true then false", ok1, ok2)
	}
	r1()
	if _, ok := capped.TryAcquire(); !ok {
		t.Error("MaxRequests 1 refused after the first request was released")
	}
}
