package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/backend"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

// maxReplayBody is the largest request body kept in memory so that the request can
// be retried. Requests with larger bodies are tried once.
const maxReplayBody = 64 << 10

// retryPolicy is a rule's retry policy, ready for use.
type retryPolicy struct {
	codes    []int
	attempts int
	backoff  time.Duration
}

// newRetryPolicy returns the policy for a rule, or nil when the rule retries nothing.
func newRetryPolicy(r *config.Retry) *retryPolicy {
	if r == nil || r.Attempts <= 0 {
		return nil
	}
	return &retryPolicy{codes: slices.Clone(r.Codes), attempts: r.Attempts, backoff: r.Backoff.D()}
}

// retriesStatus reports whether a response status is retried. Only error statuses
// qualify: a 1xx, 2xx or 3xx response is always passed on.
func (p *retryPolicy) retriesStatus(status int) bool {
	return p != nil && status >= 400 && slices.Contains(p.codes, status)
}

// serveWithRetries forwards the request, trying again on connect failures and on
// retried statuses while attempts remain and the body can be replayed.
func (f *forwarder) serveWithRetries(w http.ResponseWriter, r *http.Request, pool *backend.Pool) {
	body, replayable, err := bufferBody(r)
	if err != nil {
		if r.Context().Err() == nil {
			errUnreadableBody.write(w)
		}
		return
	}
	for try := 0; ; try++ {
		out := r
		if replayable && body != nil {
			out = withBody(r, body)
		}
		if !f.attempt(w, out, pool, replayable && try < f.retry.attempts) {
			return
		}
		if !sleep(r.Context(), f.retry.backoff) {
			if perr := classify(r.Context(), r.Context().Err()); perr != nil {
				perr.write(w)
			}
			return
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
