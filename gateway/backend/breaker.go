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
type Breaker struct {
	limits atomic.Pointer[config.CircuitBreaker]

	requests atomic.Int64
	retries  atomic.Int64
	// Breaker trips since start, for metrics.
	overflows atomic.Uint64

	mu sync.Mutex
	// active counts the connection slots in use.
	active int
	// queue holds the requests waiting for a slot, oldest first. A slot is handed
	// over by closing the waiter's channel.
	queue []chan struct{}
}

func (b *Breaker) setLimits(l *config.CircuitBreaker) {
	if l != nil && *l == (config.CircuitBreaker{}) {
		l = nil
	}
	b.limits.Store(l)
	// Waiters get the slots a raised (or removed) cap frees.
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.queue) > 0 && (l == nil || l.MaxConnections <= 0 || b.active < l.MaxConnections) {
		b.active++
		close(b.queue[0])
		b.queue = b.queue[1:]
	}
}

// Acquire admits a request, waiting (FIFO) for a connection slot when
// MaxConnections are in use and fewer than MaxPendingRequests wait. It returns the
// function that releases the admission, or ErrOverflow at once when a cap is
// reached, or ctx's error when the request gives up waiting.
func (b *Breaker) Acquire(ctx context.Context) (release func(), err error) {
	l := b.limits.Load()
	if l == nil {
		return func() {}, nil
	}
	if n := b.requests.Add(1); l.MaxRequests > 0 && n > int64(l.MaxRequests) {
		b.requests.Add(-1)
		b.overflows.Add(1)
		return nil, ErrOverflow
	}
	if l.MaxConnections <= 0 {
		return func() { b.requests.Add(-1) }, nil
	}
	release = func() {
		b.releaseSlot()
		b.requests.Add(-1)
	}
	b.mu.Lock()
	if b.active < l.MaxConnections {
		b.active++
		b.mu.Unlock()
		return release, nil
	}
	if len(b.queue) >= max(l.MaxPendingRequests, 0) {
		b.mu.Unlock()
		b.requests.Add(-1)
		b.overflows.Add(1)
		return nil, ErrOverflow
	}
	ready := make(chan struct{})
	b.queue = append(b.queue, ready)
	b.mu.Unlock()
	wait := time.NewTimer(maxQueueWait)
	defer wait.Stop()
	select {
	case <-ready:
		return release, nil
	case <-ctx.Done():
		b.abandon(ready)
		b.requests.Add(-1)
		return nil, ctx.Err()
	case <-wait.C:
		// Slots may be held for long (upgraded connections); a request does not
		// wait for one without end even when it has no deadline of its own.
		b.abandon(ready)
		b.requests.Add(-1)
		b.overflows.Add(1)
		return nil, ErrOverflow
	}
}

// releaseSlot hands the slot to the oldest waiter, or frees it.
func (b *Breaker) releaseSlot() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) > 0 {
		close(b.queue[0])
		b.queue = b.queue[1:]
		return
	}
	b.active--
}

// abandon takes a waiter that gave up out of the queue. If a slot was handed to it
// meanwhile, the slot is passed on.
func (b *Breaker) abandon(ready chan struct{}) {
	b.mu.Lock()
	for i, w := range b.queue {
		if w == ready {
			b.queue = append(b.queue[:i], b.queue[i+1:]...)
			b.mu.Unlock()
			return
		}
	}
	b.mu.Unlock()
	b.releaseSlot()
}

// TryRetry admits a retry while fewer than MaxRetries are in flight, returning the
// function that releases it.
func (b *Breaker) TryRetry() (release func(), ok bool) {
	l := b.limits.Load()
	if l == nil || l.MaxRetries <= 0 {
		return func() {}, true
	}
	if b.retries.Add(1) > int64(l.MaxRetries) {
		b.retries.Add(-1)
		b.overflows.Add(1)
		return nil, false
	}
	return func() { b.retries.Add(-1) }, true
}

// Overflows counts the requests and retries turned away so far.
func (b *Breaker) Overflows() uint64 { return b.overflows.Load() }
