package proxy

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/outcome"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// Request outcomes: every request a forwarder handles is counted once per backend, with
// its final outcome after retries, in a Recorder that outlives configuration versions.
//
//   - Latency runs from the moment the forwarder takes the request (before the
//     circuit breaker admits it) to the moment the response headers that the client
//     gets arrive from the backend, or to the moment the gateway answers in the
//     backend's place. The request counts at that moment, so a long stream or an
//     upgraded connection counts when it starts, not when it ends.
//   - A request failed when the answer passed on is a 5xx, or when the gateway
//     answered for the backend: a connection failure, a reset, a per-try or request
//     timeout, the caller's deadline, an open circuit breaker, no healthy endpoint.
//     Attempts that were retried do not count; the one whose answer the client got
//     does.
//   - A request whose client went away before it was answered is not counted at all,
//     neither as a request nor as an error: the backend's part in it is unknown, and a
//     client that gives up must not make a backend look faulty. Once the response
//     headers were passed on, the request has counted; a body cut short later changes
//     nothing.
//   - Requests answered without a backend (an invalid backend reference, a request
//     body that cannot be read) and mirrored copies are not counted.
//
// Recorders of backends that the configuration in service no longer references are
// kept, so that a backend removed and added back continues its counts, up to
// maxUnreferencedOutcomes of them; past that, those unreferenced the longest are
// dropped, and a dropped backend that returns counts from zero again (readers of
// cumulative totals take a decrease as a restart).

// maxUnreferencedOutcomes bounds the recorders kept for backends that the configuration
// no longer references.
const maxUnreferencedOutcomes = 4096

// outcomeBook holds the Recorder of every backend a rule handler was built for.
type outcomeBook struct {
	mu      sync.Mutex
	entries map[string]*outcomeEntry
	// sweeps counts the calls of retain, to order unreferenced entries by age.
	sweeps uint64
}

type outcomeEntry struct {
	rec outcome.Recorder
	// unreferencedSince is the sweep from which the configuration in service has not
	// referenced the backend; zero while it does.
	unreferencedSince uint64
}

// recorder returns the Recorder of a backend, creating it. It is called when handlers
// are built, never per request.
func (b *outcomeBook) recorder(name string) *outcome.Recorder {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.entries == nil {
		b.entries = map[string]*outcomeEntry{}
	}
	e := b.entries[name]
	if e == nil {
		e = &outcomeEntry{}
		b.entries[name] = e
	}
	e.unreferencedSince = 0
	return &e.rec
}

// retain marks the backends the configuration in service references, and drops the
// recorders unreferenced the longest while more than maxUnreferencedOutcomes are
// unreferenced.
func (b *outcomeBook) retain(referenced []string) {
	keep := make(map[string]bool, len(referenced))
	for _, name := range referenced {
		keep[name] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweeps++
	type unreferenced struct {
		name  string
		since uint64
	}
	var idle []unreferenced
	for name, e := range b.entries {
		switch {
		case keep[name]:
			e.unreferencedSince = 0
			continue
		case e.unreferencedSince == 0:
			e.unreferencedSince = b.sweeps
		}
		idle = append(idle, unreferenced{name, e.unreferencedSince})
	}
	if excess := len(idle) - maxUnreferencedOutcomes; excess > 0 {
		slices.SortFunc(idle, func(x, y unreferenced) int {
			return cmp.Or(cmp.Compare(x.since, y.since), cmp.Compare(x.name, y.name))
		})
		for _, u := range idle[:excess] {
			delete(b.entries, u.name)
		}
	}
}

// totals returns the totals of every backend that has seen a request.
func (b *outcomeBook) totals() map[string]outcome.Totals {
	b.mu.Lock()
	recs := make(map[string]*outcome.Recorder, len(b.entries))
	for name, e := range b.entries {
		recs[name] = &e.rec
	}
	b.mu.Unlock()
	out := make(map[string]outcome.Totals, len(recs))
	for name, r := range recs {
		if t := r.Totals(); t.Requests > 0 {
			out[name] = t
		}
	}
	return out
}

// totalsOf returns one backend's totals; zero when it has seen no request.
func (b *outcomeBook) totalsOf(name string) outcome.Totals {
	b.mu.Lock()
	e := b.entries[name]
	b.mu.Unlock()
	if e == nil {
		return outcome.Totals{}
	}
	if t := e.rec.Totals(); t.Requests > 0 {
		return t
	}
	return outcome.Totals{}
}

// BackendOutcomes returns the cumulative request outcomes of every backend that has
// been sent a request, by backend name (config.Backend.Name). See the outcome rules
// at the top of this file.
func (p *Proxy) BackendOutcomes() map[string]outcome.Totals { return p.outcomes.totals() }

// BackendOutcome returns the cumulative request outcomes of one backend; zero when it
// has been sent no request.
func (p *Proxy) BackendOutcome(name string) outcome.Totals { return p.outcomes.totalsOf(name) }

// RetainOutcomes tells the Proxy which backends the configuration now in service
// references, so that it can bound the outcome recorders it keeps for the others. It
// also drops the retry budgets that the configuration's handlers do not use. Call it
// after each configuration whose rule handlers were built goes into service.
func (p *Proxy) RetainOutcomes(referenced []string) {
	p.outcomes.retain(referenced)
	p.dropUnusedBudgets()
}

// fail answers a request in the backend's place with a gateway error and records
// the request as failed.
func (f *forwarder) fail(w http.ResponseWriter, info *reqctx.Info, e *proxyError, start time.Time) {
	f.outcomes.Record(time.Since(start), e.status >= http.StatusInternalServerError)
	e.answer(w, info)
}

// record counts the request's outcome when the attempt gives its final answer: the
// backend's response passed on, or the gateway's error in its place. Only the first
// final answer counts: a protocol switch that fails after the backend's 101 has
// already counted. now is the time of the answer.
func (a *attempt) record(now time.Time, failed bool) {
	if a.recorded {
		return
	}
	a.recorded = true
	a.fwd.outcomes.Record(now.Sub(a.start), failed)
}

// failedAnswer reports whether a response passed on to the client counts as a
// failure: a 5xx, or a 101 that switches to another protocol than the one requested,
// which the gateway then answers with a 502.
func failedAnswer(res *http.Response) bool {
	if res.StatusCode == http.StatusSwitchingProtocols && res.Request != nil {
		return !strings.EqualFold(res.Header.Get("Upgrade"), res.Request.Header.Get("Upgrade"))
	}
	return res.StatusCode >= http.StatusInternalServerError
}
