package proxy

import (
	"fmt"
	"sync"
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
	if b, ok := p.budgets.Load(key); ok {
		return b.(*retryBudget)
	}
	b, _ := p.budgets.LoadOrStore(key, &retryBudget{percent: spec.Percent, minRPS: spec.MinRetriesPerSecond, now: time.Now})
	return b.(*retryBudget)
}
