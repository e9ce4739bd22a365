package observe

import (
	"bufio"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// StatusClientClosed is the status metrics and access logs give a request whose
// client went away before anything was answered (nginx's convention); nothing is
// sent with it.
const StatusClientClosed = 499

// Exchange is one request as the data plane serves it: its reqctx.Info and what is
// observed of it, in one allocation.
type Exchange struct {
	// Carrier holds the request's bookkeeping (Info), which the data plane fills in
	// and shares with filters and the proxy by attaching the carrier to the request
	// as its context.
	reqctx.Carrier

	listener *Listener
	rule     *Rule
	// req is the request as received; path is its path before any rewrite.
	req  *http.Request
	path string
	span trace.Span
	// raw is the connection's ResponseWriter; writer wraps it to see the status
	// and the bytes written, when anything is observed.
	raw    http.ResponseWriter
	writer responseWriter
}

// Begin starts observing a request. It returns the request to serve, which carries
// the request's span when tracing is on. End must be called when the request has
// been answered, deferred so that it also runs when the handler panics to abort
// the response.
func (l *Listener) Begin(w http.ResponseWriter, r *http.Request) (*Exchange, *http.Request) {
	x := &Exchange{listener: l, raw: w}
	x.Info.Start = time.Now()
	if l == nil {
		return x, r
	}
	x.writer.ResponseWriter = w
	x.path = r.URL.Path
	if l.inFlight != nil {
		l.inFlight.Inc()
	}
	if l.o.tracer != nil {
		r, x.span = l.o.startServerSpan(r)
	}
	x.req = r
	return x, r
}

// Writer returns the ResponseWriter to answer the request through.
func (x *Exchange) Writer() http.ResponseWriter {
	if x.listener == nil {
		return x.raw
	}
	return &x.writer
}

// Route records the rule that took the request.
func (x *Exchange) Route(rule *Rule) {
	x.rule = rule
	if x.span != nil && rule != nil && x.span.IsRecording() {
		x.span.SetName(x.req.Method + " " + rule.route)
	}
}

// End records the request: its metrics, its access log line and the end of its
// span. A request no rule took counts as unmatched, as misdirected when its Info
// has FlagMisdirected.
func (x *Exchange) End() {
	l := x.listener
	if l == nil {
		return
	}
	status := x.status()
	// A logged request reads the clock once, for its duration and its line's time.
	a := l.o.access
	logged := a != nil && a.sampled(status)
	var now time.Time
	var elapsed time.Duration
	if logged {
		now = time.Now()
		elapsed = now.Sub(x.Info.Start)
	} else {
		elapsed = time.Since(x.Info.Start)
	}
	if l.inFlight != nil {
		x.count(status, elapsed)
	}
	if logged {
		f := x.lineFields(status, elapsed)
		a.log(&f, now)
	}
	// Counted out last, as the raw path counts its requests out: a listener with
	// nothing in flight has written the lines of every request it answered.
	if l.inFlight != nil {
		l.inFlight.Dec()
	}
	if x.span != nil {
		x.endSpan(status)
	}
}

// status is the status the client got: the one written, or StatusClientClosed when
// nothing was because the client went away (net/http answers 200 to a handler
// that writes nothing otherwise).
func (x *Exchange) status() int {
	if s := x.writer.status; s != 0 {
		return s
	}
	if x.req.Context().Err() != nil {
		x.Info.Flags |= reqctx.FlagClientClosed
		return StatusClientClosed
	}
	return http.StatusOK
}

func (x *Exchange) count(status int, elapsed time.Duration) {
	if x.rule == nil {
		switch {
		case x.Info.Flags&reqctx.FlagMisdirected != 0:
			x.listener.misdirected.Inc()
		case x.Info.Flags&(reqctx.FlagEgress|reqctx.FlagUnknownCaller|reqctx.FlagTunnel) != 0:
			// A node replica's egress, tunnels and refused callers take no route by
			// design; its edge statistics count them.
		default:
			x.listener.noRoute.Inc()
		}
		return
	}
	x.rule.count(&x.Info, status, elapsed)
}

// count counts a request the rule took, on either path (see RecordRaw): in the
// series of the backend it was sent to, and its rate limit decision.
func (r *Rule) count(info *reqctx.Info, status int, elapsed time.Duration) {
	if s := r.seriesOf(info.Backend); s != nil {
		s.observe(status, elapsed)
	}
	if rl := r.rateLimit; rl != nil {
		switch {
		case info.Flags&reqctx.FlagRateLimited != 0:
			rl.limited.Inc()
		case info.Flags&reqctx.FlagRateLimitPassed != 0:
			rl.allowed.Inc()
		}
	}
}

// lineFields returns the values of the request's access log line.
func (x *Exchange) lineFields(status int, elapsed time.Duration) lineFields {
	r := x.req
	f := lineFields{
		listenerField: x.listener.logField, ruleFields: noRuleFields, method: r.Method, host: r.Host, path: x.path,
		status: status, bytes: x.writer.bytes, elapsed: elapsed, flags: x.Info.Flags,
		traceID: traceIDOf(x.span, r), client: r.RemoteAddr, info: &x.Info,
	}
	if x.rule != nil {
		f.ruleFields = x.rule.logFields
	}
	return f
}

func (x *Exchange) endSpan(status int) {
	span := x.span
	if !span.IsRecording() {
		span.End()
		return
	}
	attrs := []attribute.KeyValue{attribute.Int("http.response.status_code", status)}
	if x.rule != nil {
		attrs = append(attrs, attribute.String("switchyard.route", x.rule.route), attribute.String("switchyard.rule", x.rule.name))
	}
	if x.Info.Backend != "" {
		attrs = append(attrs, attribute.String("switchyard.backend", x.Info.Backend), attribute.Int("switchyard.attempts", x.Info.Attempts))
	}
	flags := x.Info.Flags.String()
	if flags != "" {
		attrs = append(attrs, attribute.String("switchyard.flags", flags))
	}
	span.SetAttributes(attrs...)
	if status >= 500 {
		span.SetStatus(codes.Error, flags)
	}
	span.End()
}

// responseWriter records the status and the size of a response. Flush and Hijack
// are its own so that it sees headers sent by a flush and connections switched to
// another protocol; everything else http.ResponseController reaches through
// Unwrap.
type responseWriter struct {
	http.ResponseWriter
	// status is the final status written; 1xx informational responses do not
	// count, 101 Switching Protocols does.
	status int
	bytes  int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush sends what is buffered, headers included.
func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
		return
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack takes over the connection, as the proxy does once a backend agreed to
// switch protocols (writing the 101 itself).
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

// Unwrap returns the connection's ResponseWriter, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
