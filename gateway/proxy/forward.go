package proxy

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// forwarder sends requests to one backend.
type forwarder struct {
	proxy   *Proxy
	backend string
	// timeout bounds each attempt (the rule's backendRequest timeout); zero means none.
	timeout time.Duration
	// retry is the rule's retry policy, or nil.
	retry *retryPolicy
}

// ServeHTTP forwards the request to an endpoint of the backend.
func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if info := reqctx.From(r.Context()); info != nil {
		info.Backend = f.backend
	}
	pool := f.proxy.backends.Pool(f.backend)
	if pool == nil {
		errBackendNotFound.write(w)
		return
	}
	if f.retry == nil {
		f.attempt(w, r, pool, false)
		return
	}
	f.serveWithRetries(w, r, pool)
}

// attempt makes one try at forwarding the request to an endpoint of pool. It reports
// whether the try failed in a way that will be retried, in which case nothing has
// been written to w. mayRetry says whether such a failure may be retried at all.
func (f *forwarder) attempt(w http.ResponseWriter, r *http.Request, pool *backend.Pool, mayRetry bool) (retry bool) {
	ep, err := pool.Pick()
	if err != nil {
		errNoEndpoints.write(w)
		return false
	}
	protocol, tlsTransport := pool.Transport()
	a := &attempt{Context: r.Context(), backend: f.backend, endpoint: ep, policy: f.retry, mayRetry: mayRetry, tls: tlsTransport}
	if f.timeout > 0 && !isUpgrade(r) {
		ctx, cancel := context.WithTimeoutCause(r.Context(), f.timeout, causeBackendTimeout)
		defer cancel()
		a.Context = ctx
	}
	ep.Requests.Add(1)
	ep.InFlight.Add(1)
	// Deferred so that the count is released even when the copy of the response is
	// aborted by a panic (http.ErrAbortHandler).
	defer ep.InFlight.Add(-1)
	f.proxy.reverseProxy(protocol, tlsTransport != nil).ServeHTTP(w, r.WithContext(a))
	return a.retry
}

// attempt is the context of one try at forwarding a request. It carries the chosen
// endpoint and the retry decision between the forwarder and the ReverseProxy hooks
// (Rewrite, ModifyResponse, ErrorHandler), which see only the outbound request. The
// hooks run on the goroutine that serves the request, so the fields need no locking.
type attempt struct {
	context.Context
	backend  string
	endpoint *backend.Endpoint
	policy   *retryPolicy
	// mayRetry says whether a retryable failure of this attempt is to be retried.
	mayRetry bool
	// tls is the transport of a backend spoken to over TLS, nil for cleartext.
	tls http.RoundTripper
	// retry is set by the hooks when the attempt failed, nothing was written, and
	// the request is to be tried again.
	retry bool
}

type attemptKey struct{}

// Value returns the attempt itself for attemptKey and defers to the parent otherwise.
func (a *attempt) Value(key any) any {
	if _, ok := key.(attemptKey); ok {
		return a
	}
	return a.Context.Value(key)
}

// attemptFrom returns the attempt a request's context belongs to, or nil.
func attemptFrom(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

// timeoutHandler bounds a whole request, retries included, by the rule's request
// timeout. Requests that upgrade the connection are exempt: the timeout would cut
// the upgraded conversation short.
type timeoutHandler struct {
	next    http.Handler
	timeout time.Duration
}

func (h *timeoutHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isUpgrade(r) {
		h.next.ServeHTTP(w, r)
		return
	}
	ctx, cancel := context.WithTimeoutCause(r.Context(), h.timeout, causeRequestTimeout)
	defer cancel()
	h.next.ServeHTTP(w, r.WithContext(ctx))
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
