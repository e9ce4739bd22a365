package agent

import (
	"cmp"
	"encoding/json"
	"slices"

	"github.com/switchyard-dev/switchyard/controller/distribute"
	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

// maxAcksPerHeartbeat bounds the acks sent in one heartbeat interval while outcome
// reports wait for room: a replica with many busy backends catches up quickly without
// flooding the controller.
const maxAcksPerHeartbeat = 8

// totalsReporter chooses the cumulative totals each ack of one stream carries: the
// keys (backends, or service graph edges) whose totals changed since the controller
// last accepted them on this stream, those sent longest ago first, at most limit at a
// time. A new stream starts with new reporters, so it reports every key with traffic
// once: the controller may be another one (a new leader), which knows nothing yet. It
// is used by one goroutine, the stream's ack loop.
type totalsReporter[K comparable] struct {
	source func() map[K]outcome.Totals
	// reportable says whether a key may be reported; compare orders keys sent in the
	// same ack; limit is the most keys per ack.
	reportable func(K) bool
	compare    func(a, b K) int
	limit      int
	// accepted holds the totals the controller accepted, and sentAt the number of
	// the ack that carried them, per key.
	accepted map[K]outcome.Totals
	sentAt   map[K]uint64
	acks     uint64
}

// pendingTotals is one key's totals waiting to be reported.
type pendingTotals[K comparable] struct {
	key    K
	totals outcome.Totals
}

// outcomeReporter reports request outcomes per backend name.
type outcomeReporter = totalsReporter[string]

// edgeReporter reports the service graph's edges.
type edgeReporter = totalsReporter[outcome.EdgeKey]

func newOutcomeReporter(source func() map[string]outcome.Totals) *outcomeReporter {
	return newTotalsReporter(source, func(name string) bool { return len(name) <= distribute.MaxOutcomeNameBytes },
		cmp.Compare[string], distribute.MaxAckOutcomes)
}

func newEdgeReporter(source func() map[outcome.EdgeKey]outcome.Totals) *edgeReporter {
	return newTotalsReporter(source, func(k outcome.EdgeKey) bool {
		return k.Caller != "" && k.Callee != "" &&
			len(k.Caller) <= distribute.MaxEdgeNameBytes && len(k.Callee) <= distribute.MaxEdgeNameBytes
	}, outcome.EdgeKey.Compare, distribute.MaxAckEdges)
}

func newTotalsReporter[K comparable](source func() map[K]outcome.Totals, reportable func(K) bool,
	compare func(a, b K) int, limit int) *totalsReporter[K] {
	return &totalsReporter[K]{source: source, reportable: reportable, compare: compare, limit: limit,
		accepted: map[K]outcome.Totals{}, sentAt: map[K]uint64{}}
}

// pending returns the keys to report next, in order, at most limit, and whether more
// changed than that.
func (r *totalsReporter[K]) pending() ([]pendingTotals[K], bool) {
	if r.source == nil {
		return nil, false
	}
	current := r.source()
	// Keys the source no longer has are forgotten, so that what is kept stays bounded
	// by the source.
	for key := range r.accepted {
		if _, ok := current[key]; !ok {
			delete(r.accepted, key)
			delete(r.sentAt, key)
		}
	}
	var changed []pendingTotals[K]
	for key, t := range current {
		if !r.reportable(key) || t.Requests == 0 {
			continue
		}
		if prev, ok := r.accepted[key]; ok && prev.Requests == t.Requests && prev.Errors == t.Errors {
			continue
		}
		changed = append(changed, pendingTotals[K]{key, t})
	}
	slices.SortFunc(changed, func(a, b pendingTotals[K]) int {
		return cmp.Or(cmp.Compare(r.sentAt[a.key], r.sentAt[b.key]), r.compare(a.key, b.key))
	})
	if len(changed) > r.limit {
		return changed[:r.limit], true
	}
	return changed, false
}

// accept records that the controller accepted an ack carrying these reports.
func (r *totalsReporter[K]) accept(sent []pendingTotals[K]) {
	r.acks++
	for _, p := range sent {
		r.accepted[p.key] = p.totals
		r.sentAt[p.key] = r.acks
	}
}

// encodeAck encodes ack with as many of the pending reports, in order, as keep it
// within distribute.LegacyMaxAckBytes, which every controller accepts, halving both
// lists until it fits. It returns the body and how many reports of each list it
// carries.
func encodeAck(ack distribute.Ack, outcomes []pendingTotals[string], edges []pendingTotals[outcome.EdgeKey]) ([]byte, int, int, error) {
	n, m := len(outcomes), len(edges)
	for {
		ack.Outcomes, ack.Edges = nil, nil
		if n > 0 {
			ack.Outcomes = make(map[string]outcome.Totals, n)
			for _, p := range outcomes[:n] {
				ack.Outcomes[p.key] = p.totals
			}
		}
		for _, p := range edges[:m] {
			ack.Edges = append(ack.Edges, distribute.EdgeReport{Caller: p.key.Caller, Callee: p.key.Callee, Totals: p.totals})
		}
		body, err := json.Marshal(ack)
		if err != nil || len(body) <= distribute.LegacyMaxAckBytes || n+m == 0 {
			return body, n, m, err
		}
		n, m = n/2, m/2
	}
}
