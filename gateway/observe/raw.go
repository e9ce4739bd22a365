package observe

import (
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// Requests a data plane answers from their wire form (see proxy.RawRoute) have no
// http.Request or ResponseWriter to observe. The raw path keeps a reqctx.Info of its
// own for each request instead, filled in as the handler path fills an Exchange's,
// and these record from it, and from the few facts of the wire form an access log
// line names (RawRequest), what End records of an Exchange: the metrics and the
// access log line. Only spans need the http.Request, so a data plane forwards
// requests that way only when RecordsRaw says there is no tracing.

// RecordsRaw reports whether requests answered from their wire form are observed in
// full by BeginRaw, EndRaw, RecordRaw and LogRaw: there is no tracing, which needs
// the http.Request to carry the span and its context.
func (o *Observer) RecordsRaw() bool { return o == nil || o.tracer == nil }

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

// RecordRaw counts a request of the rule answered from its wire form, as End counts
// an Exchange the rule took: in the series of info.Backend (which is "" when a
// filter answered before a backend was chosen), with the time since info.Start, and
// the rule's rate limit decision from info.Flags. status is the status the client
// gets, or 0 when it went away unanswered (counted as StatusClientClosed). It is
// called before the client has the answer, as the handler path counts a request
// before its response is flushed; the raw path calls it once the answer's head
// has arrived, so that the duration of a relayed body is left out of the
// histogram, where the handler path, which buffers the end of a body, counts it.
func (r *Rule) RecordRaw(info *reqctx.Info, status int) {
	if r == nil {
		return
	}
	if status == 0 {
		status = StatusClientClosed
	}
	r.count(info, status, time.Since(info.Start))
}

// RawRequest is what an access log line names of a request in its wire form.
type RawRequest struct {
	// Method and Host are the request's method and Host, as received.
	Method, Host string
	// Target is the request target as received, in origin form ("/a%20b?q=1").
	Target string
	// RemoteAddr is the client's address (the TCP peer), as http.Request has it.
	RemoteAddr string
	// Traceparent is the value of the request's first traceparent field, or "":
	// without tracing, the line's trace_id comes from it.
	Traceparent string
}

// LogsRaw reports whether LogRaw writes lines (the observer has an access log), so
// that a caller can skip gathering what only a line needs.
func (l *Listener) LogsRaw() bool { return l != nil && l.o != nil && l.o.access != nil }

// LogRaw writes the access log line of a request of rule answered from its wire
// form, when the observer has an access log and samples the status: the line End
// writes for an Exchange, from req and info, with the time since info.Start. status
// is the status the client got, or 0 when it went away unanswered, which is logged
// as StatusClientClosed with the client-closed flag, as End logs it; bytes is the
// size of the response body the client got. A nil rule logs empty route and rule
// fields, as for a request no rule took. info itself is left unchanged. trace_id is
// that of req.Traceparent, as the handler path without tracing logs it.
func (l *Listener) LogRaw(rule *Rule, req RawRequest, info *reqctx.Info, status int, bytes int64) {
	if !l.LogsRaw() {
		return
	}
	a := l.o.access
	flags := info.Flags
	if status == 0 {
		status = StatusClientClosed
		flags |= reqctx.FlagClientClosed
	}
	if !a.sampled(status) {
		return
	}
	// The line's time and its duration come from one reading of the clock, as on
	// the handler path.
	now := time.Now()
	f := lineFields{
		listenerField: l.logField, ruleFields: noRuleFields, method: req.Method, host: req.Host, path: targetPath(req.Target),
		status: status, bytes: bytes, elapsed: now.Sub(info.Start), flags: flags,
		// The raw path serves requests only without tracing, where the client's
		// traceparent is the one source of a trace ID (see traceIDOf).
		traceID: traceparentID(req.Traceparent), client: req.RemoteAddr, info: info,
	}
	if rule != nil {
		f.ruleFields = rule.logFields
	}
	a.log(&f, now)
}

// targetPath returns the path of an origin-form request target as http.Request's
// URL.Path holds it, for the path field: the part before the query, unescaped as
// url.URL's parser unescapes a path ('+' stays itself). A target without '%' is its
// own path, which costs no allocation. The targets the raw path takes have valid
// escapes only (the parser would have refused the request otherwise); a '%' not
// followed by two hex digits is kept as it is rather than losing the line.
func targetPath(target string) string {
	path, _, _ := strings.Cut(target, "?")
	i := strings.IndexByte(path, '%')
	if i < 0 {
		return path
	}
	var b strings.Builder
	b.Grow(len(path))
	b.WriteString(path[:i])
	for ; i < len(path); i++ {
		c := path[i]
		if c == '%' && i+2 < len(path) && isHexDigit(path[i+1]) && isHexDigit(path[i+2]) {
			c = unhex(path[i+1])<<4 | unhex(path[i+2])
			i += 2
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unhex is the value of a hex digit.
func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
