// Package mirror implements the RequestMirror filter: a sampled copy of each request
// goes to another backend, and its response is discarded. Mirroring never slows or
// fails the primary request: copies are sent in the background, a bounded number at a
// time, and are dropped (and counted) beyond that.
package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/plugins"
)

func init() { plugins.Register(config.FilterRequestMirror, plugin{}) }

// MaxBody is the largest request body that is mirrored; larger requests are forwarded
// as usual but not copied, so mirroring never buffers much.
const MaxBody = 64 << 10

// maxDrain bounds how much of a mirror's response is read before closing it, so that
// the connection can be reused without reading an unbounded body.
const maxDrain = 64 << 10

// The bounds below are variables so that tests can make them small.
var (
	// maxInFlight bounds the copies outstanding per filter instance.
	maxInFlight = 128
	// timeout bounds one mirrored request, from sending to reading its response.
	timeout = 5 * time.Second
)

// Stats counts what mirroring did, across all filter instances.
var Stats struct {
	// Sent counts copies that got a response from the mirror backend.
	Sent atomic.Uint64
	// Dropped counts copies not sent because too many were already in flight.
	Dropped atomic.Uint64
	// Skipped counts copies not sent because the request body was too large.
	Skipped atomic.Uint64
	// Failed counts copies that got no response (error or timeout).
	Failed atomic.Uint64
}

type plugin struct{}

// Validate checks the RequestMirror settings.
func (plugin) Validate(spec *config.Filter) error {
	m := spec.RequestMirror
	if m == nil {
		return errors.New("settings are missing")
	}
	if f := m.Fraction; f != nil {
		if f.Denominator <= 0 {
			return fmt.Errorf("fraction denominator %d must be positive", f.Denominator)
		}
		if f.Numerator < 0 || f.Numerator > f.Denominator {
			return fmt.Errorf("fraction %d/%d is out of range: the numerator must be between 0 and the denominator",
				f.Numerator, f.Denominator)
		}
	}
	return nil
}

type mirror struct {
	upstream    plugins.Upstream
	backend     string
	numerator   int32
	denominator int32
	slots       chan struct{}
	logger      *slog.Logger
}

// Provision builds middleware that sends a copy of sampled requests to the mirror
// backend in the background. A filter whose backend could not be resolved does
// nothing: the unresolved reference is reported in route status, and the route itself
// keeps working.
func (p plugin) Provision(ctx plugins.Context, spec *config.Filter) (plugins.Middleware, error) {
	if err := p.Validate(spec); err != nil {
		return nil, err
	}
	m := spec.RequestMirror
	if m.Backend == "" {
		return func(next http.Handler) http.Handler { return next }, nil
	}
	if ctx.Upstream == nil {
		return nil, fmt.Errorf("mirror to backend %q needs an upstream to send through", m.Backend)
	}
	logger := ctx.Logger
	if logger == nil {
		logger = slog.Default()
	}
	mr := &mirror{upstream: ctx.Upstream, backend: m.Backend, numerator: 1, denominator: 1,
		slots: make(chan struct{}, maxInFlight), logger: logger}
	if m.Fraction != nil {
		mr.numerator, mr.denominator = m.Fraction.Numerator, m.Fraction.Denominator
	}
	return mr.middleware, nil
}

func (m *mirror) sampled() bool {
	switch {
	case m.numerator >= m.denominator:
		return true
	case m.numerator <= 0:
		return false
	}
	return rand.Int32N(m.denominator) < m.numerator
}

func (m *mirror) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.sampled() {
			m.send(r)
		}
		next.ServeHTTP(w, r)
	})
}

// send starts a copy of r unless too many copies are out or the body is too large.
// It takes a slot first so that an overloaded mirror costs the primary nothing.
func (m *mirror) send(r *http.Request) {
	select {
	case m.slots <- struct{}{}:
	default:
		Stats.Dropped.Add(1)
		return
	}
	body, ok := bufferBody(r)
	if !ok {
		<-m.slots
		Stats.Skipped.Add(1)
		return
	}
	// The copy outlives the primary request, so it keeps the request's values but
	// not its cancellation, and has a deadline of its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), timeout)
	shadow := r.Clone(ctx)
	shadow.RequestURI = ""
	shadow.Body = http.NoBody
	shadow.ContentLength = 0
	if body != nil {
		shadow.Body = io.NopCloser(bytes.NewReader(body))
		shadow.ContentLength = int64(len(body))
		shadow.TransferEncoding = nil
	}
	go func() {
		defer func() { <-m.slots }()
		defer cancel()
		m.roundTrip(ctx, shadow)
	}()
}

func (m *mirror) roundTrip(ctx context.Context, shadow *http.Request) {
	resp, err := m.upstream.RoundTrip(ctx, m.backend, shadow)
	if err != nil {
		Stats.Failed.Add(1)
		m.logger.Debug("mirrored request failed", "backend", m.backend, "error", err)
		return
	}
	Stats.Sent.Add(1)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
}

// bufferBody reads r's body (up to MaxBody) so that both the primary request and the
// copy can send it, and puts an equivalent body back on r. It reports false when the
// body is too large to mirror; r's body is still intact then. A body of unknown length
// is read up to the bound before the primary request goes on.
func bufferBody(r *http.Request) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, true
	}
	if r.ContentLength > MaxBody {
		return nil, false
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if len(buf) > MaxBody || err != nil {
		// The primary still gets every byte: what was read, then the rest.
		r.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(buf), r.Body), closer: r.Body}
		return nil, false
	}
	r.Body = &replayBody{Reader: bytes.NewReader(buf), closer: r.Body}
	return buf, true
}

// replayBody serves already-read bytes first and closes the original body.
type replayBody struct {
	io.Reader
	closer io.Closer
}

// Close closes the original request body.
func (b *replayBody) Close() error { return b.closer.Close() }
