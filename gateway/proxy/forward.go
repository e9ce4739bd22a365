package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/internal/deadline"
	"github.com/switchyard-dev/switchyard/gateway/observe"
	"github.com/switchyard-dev/switchyard/gateway/outcome"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// forwarder sends requests to one backend.
type forwarder struct {
	proxy   *Proxy
	backend string
	// timeout bounds each attempt (the rule's backendRequest timeout or the retry
	// policy's per-try timeout, whichever is shorter); zero means none.
	timeout time.Duration
	// retry is the rule's retry policy, or nil.
	retry *retryPolicy
	// budget is the backend's retry budget under the policy, or nil.
	budget *retryBudget
	// outcomes counts the backend's request outcomes; it outlives the forwarder.
	outcomes *outcome.Recorder
	// observed counts the backend's retries in the metrics; nil without them.
	observed *observe.Backend
}

// ServeHTTP forwards the request to an endpoint of the backend, and records how it
// ended (see the outcome rules in outcomes.go).
func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := reqctx.From(r.Context())
	if info != nil {
		info.Backend = f.backend
	}
	pool := f.proxy.backends.Pool(f.backend)
	if pool == nil {
		f.fail(w, info, errBackendNotFound, start)
		return
	}
	release, err := pool.Breaker().Acquire(r.Context())
	if err != nil {
		if errors.Is(err, backend.ErrOverflow) {
			f.fail(w, info, errOverflow, start)
		} else if perr := classify(r.Context(), err); perr != nil {
			f.fail(w, info, perr, start)
		}
		return
	}
	defer release()
	if f.retry == nil {
		f.attempt(w, r, info, pool, nil, retryPermission{}, start, time.Time{})
		return
	}
	f.serveWithRetries(w, r, info, pool, start)
}

// retryPermission says which failures of an attempt may be retried.
type retryPermission struct {
	// any allows retrying every failure the policy names.
	any bool
	// connect allows retrying a connect failure, which the backend never saw, even
	// when other failures may not be retried (a POST under IdempotentOnly).
	connect bool
}

// attempt makes one try at forwarding the request to an endpoint of pool, avoiding
// prev when another endpoint can serve. It reports whether the try failed in a way
// that will be retried, in which case nothing has been written to w, and the
// endpoint it tried. An attempt that ends the request records its outcome, counted
// from start. info, when not nil, learns of the attempt, which began at tryStart: a
// reading of the clock the caller made for the attempt, or zero for the attempt to
// make its own.
func (f *forwarder) attempt(w http.ResponseWriter, r *http.Request, info *reqctx.Info, pool *backend.Pool, prev *backend.Endpoint,
	perm retryPermission, start, tryStart time.Time) (retry bool, ep *backend.Endpoint) {
	ep, err := pool.PickExcept(prev)
	if err != nil {
		f.fail(w, info, errNoEndpoints, start)
		return false, nil
	}
	protocol, tlsTransport := pool.Transport()
	a := &attempt{Context: r.Context(), request: r.Context(), fwd: f, pool: pool, endpoint: ep,
		perm: perm, tls: tlsTransport, start: start, info: info, w: w}
	if info != nil {
		info.Attempts++
		info.Endpoint = ep.Address
		if tryStart.IsZero() {
			tryStart = time.Now()
		}
		a.tryStart = tryStart
	}
	// Whether the request switches protocols is asked once: it reads two headers.
	upgrade := isUpgrade(r)
	if f.timeout > 0 && !upgrade {
		// The try's timeout counts from its start, read once above when there is
		// an Info to record it in.
		begun := a.tryStart
		if begun.IsZero() {
			begun = time.Now()
		}
		ctx := deadline.NewAt(r.Context(), begun.Add(f.timeout), causeBackendTimeout)
		defer ctx.Release()
		a.Context = ctx
	}
	var span trace.Span
	a.Context, span = f.proxy.observer.StartAttempt(a.Context, f.backend, ep.Address)
	ep.Requests.Add(1)
	ep.InFlight.Add(1)
	// Deferred so that the count is released even when the copy of the response is
	// aborted by a panic (http.ErrAbortHandler).
	defer ep.InFlight.Add(-1)
	if upgrade || f.proxy.viaReverseProxy {
		f.proxy.reverseProxy(protocol, tlsTransport != nil).ServeHTTP(w, r.WithContext(a))
	} else {
		f.proxy.forwardDirect(w, r, a, f.proxy.transport(protocol, tlsTransport))
	}
	observe.EndAttempt(span, a.status, a.err)
	return a.retry, ep
}

// attempt is the context of one try at forwarding a request. It carries the chosen
// endpoint and the retry decision between the forwarder and the ReverseProxy hooks
// (Rewrite, ModifyResponse, ErrorHandler), which see only the outbound request. The
// hooks run on the goroutine that serves the request, so the fields need no locking.
type attempt struct {
	context.Context
	// request is the context of the request as a whole, without the attempt's own
	// timeout: when it is done, no further attempt is made.
	request context.Context
	// fwd is the forwarder making the attempt: its backend, retry policy and outcome
	// recorder.
	fwd      *forwarder
	pool     *backend.Pool
	endpoint *backend.Endpoint
	// perm says which failures of this attempt may be retried.
	perm retryPermission
	// tls is the transport of a backend spoken to over TLS, nil for cleartext.
	tls http.RoundTripper
	// retry is set by the hooks when the attempt failed, nothing was written, and
	// the request is to be tried again.
	retry bool
	// recorded is set once the request's outcome is recorded, counted from start,
	// when the hooks give the request its final answer.
	recorded bool
	start    time.Time
	// info is the request's Info, or nil; tryStart is when this attempt began,
	// for its UpstreamTime.
	info     *reqctx.Info
	tryStart time.Time
	// status and err are the backend's answer or the attempt's failure, for the
	// attempt's span.
	status int
	err    error

	// What forwardDirect needs, kept here to be allocated with the attempt: the
	// client's ResponseWriter, the outbound request's URL, ClientTrace and body, and
	// done, set under mu once the round trip returned, after which got1xx no longer
	// writes to w. Both ways of forwarding use values.
	w     http.ResponseWriter
	url   url.URL
	trace httptrace.ClientTrace
	body  guardedBody
	mu    sync.Mutex
	done  bool
	// values holds the values of the headers the rewrite sets.
	values outboundValues

	// traceInValue is set when the attempt's Value answers httptrace's lookups with
	// trace itself (see clientTraceKey).
	traceInValue bool
}

// retriesFailure reports whether this attempt, which failed with err before a
// response, is tried again (see retryPermission.retriesFailure). ctx is the failed
// outbound request's.
func (a *attempt) retriesFailure(ctx context.Context, err error) bool {
	return a.perm.retriesFailure(a.fwd.retry, a.request, ctx, err)
}

// retriesFailure reports whether an attempt under the permission, which failed with
// err before a response, is tried again: when the request as a whole (request, its
// context without the attempt's timeout) is still live and the policy retries the
// kind of failure (a connect failure, a reset or early close, or a run past the
// per-try timeout). ctx is the attempt's context.
func (perm retryPermission) retriesFailure(policy *retryPolicy, request, ctx context.Context, err error) bool {
	if policy == nil || request.Err() != nil {
		return false
	}
	switch cause := deadline.Cause(ctx); {
	case errors.Is(cause, causeBackendTimeout):
		return perm.any && policy.on&onTimeout != 0
	case cause != nil:
		return false
	case isConnectError(err):
		return perm.connect && policy.on&onConnectFailure != 0
	default:
		return perm.any && policy.on&onReset != 0
	}
}

// answered records, when the attempt gives the request its final answer, how long
// the attempt took to get it, and counts the request's outcome (see record), both
// timed by one reading of the clock.
func (a *attempt) answered(failed bool) {
	now := time.Now()
	if a.info != nil {
		a.info.UpstreamTime = now.Sub(a.tryStart)
	}
	a.record(now, failed)
}

type attemptKey struct{}

// Value returns the attempt itself for attemptKey and defers to the parent otherwise.
func (a *attempt) Value(key any) any {
	if _, ok := key.(attemptKey); ok {
		return a
	}
	if a.traceInValue && key == clientTraceKey {
		return &a.trace
	}
	return a.Context.Value(key)
}

// ValueParent returns the context the attempt adds its values to, whose end is
// the attempt's (see ctxhook.Wrapper).
func (a *attempt) ValueParent() context.Context { return a.Context }

// AfterFunc lets context.AfterFunc, and the contexts a transport derives from the
// outbound request's, register with the request's context rather than start a
// goroutine each to wait on Done.
func (a *attempt) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(a.Context, f)
}

// attemptFrom returns the attempt a request's context belongs to, or nil.
func attemptFrom(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

// attemptTransport sends each request over the TLS transport of its attempt's
// backend. TLS backends differ in their settings, so one ReverseProxy serves them
// all and the transport is chosen per request.
type attemptTransport struct{}

var errNoTLSTransport = errors.New("request has no TLS backend transport")

func (attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	a := attemptFrom(req.Context())
	if a == nil || a.tls == nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, errNoTLSTransport
	}
	return a.tls.RoundTrip(req)
}
