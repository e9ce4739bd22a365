package proxy

import (
	"fmt"
	"sync"
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
type retryBudget struct {
	percent int
	minRPS  int
	now     func() time.Time
	// built is the Proxy's budgetBuilds when a handler was last given the budget.
	built atomic.Uint64

	mu    sync.Mutex
	slots [budgetWindow]budgetSlot
}

type budgetSlot struct {
	second            int64
	requests, retries int
}

// slot returns the slot of the current second, cleared if it held an older one.
// b.mu is held.
func (b *retryBudget) slot() *budgetSlot {
	sec := b.now().Unix()
	s := &b.slots[sec%budgetWindow]
	if s.second != sec {
		*s = budgetSlot{second: sec}
	}
	return s
}

// request records a request's first try.
func (b *retryBudget) request() {
	b.mu.Lock()
	b.slot().requests++
	b.mu.Unlock()
}

// allows reports whether one more retry fits the budget. It does not record one.
func (b *retryBudget) allows() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	oldest := b.now().Unix() - budgetWindow + 1
	var requests, retries int
	for i := range b.slots {
		if s := &b.slots[i]; s.second >= oldest {
			requests += s.requests
			retries += s.retries
		}
	}
	return retries*100 < requests*b.percent+b.minRPS*budgetWindow*100
}

// retried records a retry.
func (b *retryBudget) retried() {
	b.mu.Lock()
	b.slot().retries++
	b.mu.Unlock()
}

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
