// Package proxy is the gateway's forwarding engine. For each route rule it builds,
// once per configuration version, a handler that splits traffic among the rule's
// backend references by weight, runs the chosen reference's filters, and forwards the
// request to an endpoint of the backend, streaming the response back.
//
// Forwarding behaves as httputil.ReverseProxy does (hop-by-hop headers, trailers,
// prompt flushing of streamed responses), through three hooks: rewrite,
// modifyResponse and handleError. Requests that switch protocols go through a
// ReverseProxy, which tunnels the upgraded connection; every other request goes
// through forwardDirect, which has the same effect with far fewer allocations (see
// direct.go). Everything that varies per request (the endpoint, the attempt's
// deadline, whether a failure may be retried) travels in the request's context, as
// an attempt, so one ReverseProxy per backend protocol serves every route.
package proxy

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/observe"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
	"github.com/switchyard-dev/switchyard/plugins"
)

// Options configure a Proxy.
type Options struct {
	// TrustedProxies are the peers whose X-Forwarded-* headers are believed. Requests
	// from any other peer have those headers replaced.
	TrustedProxies []netip.Prefix
	// Logger receives forwarding errors; nil means slog.Default().
	Logger *slog.Logger
	// Observer counts retries, traces attempts and propagates trace context; nil
	// observes nothing (trace context headers then pass through unchanged).
	Observer *observe.Observer
}

// Proxy builds rule handlers that forward to the pools of a backend.Manager.
type Proxy struct {
	backends       *backend.Manager
	trustedProxies []netip.Prefix
	logger         *slog.Logger
	http1          *httputil.ReverseProxy
	h2c            *httputil.ReverseProxy
	// budgets holds the retry budgets by backend and policy (*retryBudget); they
	// outlive configuration versions.
	budgets sync.Map
	// budgetBuilds counts the configurations that went into service, to tell the
	// budgets their handlers use from the others (see dropUnusedBudgets).
	budgetBuilds atomic.Uint64
	// tls forwards to backends spoken to over TLS, through each one's transport.
	tls *httputil.ReverseProxy
	// outcomes holds the request outcomes by backend; they outlive configuration
	// versions.
	outcomes outcomeBook
	// observer counts retries and traces attempts; nil observes nothing.
	observer *observe.Observer
	// buffers recycles the buffers response bodies are copied through, and
	// errorLog receives the complaints of the copy and of ReverseProxy.
	buffers  *bufferPool
	errorLog *log.Logger
	// viaReverseProxy sends every request through ReverseProxy rather than
	// forwardDirect, for the tests that compare the two.
	viaReverseProxy bool
}

// New returns a Proxy forwarding through m.
func New(m *backend.Manager, opts Options) *Proxy {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	p := &Proxy{
		backends:       m,
		trustedProxies: append([]netip.Prefix(nil), opts.TrustedProxies...),
		logger:         logger,
		observer:       opts.Observer,
		buffers:        &bufferPool{},
		errorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	p.http1 = p.newReverseProxy(m.Transport(config.AppProtocolHTTP1))
	p.h2c = p.newReverseProxy(m.Transport(config.AppProtocolH2C))
	p.tls = p.newReverseProxy(attemptTransport{})
	return p
}

func (p *Proxy) newReverseProxy(t http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      t,
		BufferPool:     p.buffers,
		ErrorLog:       p.errorLog,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.handleError,
	}
}

// transport returns the transport for a backend protocol, or tls, the transport of
// a backend spoken to over TLS, when it is not nil.
func (p *Proxy) transport(protocol config.AppProtocol, tls http.RoundTripper) http.RoundTripper {
	if tls != nil {
		return tls
	}
	return p.backends.Transport(protocol)
}

// reverseProxy returns the ReverseProxy for a backend protocol, or the one for TLS
// backends.
func (p *Proxy) reverseProxy(protocol config.AppProtocol, tls bool) *httputil.ReverseProxy {
	if tls {
		return p.tls
	}
	if protocol == config.AppProtocolH2C {
		return p.h2c
	}
	return p.http1
}

// RuleHandler builds the final handler of one rule: it picks a backend reference by
// weight, runs that reference's filters, and forwards to the backend's pool within the
// rule's timeouts and retry policy. When the rule has a HeaderRoute, requests that
// carry its headers go to its reference instead, whatever the weights (see
// headerRouteHandler). The rule's own filters are not included; the caller wraps them
// around the result.
func (p *Proxy) RuleHandler(pctx plugins.Context, rule *config.Rule) (http.Handler, error) {
	requestTimeout, backendTimeout, retry := ruleSettings(rule)
	hr := rule.HeaderRoute
	if hr != nil && (len(hr.Headers) == 0 || hr.Backend < 0 || hr.Backend >= len(rule.Backends)) {
		// Validate refuses these; a rule built by hand must not pin every request.
		return nil, fmt.Errorf("header route with %d headers names backend %d of %d", len(hr.Headers), hr.Backend, len(rule.Backends))
	}
	// Each reference gets one handler, shared by the split and the header route, so
	// that its filters are provisioned once.
	var pinned http.Handler
	split := &weightedHandler{}
	for i := range rule.Backends {
		ref := &rule.Backends[i]
		isPinned := hr != nil && hr.Backend == i
		if ref.Weight <= 0 && !isPinned {
			continue
		}
		h, err := p.referenceHandler(pctx, ref, backendTimeout, retry)
		if err != nil {
			return nil, fmt.Errorf("backend %d (%s): %w", i, ref.Backend, err)
		}
		if isPinned {
			pinned = h
		}
		if ref.Weight > 0 {
			split.add(ref.Weight, h)
		}
	}
	var h http.Handler = split
	if len(split.items) == 0 {
		h = errNoBackends
	}
	if pinned != nil {
		h = &headerRouteHandler{conds: newHeaderConds(hr.Headers), pinned: pinned, weighted: h}
	}
	return &deadlineHandler{next: h, timeout: requestTimeout}, nil
}

// ruleSettings returns what a rule asks of forwarding: its request timeout, its
// backend request timeout and its retry policy (nil when it retries nothing).
func ruleSettings(rule *config.Rule) (requestTimeout, backendTimeout time.Duration, retry *retryPolicy) {
	if rule.Timeouts != nil {
		requestTimeout = rule.Timeouts.Request.D()
		backendTimeout = rule.Timeouts.BackendRequest.D()
	}
	return requestTimeout, backendTimeout, newRetryPolicy(rule.Retry)
}

// referenceHandler builds the handler for one backend reference: its filters around
// a forwarder, or a fixed error for a reference that could not be resolved.
func (p *Proxy) referenceHandler(pctx plugins.Context, ref *config.BackendRef, timeout time.Duration, retry *retryPolicy) (http.Handler, error) {
	if ref.Invalid != nil {
		return invalidBackendError(ref.Invalid.StatusCode), nil
	}
	if ref.Backend == "" {
		return nil, errors.New("backend reference names no backend")
	}
	fwd := p.newForwarder(ref.Backend, timeout, retry)
	if len(ref.Filters) == 0 {
		return fwd, nil
	}
	return plugins.Chain(pctx, ref.Filters, fwd)
}

// newForwarder returns the forwarder to a backend under a rule's backend request
// timeout and retry policy: each attempt is bounded by the shorter of the timeout and
// the policy's per-try timeout, and retries draw on the backend's budget.
func (p *Proxy) newForwarder(backendName string, timeout time.Duration, retry *retryPolicy) *forwarder {
	fwd := &forwarder{proxy: p, backend: backendName, timeout: timeout, retry: retry, outcomes: p.outcomes.recorder(backendName),
		observed: p.observer.Backend(backendName)}
	if retry != nil {
		fwd.budget = p.budgetFor(backendName, retry.budget)
		if retry.perTryTimeout > 0 && (timeout == 0 || retry.perTryTimeout < timeout) {
			fwd.timeout = retry.perTryTimeout
		}
	}
	return fwd
}

// rewrite is ReverseProxy's Rewrite hook: see rewriteRequest.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) { p.rewriteRequest(pr.Out, pr.In) }

// rewriteRequest directs the outbound request to the attempt's endpoint and sets
// the X-Forwarded-* headers. The Host header is left as received (after any
// URLRewrite).
func (p *Proxy) rewriteRequest(out, in *http.Request) {
	out.URL.Scheme = "http"
	// The header values the rewrite sets are kept in the attempt, allocated with it.
	var values *outboundValues
	if a := attemptFrom(out.Context()); a != nil {
		out.URL.Host = a.endpoint.Address
		if a.tls != nil {
			out.URL.Scheme = "https"
		}
		values = &a.values
	} else {
		values = new(outboundValues)
	}
	p.setForwarded(out, in, values)
	setDeadlineHeaders(out, values)
	p.observer.Inject(out.Context(), out.Header)
}

// errRetry tells the error handler that a response was discarded to be retried.
var errRetry = errors.New("response will be retried")

// modifyResponse discards a response whose status the retry policy retries, while
// attempts remain; nothing has been written to the client at that point.
func (p *Proxy) modifyResponse(res *http.Response) error {
	if res.Request == nil {
		return nil
	}
	a := attemptFrom(res.Request.Context())
	if a == nil {
		return nil
	}
	a.pool.Report(a.endpoint, backend.OutcomeOf(res.StatusCode))
	a.status = res.StatusCode
	if a.perm.any && a.fwd.retry.retriesStatus(res.StatusCode) {
		a.retry = true
		return errRetry
	}
	a.answered(failedAnswer(res))
	return nil
}

// handleError answers a failed attempt, or records that it will be retried.
func (p *Proxy) handleError(w http.ResponseWriter, r *http.Request, err error) {
	a := attemptFrom(r.Context())
	if errors.Is(err, errRetry) {
		return
	}
	var info *reqctx.Info
	if a != nil {
		a.err = err
		info = a.info
	}
	perr := classify(r.Context(), err)
	if perr == nil {
		// The client went away: there is no one to answer.
		p.logger.Debug("client closed the request before the response", "path", r.URL.Path, "error", err)
		return
	}
	if a != nil {
		a.endpoint.Failures.Add(1)
		a.pool.Report(a.endpoint, backend.OutcomeGatewayError)
		if a.retriesFailure(r.Context(), err) {
			a.retry = true
			return
		}
		a.answered(true)
	}
	p.logger.Warn("forwarding failed", "backend", backendName(a), "endpoint", endpointAddress(a), "status", perr.status, "error", err)
	perr.answer(w, info)
}

func backendName(a *attempt) string {
	if a == nil {
		return ""
	}
	return a.fwd.backend
}

func endpointAddress(a *attempt) string {
	if a == nil {
		return ""
	}
	return a.endpoint.Address
}

// bufferSize is the size of the buffers responses are copied through.
const bufferSize = 32 << 10

// bufferPool recycles response copy buffers. It stores array pointers, so putting a
// buffer back does not allocate.
type bufferPool struct{ pool sync.Pool }

// Get returns a buffer of bufferSize bytes.
func (b *bufferPool) Get() []byte {
	if buf, ok := b.pool.Get().(*[bufferSize]byte); ok {
		return buf[:]
	}
	return new([bufferSize]byte)[:]
}

// Put returns a buffer obtained from Get.
func (b *bufferPool) Put(buf []byte) {
	if cap(buf) >= bufferSize {
		b.pool.Put((*[bufferSize]byte)(buf[:bufferSize]))
	}
}
