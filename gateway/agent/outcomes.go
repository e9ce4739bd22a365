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

// outcomeReporter chooses the request outcomes each ack of one stream carries: the
// backends whose totals changed since the controller last accepted them on this
// stream, those sent longest ago first, at most distribute.MaxAckOutcomes at a time.
// A new stream starts with a new reporter, so it reports every backend with traffic
// once: the controller may be another one (a new leader), which knows nothing yet. It
// is used by one goroutine, the stream's ack loop.
type outcomeReporter struct {
	source func() map[string]outcome.Totals
	// accepted holds the totals the controller accepted, and sentAt the number of
	// the ack that carried them, per backend.
	accepted map[string]outcome.Totals
	sentAt   map[string]uint64
	acks     uint64
}

// pendingOutcome is one backend's totals waiting to be reported.
type pendingOutcome struct {
	name   string
	totals outcome.Totals
}

func newOutcomeReporter(source func() map[string]outcome.Totals) *outcomeReporter {
	return &outcomeReporter{source: source, accepted: map[string]outcome.Totals{}, sentAt: map[string]uint64{}}
}

// pending returns the backends to report next, in order, at most
// distribute.MaxAckOutcomes, and whether more changed than that.
func (r *outcomeReporter) pending() ([]pendingOutcome, bool) {
	if r.source == nil {
		return nil, false
	}
	current := r.source()
	// Backends the source no longer has are forgotten, so that what is kept stays
	// bounded by the source.
	for name := range r.accepted {
		if _, ok := current[name]; !ok {
			delete(r.accepted, name)
			delete(r.sentAt, name)
		}
	}
	var changed []pendingOutcome
	for name, t := range current {
		if len(name) > distribute.MaxOutcomeNameBytes || t.Requests == 0 {
			continue
		}
		if prev, ok := r.accepted[name]; ok && prev.Requests == t.Requests && prev.Errors == t.Errors {
			continue
		}
		changed = append(changed, pendingOutcome{name, t})
	}
	slices.SortFunc(changed, func(a, b pendingOutcome) int {
		return cmp.Or(cmp.Compare(r.sentAt[a.name], r.sentAt[b.name]), cmp.Compare(a.name, b.name))
	})
	if len(changed) > distribute.MaxAckOutcomes {
		return changed[:distribute.MaxAckOutcomes], true
	}
	return changed, false
}

// accept records that the controller accepted an ack carrying these reports.
func (r *outcomeReporter) accept(sent []pendingOutcome) {
	r.acks++
	for _, p := range sent {
		r.accepted[p.name] = p.totals
		r.sentAt[p.name] = r.acks
	}
}

// encodeAck encodes ack with as many of the pending reports, in order, as keep it
// within distribute.LegacyMaxAckBytes, which every controller accepts. It returns the
// body and how many reports it carries.
func encodeAck(ack distribute.Ack, pending []pendingOutcome) ([]byte, int, error) {
	n := len(pending)
	for {
		ack.Outcomes = nil
		if n > 0 {
			ack.Outcomes = make(map[string]outcome.Totals, n)
			for _, p := range pending[:n] {
				ack.Outcomes[p.name] = p.totals
			}
		}
		body, err := json.Marshal(ack)
		if err != nil || len(body) <= distribute.LegacyMaxAckBytes || n == 0 {
			return body, n, err
		}
		n /= 2
	}
}
