package proxy

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// maxReplayBody is the largest request body kept in memory so that the request can
// be retried. Requests with larger bodies are tried once.
const maxReplayBody = 64 << 10

// retryPolicy is a rule's retry policy, ready for use.
type retryPolicy struct {
	codes          []int
	on             retryConditions
	attempts       int
	backoff        time.Duration
	maxBackoff     time.Duration
	perTryTimeout  time.Duration
	idempotentOnly bool
	budget         *config.RetryBudget
}

// retryConditions is a set of config.RetryCondition values.
type retryConditions uint8

const (
	onConnectFailure retryConditions = 1 << iota
	onReset
	onTimeout
	onGatewayError
	on5xx
)

// defaultRetryConditions apply when a policy names none: what the Gateway API asks
// of an HTTPRoute retry stanza.
const defaultRetryConditions = onConnectFailure | onReset | onTimeout

var retryConditionBits = map[config.RetryCondition]retryConditions{
	config.RetryConnectFailure: onConnectFailure, config.RetryReset: onReset,
	config.RetryTimeout: onTimeout, config.RetryGatewayError: onGatewayError | onTimeout,
	config.Retry5xx: on5xx | onTimeout,
	// Only Codes are retried: no failure class.
	config.RetryStatusCodesOnly: 0,
}

// newRetryPolicy returns the policy for a rule, or nil when the rule retries nothing.
func newRetryPolicy(r *config.Retry) *retryPolicy {
	if r == nil || r.Attempts <= 0 {
		return nil
	}
	p := &retryPolicy{codes: slices.Clone(r.Codes), attempts: r.Attempts, backoff: r.Backoff.D(),
		maxBackoff: r.MaxBackoff.D(), perTryTimeout: r.PerTryTimeout.D(), idempotentOnly: r.IdempotentOnly,
		budget: r.Budget, on: defaultRetryConditions}
	if len(r.On) > 0 {
		p.on = 0
		for _, c := range r.On {
			p.on |= retryConditionBits[c]
		}
	}
	return p
}

// retriesStatus reports whether a response status is retried. Only error statuses
// qualify: a 1xx, 2xx or 3xx response is always passed on.
func (p *retryPolicy) retriesStatus(status int) bool {
	switch {
	case p == nil || status < 400:
		return false
	case p.on&on5xx != 0 && status >= 500,
		p.on&onGatewayError != 0 && (status == 502 || status == 503 || status == 504):
		return true
	}
	return slices.Contains(p.codes, status)
}

// wait is the pause before retry number n (from 1): doubling from the base with each
// retry up to the cap, with jitter that never goes below the base, so that clients
// failing together do not retry together.
func (p *retryPolicy) wait(n int) time.Duration {
	if p.maxBackoff <= p.backoff || p.backoff <= 0 {
		return p.backoff
	}
	ceiling := p.backoff << min(n-1, 30)
	if ceiling <= 0 || ceiling > p.maxBackoff {
		ceiling = p.maxBackoff
	}
	return p.backoff + rand.N(ceiling-p.backoff+1)
}

// idempotent reports whether a method may be sent twice with the effect of once.
func idempotent(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPatch, http.MethodConnect:
		return false
	}
	return true
}

// serveWithRetries forwards the request, trying again on the failures the policy
// retries while attempts remain, the body can be replayed and the budget allows.
func (f *forwarder) serveWithRetries(w http.ResponseWriter, r *http.Request, info *reqctx.Info, pool *backend.Pool, start time.Time) {
	body, replayable, err := bufferBody(r)
	if err != nil {
		if r.Context().Err() == nil {
			errUnreadableBody.answer(w, info)
		}
		return
	}
	if f.budget != nil {
		// The budget counts whole seconds: the forwarder's reading of the clock
		// serves.
		f.budget.requestAt(start)
	}
	tries := retryTries{pool: pool, replayable: replayable, safe: !f.retry.idempotentOnly || idempotent(r.Method),
		readClock: info != nil || f.budget != nil}
	retried := func() {
		if info != nil {
			info.Flags |= reqctx.FlagRetried
		}
	}
	try := func(prev *backend.Endpoint, perm retryPermission, tryStart time.Time) (bool, *backend.Endpoint) {
		out := r
		if replayable && body != nil {
			out = withBody(r, body)
		}
		return f.attempt(w, out, info, pool, prev, perm, start, tryStart)
	}
	if !f.runTries(r.Context(), tries, try, retried) {
		if perr := classify(r.Context(), r.Context().Err()); perr != nil {
			f.fail(w, info, perr, start)
		}
	}
}

// retryTries is what runTries needs of a request: the backend's pool, whether the
// request can be sent again (its body replayed) and may be retried after any failure
// (safe), and whether each try reads the clock even when the budget does not need
// it (for the request's Info).
type retryTries struct {
	pool       *backend.Pool
	replayable bool
	safe       bool
	readClock  bool
}

// runTries makes the tries of a request under the forwarder's retry policy: try
// makes one, avoiding prev, and reports whether it is to be retried and the
// endpoint it tried. Tries go on while the policy's attempts, the budget and the
// breaker's retry places allow, with the policy's pause between them; retried is
// called for each retry. runTries reports false when ctx ended during a pause, for
// the caller to answer.
func (f *forwarder) runTries(ctx context.Context, t retryTries, try func(prev *backend.Endpoint, perm retryPermission, tryStart time.Time) (bool, *backend.Endpoint), retried func()) bool {
	var prev *backend.Endpoint
	// retrying releases the breaker place of the retry in progress, and next that
	// of the try under way; both are released on every way out, a panic included
	// (a client that goes away mid-body aborts a handler with one).
	var retrying, next func()
	defer func() {
		for _, release := range [...]func(){retrying, next} {
			if release != nil {
				release()
			}
		}
	}()
	for n := 0; ; n++ {
		// One reading of the clock serves the budget and the try's start.
		var tryStart time.Time
		if t.readClock || f.budget != nil {
			tryStart = time.Now()
		}
		may := t.replayable && n < f.retry.attempts && (f.budget == nil || f.budget.allowsAt(tryStart))
		// The breaker's retry place is taken before the try, so that a response
		// discarded for a retry always gets its retry.
		if may {
			next, may = t.pool.Breaker().TryRetry()
		}
		retry, ep := try(prev, retryPermission{any: may && t.safe, connect: may}, tryStart)
		if !retry {
			return true
		}
		if retrying != nil {
			retrying()
		}
		retrying, next = next, nil
		if f.budget != nil {
			f.budget.retried()
		}
		f.observed.Retried()
		retried()
		prev = ep
		if !sleep(ctx, f.retry.wait(n+1)) {
			return false
		}
	}
}

// bufferBody reads the request body into memory when it is small enough to replay.
// It reports the body (nil when there is none) and whether it can be replayed. When it
// cannot, r.Body is replaced by a reader that yields the bytes already read followed by
// the rest, so the request can still be forwarded once.
func bufferBody(r *http.Request) (body []byte, replayable bool, err error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, true, nil
	}
	if r.ContentLength > maxReplayBody {
		return nil, false, nil
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	n, err := io.CopyN(&buf, r.Body, maxReplayBody+1)
	if err != nil && err != io.EOF {
		return nil, false, err
	}
	if n <= maxReplayBody {
		return buf.Bytes(), true, nil
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf.Bytes()), r.Body), r.Body}
	return nil, false, nil
}

// withBody returns a shallow copy of r that reads body from the start.
func withBody(r *http.Request, body []byte) *http.Request {
	out := r.WithContext(r.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	out.TransferEncoding = nil
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return out
}

// sleep waits for d or until ctx is done, reporting whether the full wait elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
