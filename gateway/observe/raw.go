package observe

import "time"

// Requests a data plane answers from their wire form (see proxy.RawRoute) have no
// http.Request or ResponseWriter to observe; these record what the metrics need of
// them. Access logs and traces need more, so a data plane forwards requests that way
// only when RecordsRaw says neither is on.

// RecordsRaw reports whether requests answered from their wire form are observed in
// full by BeginRaw, EndRaw and RecordRaw: there is no access log and no tracing.
func (o *Observer) RecordsRaw() bool { return o == nil || (o.access == nil && o.tracer == nil) }

// BeginRaw counts a request answered from its wire form in flight; EndRaw, which
// must follow (deferred, so that it runs on a panic too), counts it out.
func (l *Listener) BeginRaw() {
	if l != nil && l.inFlight != nil {
		l.inFlight.Inc()
	}
}

// EndRaw ends what BeginRaw began.
func (l *Listener) EndRaw() {
	if l != nil && l.inFlight != nil {
		l.inFlight.Dec()
	}
}

// RecordRaw counts a request of the rule answered from its wire form, which was
// forwarded to backend and began at start: status is the status the client gets,
// or 0 when it went away unanswered. It is called before the client has the answer,
// as the handler path counts a request before its response is flushed.
func (r *Rule) RecordRaw(backend string, status int, start time.Time) {
	if r == nil {
		return
	}
	if status == 0 {
		status = StatusClientClosed
	}
	if s := r.seriesOf(backend); s != nil {
		s.observe(status, time.Since(start))
	}
}
