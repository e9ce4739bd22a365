package distribute

import (
	"math"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

// Limits of the request outcomes that acks carry (see Ack.Outcomes).
const (
	// MaxAckOutcomes is the most backends a replica reports in one ack; backends
	// left out are reported in the next acks.
	MaxAckOutcomes = 64
	// MaxAcceptedOutcomes is the most backends the server takes in one ack; an ack
	// with more is refused with 400. It is above MaxAckOutcomes so that a later
	// replica that sends more per ack is still heard by this server.
	MaxAcceptedOutcomes = 256
	// MaxOutcomeNameBytes bounds a backend name in a report: a replica does not report
	// a backend with a longer name, and the server ignores one.
	MaxOutcomeNameBytes = 512
	// LegacyMaxAckBytes is the ack size limit of servers older than outcome reports,
	// which ignore the field but refuse a larger body: a replica keeps every ack
	// within it.
	LegacyMaxAckBytes = 64 << 10
)

// Bounds of the server's fleet totals.
const (
	// maxOutcomeCount is the largest count the server takes from a report: 2^53,
	// exact in every JSON reader, and more requests than a replica serves in decades.
	maxOutcomeCount = 1 << 53
	// maxFleetBackends bounds the backends the server keeps fleet totals for; per
	// replica it keeps at most as many last reports.
	maxFleetBackends = 1 << 16
	// staleFleetOutcome is how long a backend must have gone unreported before its
	// fleet totals may be dropped to make room for another when maxFleetBackends are
	// kept; staleSweepEvery paces the search for such backends.
	staleFleetOutcome = time.Hour
	staleSweepEvery   = time.Minute
)

// fleetTotals adds up the replicas' reports of cumulative outcome totals into
// monotonic fleet totals per key: per backend name for request outcomes
// (fleetOutcomes), per caller -> callee edge for the service graph. Replicas report
// cumulative totals; for each report the server adds what changed since the same
// replica's (node, role and instance) previous report of that key. A report below the
// previous one, or the first from a replica, is all new: the replica restarted, or is
// a new process. Forgetting a replica drops its last reports but never lowers the
// fleet totals.
//
// A replica that comes back after it was forgotten (disconnected for ForgetAfter)
// reports totals the fleet already holds, and they are counted again; so are the
// totals a replica reports to a controller that started after the replica did (a new
// leader), which its fleet totals start from.
type fleetTotals[K comparable] struct {
	// valid says whether a reported key may be kept; limit bounds the keys kept.
	valid func(K) bool
	limit int

	mu       sync.Mutex
	fleet    map[K]*fleetEntry
	reported map[replicaKey]map[K]outcome.Totals
	// lastSweep is when stale entries were last looked for.
	lastSweep time.Time
}

// fleetOutcomes are the fleet totals per backend name.
type fleetOutcomes = fleetTotals[string]

// fleetEdges are the fleet totals per service graph edge.
type fleetEdges = fleetTotals[outcome.EdgeKey]

type fleetEntry struct {
	totals outcome.Totals
	// reported is when a replica last reported the key.
	reported time.Time
}

func newFleetTotals[K comparable](valid func(K) bool, limit int) *fleetTotals[K] {
	return &fleetTotals[K]{valid: valid, limit: limit, fleet: map[K]*fleetEntry{}, reported: map[replicaKey]map[K]outcome.Totals{}}
}

func newFleetOutcomes() *fleetOutcomes {
	return newFleetTotals(func(name string) bool { return name != "" && len(name) <= MaxOutcomeNameBytes }, maxFleetBackends)
}

func newFleetEdges() *fleetEdges { return newFleetTotals(validEdge, maxFleetEdges) }

// add takes one ack's reports from the replica key. It returns how many it ignored:
// malformed ones, and new keys while the limit is kept and none is stale.
func (f *fleetTotals[K]) add(key replicaKey, reports map[K]outcome.Totals, now time.Time) (ignored int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	last := f.reported[key]
	for name, t := range reports {
		t, ok := normalTotals(t)
		if !ok || !f.valid(name) {
			ignored++
			continue
		}
		entry := f.fleet[name]
		if entry == nil {
			if len(f.fleet) >= f.limit && !f.sweepLocked(now) {
				ignored++
				continue
			}
			entry = &fleetEntry{totals: outcome.Totals{Latency: make([]int64, outcome.Buckets)}}
			f.fleet[name] = entry
		}
		if last == nil {
			last = map[K]outcome.Totals{}
			f.reported[key] = last
		}
		accumulate(&entry.totals, t.Sub(last[name]))
		entry.reported = now
		last[name] = t
	}
	return ignored
}

// sweepLocked drops the fleet totals, and the replicas' last reports, of keys
// unreported for staleFleetOutcome, at most once per staleSweepEvery. It reports
// whether there is room for another key.
func (f *fleetTotals[K]) sweepLocked(now time.Time) bool {
	if now.Sub(f.lastSweep) >= staleSweepEvery {
		f.lastSweep = now
		for name, e := range f.fleet {
			if now.Sub(e.reported) < staleFleetOutcome {
				continue
			}
			delete(f.fleet, name)
			for _, last := range f.reported {
				delete(last, name)
			}
		}
	}
	return len(f.fleet) < f.limit
}

// forget drops a replica's last reports; the fleet totals keep what it reported.
func (f *fleetTotals[K]) forget(key replicaKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.reported, key)
}

// totals returns a key's fleet totals; zero when no replica reported it.
func (f *fleetTotals[K]) totals(name K) outcome.Totals {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.fleet[name]; e != nil && e.totals.Requests > 0 {
		return e.totals.Add(outcome.Totals{})
	}
	return outcome.Totals{}
}

// all returns the fleet totals of every key that has seen a request.
func (f *fleetTotals[K]) all() map[K]outcome.Totals {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[K]outcome.Totals, len(f.fleet))
	for name, e := range f.fleet {
		if e.totals.Requests > 0 {
			out[name] = e.totals.Add(outcome.Totals{})
		}
	}
	return out
}

// normalTotals checks one report's totals and returns them with a full latency
// histogram. Counts need not agree with each other (a replica reads its counters one
// after the other while requests end), but each must be a count.
func normalTotals(t outcome.Totals) (outcome.Totals, bool) {
	if !isCount(t.Requests) || !isCount(t.Errors) || (len(t.Latency) != 0 && len(t.Latency) != outcome.Buckets) {
		return outcome.Totals{}, false
	}
	for _, n := range t.Latency {
		if !isCount(n) {
			return outcome.Totals{}, false
		}
	}
	return t.Add(outcome.Totals{}), true
}

func isCount(n int64) bool { return n >= 0 && n <= maxOutcomeCount }

// accumulate adds d to t, count by count, stopping at the largest int64 rather than
// wrapping: replicas could otherwise drive a fleet total negative.
func accumulate(t *outcome.Totals, d outcome.Totals) {
	t.Requests = addCount(t.Requests, d.Requests)
	t.Errors = addCount(t.Errors, d.Errors)
	for i := range t.Latency {
		if i < len(d.Latency) {
			t.Latency[i] = addCount(t.Latency[i], d.Latency[i])
		}
	}
}

func addCount(a, b int64) int64 {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}

// BackendOutcome returns the fleet's cumulative request outcomes for a backend (a
// config.Backend name): the sum over every replica that reported it since this
// server started, never decreasing. Zero when no replica reported it. Readers take
// differences between two readings.
func (s *Server) BackendOutcome(name string) outcome.Totals { return s.outcomes.totals(name) }

// BackendOutcomes returns the fleet's cumulative request outcomes of every backend
// that replicas reported, by backend name.
func (s *Server) BackendOutcomes() map[string]outcome.Totals { return s.outcomes.all() }

// LiveReplicas returns how many replicas have a stream open.
func (s *Server) LiveReplicas() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}
