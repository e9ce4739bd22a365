package backend

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// ErrOverflow is returned by Breaker.Acquire when a circuit breaker cap is reached.
var ErrOverflow = errors.New("circuit breaker: backend at capacity")

// maxQueueWait bounds how long a request waits for a connection slot.
const maxQueueWait = 10 * time.Second

// Breaker enforces a backend's circuit breaker caps for one replica. It belongs to
// the backend's Pool, so its counts survive configuration versions; a new version
// may change the caps, which apply to the next admissions.
//
// Every request of the backend passes through it, so admitting and releasing take
// no lock while no request waits for a connection slot: counts are atomic, and the
// release functions are made once. The lock guards the queue of waiting requests.
type Breaker struct {
	limits atomic.Pointer[config.CircuitBreaker]

	requests atomic.Int64
	retries  atomic.Int64
	// Breaker trips since start, for metrics.
	overflows atomic.Uint64

	// active counts the connection slots in use; waiting is len(queue), readable
	// without the lock.
	active  atomic.Int64
	waiting atomic.Int64

	// releasers holds the functions Acquire and TryRetry return, made once.
	releasers      sync.Once
	releaseAdmit   func()
	releaseSlot    func()
	releaseRetry   func()
	releaseNothing func()

	mu sync.Mutex
	// queue holds the requests waiting for a slot, oldest first. A slot is handed
	// over by closing the waiter's channel.
	queue []chan struct{}
}

// makeReleasers makes the release functions, which only refer to b.
func (b *Breaker) makeReleasers() {
	b.releaseAdmit = func() { b.requests.Add(-1) }
	b.releaseSlot = func() {
		b.freeSlot()
		b.requests.Add(-1)
	}
	b.releaseRetry = func() { b.retries.Add(-1) }
	b.releaseNothing = func() {}
}

func (b *Breaker) setLimits(l *config.CircuitBreaker) {
	if l != nil && *l == (config.CircuitBreaker{}) {
		l = nil
	}
	b.limits.Store(l)
	// Waiters get the slots a raised (or removed) cap frees.
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handOff()
}

// takeSlot takes a connection slot if one of the current cap's is free.
func (b *Breaker) takeSlot() bool {
	l := b.limits.Load()
	if l == nil || l.MaxConnections <= 0 {
		b.active.Add(1)
		return true
	}
	for {
		n := b.active.Load()
		if n >= int64(l.MaxConnections) {
			return false
		}
		if b.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// handOff gives free slots to the waiters, oldest first. b.mu is held.
func (b *Breaker) handOff() {
	for len(b.queue) > 0 && b.takeSlot() {
		close(b.queue[0])
		b.queue = b.queue[1:]
		b.waiting.Add(-1)
	}
}

// admission is how a request fared at admitAtOnce.
type admission int

const (
	// admitted: the request holds what the release function gives back.
	admitted admission = iota
	// overRequests: MaxRequests are in flight; nothing was counted.
	overRequests
	// mustQueue: the request is counted in flight but has no connection slot
	// unless it queues for one.
	mustQueue
)

// admitAtOnce admits a request under the limits l as far as that takes neither the
// lock nor a wait: it counts the request against MaxRequests and takes a free
// connection slot, unless requests wait for one (they come first).
func (b *Breaker) admitAtOnce(l *config.CircuitBreaker) (release func(), a admission) {
	if n := b.requests.Add(1); l.MaxRequests > 0 && n > int64(l.MaxRequests) {
		b.requests.Add(-1)
		return nil, overRequests
	}
	if l.MaxConnections <= 0 {
		return b.releaseAdmit, admitted
	}
	if b.waiting.Load() == 0 && b.takeSlot() {
		return b.releaseSlot, admitted
	}
	return nil, mustQueue
}

// Acquire admits a request, waiting (FIFO) for a connection slot when
// MaxConnections are in use and fewer than MaxPendingRequests wait. It returns the
// function that releases the admission, or ErrOverflow at once when a cap is
// reached, or ctx's error when the request gives up waiting.
func (b *Breaker) Acquire(ctx context.Context) (release func(), err error) {
	l := b.limits.Load()
	b.releasers.Do(b.makeReleasers)
	if l == nil {
		return b.releaseNothing, nil
	}
	switch release, a := b.admitAtOnce(l); a {
	case admitted:
		return release, nil
	case overRequests:
		b.overflows.Add(1)
		return nil, ErrOverflow
	}
	b.mu.Lock()
	if len(b.queue) == 0 && b.takeSlot() {
		b.mu.Unlock()
		return b.releaseSlot, nil
	}
	if len(b.queue) >= max(l.MaxPendingRequests, 0) {
		b.mu.Unlock()
		b.requests.Add(-1)
		b.overflows.Add(1)
		return nil, ErrOverflow
	}
	ready := make(chan struct{})
	b.queue = append(b.queue, ready)
	b.waiting.Add(1)
	// A slot freed since the attempt above found no waiter to hand it to; see
	// freeSlot.
	b.handOff()
	b.mu.Unlock()
	return b.wait(ctx, ready)
}

// TryAcquire admits a request as Acquire does when that takes no wait. When Acquire
// would queue the request or refuse it, TryAcquire reports false having counted
// nothing (no overflow), so that the caller can go through Acquire instead.
func (b *Breaker) TryAcquire() (release func(), ok bool) {
	l := b.limits.Load()
	b.releasers.Do(b.makeReleasers)
	if l == nil {
		return b.releaseNothing, true
	}
	release, a := b.admitAtOnce(l)
	if a == mustQueue {
		b.requests.Add(-1)
	}
	return release, a == admitted
}

// wait waits for a slot to be handed to a queued request.
func (b *Breaker) wait(ctx context.Context, ready chan struct{}) (func(), error) {
	timeout := time.NewTimer(maxQueueWait)
	defer timeout.Stop()
	select {
	case <-ready:
		return b.releaseSlot, nil
	case <-ctx.Done():
		b.abandon(ready)
		b.requests.Add(-1)
		return nil, ctx.Err()
	case <-timeout.C:
		// Slots may be held for long (upgraded connections); a request does not
		// wait for one without end even when it has no deadline of its own.
		b.abandon(ready)
		b.requests.Add(-1)
		b.overflows.Add(1)
		return nil, ErrOverflow
	}
}

// freeSlot hands the slot to the oldest waiter, or frees it.
//
// Without waiters the slot is freed without the lock. A request that queues
// meanwhile counts itself in waiting and then hands free slots out under the lock;
// freeSlot frees the slot and then reads waiting. Of the two, the later sees the
// other's write, so the slot reaches the waiter either way.
func (b *Breaker) freeSlot() {
	if b.waiting.Load() == 0 {
		b.active.Add(-1)
		if b.waiting.Load() == 0 {
			return
		}
		b.mu.Lock()
		b.handOff()
		b.mu.Unlock()
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) > 0 {
		close(b.queue[0])
		b.queue = b.queue[1:]
		b.waiting.Add(-1)
		return
	}
	b.active.Add(-1)
}

// abandon takes a waiter that gave up out of the queue. If a slot was handed to it
// meanwhile, the slot is passed on.
func (b *Breaker) abandon(ready chan struct{}) {
	b.mu.Lock()
	for i, w := range b.queue {
		if w == ready {
			b.queue = append(b.queue[:i], b.queue[i+1:]...)
			b.waiting.Add(-1)
			b.mu.Unlock()
			return
		}
	}
	b.mu.Unlock()
	b.freeSlot()
}

// TryRetry admits a retry while fewer than MaxRetries are in flight, returning the
// function that releases it.
func (b *Breaker) TryRetry() (release func(), ok bool) {
	l := b.limits.Load()
	b.releasers.Do(b.makeReleasers)
	if l == nil || l.MaxRetries <= 0 {
		return b.releaseNothing, true
	}
	if b.retries.Add(1) > int64(l.MaxRetries) {
		b.retries.Add(-1)
		b.overflows.Add(1)
		return nil, false
	}
	return b.releaseRetry, true
}

// Overflows counts the requests and retries turned away so far.
func (b *Breaker) Overflows() uint64 { return b.overflows.Load() }
