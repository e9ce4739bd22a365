package proxy

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/internal/deadline"
	"github.com/switchyard-dev/switchyard/gateway/observe"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
	"github.com/switchyard-dev/switchyard/gateway/server/h1"
	"github.com/switchyard-dev/switchyard/plugins"
)

// rawCall is one request a RawRoute serves: what the handler path keeps in the
// request's Info and its ResponseWriter, recycled from request to request.
type rawCall struct {
	x *h1.Exchange
	// req shows x to the filters' raw stages.
	req   rawRequest
	route *RawRoute
	// fwd forwards to the backend the request goes to, and pool is its pool.
	fwd  *forwarder
	pool *backend.Pool
	// info is the request's bookkeeping, filled in as on the handler path, for
	// filters, metrics and the access log.
	info reqctx.Info
	// fields are the response fields the filters set, for whatever answer the
	// client gets.
	fields plugins.ResponseFields
	// head is the outbound head, less the deadline field and the empty line that
	// each attempt adds.
	head []byte
	// status is the status the client got, 0 while it got none; bytes counts the
	// body bytes it got.
	status int
	bytes  int64
	// recorded is set once the request is counted in the metrics.
	recorded bool
	// editResponse is set once the stage that edits the responses' fields has
	// passed the request on: every answer after that is edited.
	editResponse bool
	// forwarded is when the filters passed the request on (or the breaker was
	// asked to admit it), from which outcomes and the retry budget count, as they
	// count from the forwarder's start on the handler path.
	forwarded time.Time
	// requestDeadline and tryDeadline bound the request and its current try
	// (see withDeadline); recycled with the call while nothing else kept them.
	requestDeadline, tryDeadline *deadline.Context
}

// withDeadline returns a context that ends at at, with cause, made of the one
// *slot holds when a request before left it reusable. The contexts of a raw request
// go only to code that keeps no hold of them once the request is done (the
// breaker, the backend client, the retry loop): one that code waited on is dropped
// by releaseDeadline, the others serve the next request without an allocation.
func withDeadline(slot **deadline.Context, parent context.Context, at time.Time, cause error) *deadline.Context {
	if *slot == nil {
		*slot = deadline.NewAt(parent, at, cause)
	} else {
		(*slot).Reset(parent, at, cause)
	}
	return *slot
}

// releaseDeadline releases the context withDeadline made of *slot, which is kept
// for the next request only if nothing may still refer to it.
func releaseDeadline(slot **deadline.Context) {
	if !(*slot).Recycle() {
		*slot = nil
	}
}

// maxPooledHead bounds the buffer of heads (and bodies) a recycled rawCall keeps.
const maxPooledHead = 16 << 10

// rawCalls recycles rawCalls, and with them the buffers of heads and fields.
var rawCalls = sync.Pool{New: func() any { return &rawCall{head: make([]byte, 0, 4<<10)} }}

// recycle returns e to rawCalls, emptied.
func (e *rawCall) recycle() {
	e.x, e.route, e.fwd, e.pool = nil, nil, nil, nil
	e.req = rawRequest{}
	e.info = reqctx.Info{}
	e.fields.Reset()
	e.head = e.head[:0]
	if cap(e.head) > maxPooledHead {
		// A large body grew it: the pool keeps neither the memory nor the bytes.
		e.head = make([]byte, 0, 4<<10)
	}
	e.status, e.bytes = 0, 0
	e.forwarded = time.Time{}
	e.recorded, e.editResponse = false, false
	rawCalls.Put(e)
}

// record counts the request in the metrics with the status the client gets (0 when
// it went away unanswered), before the client has the answer, as the handler path
// counts a request before its response is flushed.
func (e *rawCall) record(status int) {
	e.recorded = true
	e.route.observer.RecordRaw(&e.info, status)
}

// end finishes the request's observation and recycles e. Deferred, it runs when
// serving the request panicked too: the request is then counted, as the handler
// path's deferred Exchange.End counts it, with the status the client got, or as
// one whose client went away when it got none.
func (e *rawCall) end(l *observe.Listener) {
	if !e.recorded {
		e.record(e.status)
	}
	if x := e.x; l.LogsRaw() {
		l.LogRaw(e.route.observer, observe.RawRequest{Method: x.Method(), Host: x.Host(), Target: x.Target(), RemoteAddr: x.RemoteAddr(),
			Traceparent: e.req.HeaderValue("Traceparent")}, &e.info, e.status, e.bytes)
	}
	e.recycle()
}

// rawRequest shows an exchange to the filters' raw stages. It is passed by pointer,
// which an interface holds without an allocation.
type rawRequest struct {
	*h1.Exchange
	// editor, once the stage that edits the request's fields has passed it on,
	// is that stage; edited are the names it edits.
	editor plugins.RawRequestEditor
	edited []string
}

// HeaderValue returns the first value of the field with the canonical name, as
// http.Header.Get does on the handler path's request, after the edits of the
// filters that have run. That header has no Host, which net/http keeps apart, so
// neither has this one: a filter keyed on it must see the same on both paths.
func (r *rawRequest) HeaderValue(canonicalName string) string {
	if canonicalName == "Host" {
		return ""
	}
	if r.editor != nil && slices.Contains(r.edited, canonicalName) {
		return r.editor.EditedValue(r, canonicalName)
	}
	for i := range r.Fields() {
		if name, value := r.Field(i); name == canonicalName {
			return value
		}
	}
	return ""
}

// serve runs the filters' raw stages and forwards the request under the rule's
// request timeout and retry policy, as the rule's handler would.
func (e *rawCall) serve() {
	for i, stage := range e.route.stages {
		if answer := stage.FilterRaw(&e.req, &e.info, &e.fields); answer != nil {
			e.status, e.bytes = answer.Status, int64(len(answer.Body))
			e.record(answer.Status)
			writeRawText(e.x, answer.Status, "", answer.Body, e.fields.Wire(), e.responseEdit())
			return
		}
		if i == e.route.editorAt {
			e.req.editor, e.req.edited = e.route.editor, e.route.edited
		}
		if i == e.route.responseEditorAt {
			e.editResponse = true
		}
	}
	f := e.fwd
	e.info.Backend = f.backend
	e.forwarded = e.info.Start
	var ctx context.Context = e.x.Context()
	if t := e.route.requestTimeout; t > 0 {
		// Counted from the request's arrival, as deadlineHandler counts it.
		ctx = withDeadline(&e.requestDeadline, ctx, e.info.Start.Add(t), causeRequestTimeout)
		defer releaseDeadline(&e.requestDeadline)
	}
	if !e.route.admitsEarly() {
		// The filters have passed the request on, or a backend was picked: it
		// can no longer be declined, so the breaker admits it as it admits the
		// handler path's, waiting if need be, within the request's timeout.
		e.forwarded = time.Now()
		release, err := e.pool.Breaker().Acquire(ctx)
		if err != nil {
			if errors.Is(err, backend.ErrOverflow) {
				e.fail(errOverflow)
			} else {
				e.fail(classify(ctx, err))
			}
			return
		}
		defer release()
	}
	e.head = e.route.appendHead(e.head[:0], e.x, &e.req)
	if f.retry == nil {
		e.attempt(ctx, nil, retryPermission{}, time.Now())
		return
	}
	e.serveWithRetries(ctx)
}

// serveWithRetries forwards the request, trying again on the failures the policy
// retries while attempts remain and the budget and the breaker allow, as
// forwarder.serveWithRetries does. A request can always be replayed: its body, if it
// has one, is in the connection's buffer whole (see h1.Exchange.Body), and no larger
// than the handler path keeps to replay (see rawForwardable).
func (e *rawCall) serveWithRetries(ctx context.Context) {
	f := e.fwd
	if f.budget != nil {
		f.budget.requestAt(e.forwarded)
	}
	tries := retryTries{pool: e.pool, replayable: true, safe: !f.retry.idempotentOnly || idempotent(e.x.Method()), readClock: true}
	retried := func() { e.info.Flags |= reqctx.FlagRetried }
	try := func(prev *backend.Endpoint, perm retryPermission, tryStart time.Time) (bool, *backend.Endpoint) {
		return e.attempt(ctx, prev, perm, tryStart)
	}
	if !f.runTries(ctx, tries, try, retried) {
		e.fail(classify(ctx, ctx.Err()))
	}
}

// attempt makes one try at forwarding the request to an endpoint, avoiding prev
// when another can serve, as forwarder.attempt does. It reports whether the try
// failed in a way that will be retried, in which case nothing of it reached the
// client, and the endpoint it tried. ctx bounds the request as a whole.
func (e *rawCall) attempt(ctx context.Context, prev *backend.Endpoint, perm retryPermission, tryStart time.Time) (retry bool, ep *backend.Endpoint) {
	f := e.fwd
	ep, err := e.pool.PickExcept(prev)
	if err != nil {
		e.fail(errNoEndpoints)
		return false, nil
	}
	e.info.Attempts++
	e.info.Endpoint = ep.Address
	tryCtx := ctx
	if f.timeout > 0 {
		tryCtx = withDeadline(&e.tryDeadline, ctx, tryStart.Add(f.timeout), causeBackendTimeout)
		defer releaseDeadline(&e.tryDeadline)
	}
	// The body follows the head in one write, as the fast client sends a small
	// body on the handler path.
	body := e.x.Body()
	req := append(appendDeadline(e.head, tryCtx, tryStart), body...)
	ep.Requests.Add(1)
	ep.InFlight.Add(1)
	// Deferred so that the count is released on a panic too.
	defer ep.InFlight.Add(-1)
	res := e.route.client.Forward(tryCtx, ep.Address, req, e.x.Method() == http.MethodHead, rawReplayable(e.x), len(body) > 0, e.x)
	// The buffer may have grown for the deadline field and the body: keep the
	// larger one.
	e.head = req[:len(e.head)]
	if res.Status == 0 {
		return e.failed(ctx, tryCtx, ep, perm, res, tryStart), ep
	}
	// The backend answered: its status counts, as on the handler path, before the
	// client has the answer, even when relaying it then fails, which abandons it.
	e.pool.Report(ep, backend.OutcomeOf(res.Status))
	if perm.any && f.retry.retriesStatus(res.Status) {
		res.Discard()
		return true, ep
	}
	e.answered(res.Status, tryStart)
	e.status = res.Status
	e.record(res.Status)
	if res.Response != nil {
		e.relay(res.Response)
		return false, ep
	}
	written, _, err := res.RelayEdited(e.x, e.fields.Wire(), e.responseEdit())
	e.bytes = written
	if err != nil {
		e.x.Abort()
	}
	return false, ep
}

// failed handles an attempt that got no final answer from the backend: it counts
// it, and answers the client as the handler path would, unless the failure is to be
// retried, which failed reports. ctx bounds the request as a whole, tryCtx the
// attempt.
func (e *rawCall) failed(ctx, tryCtx context.Context, ep *backend.Endpoint, perm retryPermission, res backend.RawResult, tryStart time.Time) bool {
	perr := classify(tryCtx, res.Err)
	if perr == nil || res.ClientFailed {
		// The client went away: there is no one to answer, and the backend is not
		// to blame.
		e.fail(nil)
		return false
	}
	ep.Failures.Add(1)
	e.pool.Report(ep, backend.OutcomeGatewayError)
	if perm.retriesFailure(e.fwd.retry, ctx, tryCtx, res.Err) {
		return true
	}
	e.fwd.proxy.logger.Warn("forwarding failed", "backend", e.fwd.backend, "endpoint", ep.Address, "status", perr.status, "error", res.Err)
	e.answered(perr.status, tryStart)
	e.answerError(perr)
	return false
}

// answered records the answer the attempt that began at tryStart gives the client:
// how long the attempt took, and the request's outcome, both timed by one reading of
// the clock.
func (e *rawCall) answered(status int, tryStart time.Time) {
	now := time.Now()
	e.info.UpstreamTime = now.Sub(tryStart)
	e.fwd.outcomes.Record(now.Sub(e.forwarded), status >= http.StatusInternalServerError)
}

// fail answers the request with the gateway's error perr, in the backend's place,
// and records it as failed; a nil perr means the client went away, and the request
// is counted as such and abandoned.
func (e *rawCall) fail(perr *proxyError) {
	if perr == nil {
		e.record(0)
		e.x.Abort()
		return
	}
	e.fwd.outcomes.Record(time.Since(e.forwarded), perr.status >= http.StatusInternalServerError)
	e.answerError(perr)
}

// answerError counts and writes the gateway's error answer perr, as proxyError.answer
// does through a ResponseWriter.
func (e *rawCall) answerError(perr *proxyError) {
	e.info.Flags |= perr.flag
	e.status = perr.status
	e.record(perr.status)
	// Counted as the handler path counts what it writes, which for a HEAD request
	// the server then leaves out.
	e.bytes = int64(len(perr.body))
	writeRawText(e.x, perr.status, perr.reason, perr.body, e.fields.Wire(), e.responseEdit())
}

// responseEdit returns what edits the answer the client gets now, or nil: the
// route's response editor, once its stage has passed the request on, as the handler
// path's edits apply to what is written through the editor's ResponseWriter.
func (e *rawCall) responseEdit() backend.HeadEditor {
	if !e.editResponse {
		return nil
	}
	return e.route.responseEditor
}

// relay sends a response the raw client did not relay itself through the
// exchange's ResponseWriter, as forwardDirect does.
func (e *rawCall) relay(res *http.Response) {
	// Closed on every way out, a panic included, so that its connection is not
	// left behind.
	defer res.Body.Close()
	w := &countingWriter{ResponseWriter: e.x.ResponseWriter()}
	h := w.Header()
	for name, value := range e.fields.All() {
		h[name] = append(h[name], value)
	}
	removeHopByHopHeaders(res.Header)
	announced := passResponseHeader(h, res)
	if e.editResponse {
		e.route.responseEditor.EditHeader(h)
	}
	w.WriteHeader(res.StatusCode)
	err := e.fwd.proxy.copyBody(w, res)
	e.bytes = w.bytes
	if err != nil {
		e.x.Abort()
		return
	}
	_ = res.Body.Close()
	passTrailers(w, res, announced)
}

// countingWriter counts the body bytes written through a ResponseWriter, for the
// access log.
type countingWriter struct {
	http.ResponseWriter
	bytes int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap returns the exchange's ResponseWriter, for http.ResponseController.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// appendDeadline ends an outbound head: the deadline field, when ctx has a
// deadline, as setDeadlineHeaders sets it, and the empty line. now is the try's
// start, a reading of the clock microseconds old, which the remaining time is
// counted from in whole milliseconds.
func appendDeadline(head []byte, ctx context.Context, now time.Time) []byte {
	if at, ok := ctx.Deadline(); ok {
		head = append(head, DeadlineHeader+": "...)
		if now.IsZero() {
			now = time.Now()
		}
		head = strconv.AppendInt(head, max(at.Sub(now).Milliseconds(), 1), 10)
		head = append(head, "\r\n"...)
	}
	return append(head, "\r\n"...)
}
