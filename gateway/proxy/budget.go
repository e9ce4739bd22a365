package proxy

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// budgetWindow is how far back a retry budget looks, in one-second slots.
const budgetWindow = 10

// retryBudget counts the requests and retries sent to one backend over the last
// budgetWindow seconds and allows a retry while retries stay within the budget. It
// lives in the Proxy, keyed by backend and budget, so that its counts survive
// configuration versions.
//
// Every request to the backend counts itself, so the counts take no lock: each
// one-second slot is one atomic word holding the second it counts (the low 32 bits
// of its Unix time) and the count, so that a slot moves to a new second and counts
// in one compare-and-swap.
type retryBudget struct {
	percent int
	minRPS  int
	now     func() time.Time
	// built is the Proxy's budgetBuilds when a handler was last given the budget.
	built atomic.Uint64

	requests [budgetWindow]atomic.Uint64
	retries  [budgetWindow]atomic.Uint64
}

// countIn adds one to the slot of second sec.
func countIn(slots *[budgetWindow]atomic.Uint64, sec int64) {
	s := &slots[(sec%budgetWindow+budgetWindow)%budgetWindow]
	tag := uint64(uint32(sec)) << 32
	for {
		old := s.Load()
		next := tag | 1
		if old&^math.MaxUint32 == tag {
			next = old + min(1, math.MaxUint32-old&math.MaxUint32)
		}
		if s.CompareAndSwap(old, next) {
			return
		}
	}
}

// inWindow returns the count of a slot word when its second is one of the window
// that ends with second now, and zero otherwise.
func inWindow(word uint64, now int64) int {
	if age := uint32(now) - uint32(word>>32); age >= budgetWindow {
		return 0
	}
	return int(word & math.MaxUint32)
}

// request records a request's first try.
func (b *retryBudget) request() { b.requestAt(b.now()) }

// requestAt records a request's first try, made at now: a reading of the clock the
// forwarder made already, since the budget counts whole seconds.
func (b *retryBudget) requestAt(now time.Time) { countIn(&b.requests, now.Unix()) }

// allows reports whether one more retry fits the budget. It does not record one.
func (b *retryBudget) allows() bool { return b.allowsAt(b.now()) }

// allowsAt is allows at now, a reading of the clock the caller made already.
//
// Every try asks, and retries are rare: while the retries in the window stay below
// the floor of minRPS a second, which holds whatever the requests were, the
// requests are not summed.
func (b *retryBudget) allowsAt(t time.Time) bool {
	now := t.Unix()
	var requests, retries int
	for i := range budgetWindow {
		retries += inWindow(b.retries[i].Load(), now)
	}
	floor := b.minRPS * budgetWindow * 100
	if retries*100 < floor {
		return true
	}
	for i := range budgetWindow {
		requests += inWindow(b.requests[i].Load(), now)
	}
	return retries*100 < requests*b.percent+floor
}

// retried records a retry.
func (b *retryBudget) retried() { countIn(&b.retries, b.now().Unix()) }

// budgetFor returns the long-lived budget of a backend for a budget policy, or nil
// when the policy has none.
func (p *Proxy) budgetFor(backend string, spec *config.RetryBudget) *retryBudget {
	if spec == nil {
		return nil
	}
	key := fmt.Sprintf("%s/%d/%d", backend, spec.Percent, spec.MinRetriesPerSecond)
	v, ok := p.budgets.Load(key)
	if !ok {
		v, _ = p.budgets.LoadOrStore(key, &retryBudget{percent: spec.Percent, minRPS: spec.MinRetriesPerSecond, now: time.Now})
	}
	b := v.(*retryBudget)
	b.built.Store(p.budgetBuilds.Load())
	return b
}

// dropUnusedBudgets forgets the budgets that no handler built since the last call
// was given, so that those of backends and budget settings no longer in service do
// not pile up. It is called when a configuration whose handlers were just built goes
// into service: the budgets it keeps are exactly that configuration's. Handlers of
// older configurations that still hold a dropped budget keep using it until they
// finish.
func (p *Proxy) dropUnusedBudgets() {
	current := p.budgetBuilds.Load()
	p.budgets.Range(func(key, value any) bool {
		if value.(*retryBudget).built.Load() < current {
			p.budgets.CompareAndDelete(key, value)
		}
		return true
	})
	p.budgetBuilds.Add(1)
}
