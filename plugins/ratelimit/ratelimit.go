// Package ratelimit implements the RateLimit filter: token buckets per key, kept by
// each replica (Local) or shared through Redis (Global), with the RateLimit-* response
// headers and 429 answers carrying Retry-After.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/net/http/httpguts"

	"github.com/switchyard-dev/switchyard/gateway/config"
	rl "github.com/switchyard-dev/switchyard/gateway/ratelimit"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
	"github.com/switchyard-dev/switchyard/plugins"
	"github.com/switchyard-dev/switchyard/plugins/internal/clientip"
)

func init() { plugins.Register(config.FilterRateLimit, plugin{}) }

// maxRules bounds the rules of one filter, which each cost a bucket per request.
const maxRules = 8

type plugin struct{}

// Validate checks the rate limit settings.
func (plugin) Validate(spec *config.Filter) error {
	c := spec.RateLimit
	if c == nil {
		return errors.New("settings are missing")
	}
	if c.ID == "" {
		return errors.New("id is empty")
	}
	switch c.Mode {
	case config.RateLimitLocal, config.RateLimitGlobal:
	default:
		return fmt.Errorf("mode %q is not Local or Global", c.Mode)
	}
	switch rl.FailureMode(c.FailureMode) {
	case "", rl.FailLocalFallback, rl.FailAllow, rl.FailDeny:
	default:
		return fmt.Errorf("failureMode %q is not LocalFallback, Allow or Deny", c.FailureMode)
	}
	if len(c.Rules) == 0 || len(c.Rules) > maxRules {
		return fmt.Errorf("%d rules; want 1 to %d", len(c.Rules), maxRules)
	}
	for i, r := range c.Rules {
		if err := (rl.Limit{Requests: r.Requests, Per: r.Per.D(), Burst: r.Burst}).Validate(); err != nil {
			return fmt.Errorf("rules[%d]: %w", i, err)
		}
		switch r.Key.Type {
		case config.KeyClientIP, config.KeyRoute, config.KeyCaller:
		case config.KeyHeader:
			if !httpguts.ValidHeaderFieldName(r.Key.Name) {
				return fmt.Errorf("rules[%d]: header name %q is not valid", i, r.Key.Name)
			}
		default:
			return fmt.Errorf("rules[%d]: key type %q is not ClientIP, Header, Route or Caller", i, r.Key.Type)
		}
	}
	return nil
}

// rule is one compiled rule: how to key a request and the limiter of its buckets.
// header is the canonical name of a Header key's header, worked out once so that
// neither form of a request canonicalises it again. timed is the limiter when it
// can be given the request's time, nil otherwise.
type rule struct {
	keyType config.RateLimitKeyType
	header  string
	limiter rl.Limiter
	timed   rl.TimedLimiter
	// limitLine is the RateLimit-Limit field line of the bucket's capacity, rendered
	// for the last capacity a raw response gave. A capacity changes rarely if ever:
	// a global limit's share may follow the fleet's size.
	limitLine *atomic.Pointer[renderedField]
}

// renderedField is a header field line in its wire form and the number it gives.
type renderedField struct {
	value int64
	line  string
}

// Provision builds the middleware. Limiters come from the context's Store, keyed by
// the policy, rule and settings, so that buckets survive configuration versions.
func (plugin) Provision(ctx plugins.Context, spec *config.Filter) (plugins.Middleware, error) {
	c := spec.RateLimit
	if c.Mode == config.RateLimitGlobal && ctx.Redis == nil && ctx.Logger != nil {
		ctx.Logger.Warn("global rate limit without Redis: each replica enforces its share", "policy", c.ID)
	}
	rules := make([]rule, len(c.Rules))
	for i, r := range c.Rules {
		limit := rl.Limit{Requests: r.Requests, Per: r.Per.D(), Burst: r.Burst}
		storeKey := fmt.Sprintf("ratelimit/%s/%s/%d/%s/%s/%d/%v/%d", c.ID, c.Mode, i, r.Key.Type, r.Key.Name, r.Requests, r.Per.D(), r.Burst)
		if c.Mode == config.RateLimitGlobal {
			storeKey += "/" + c.FailureMode
		}
		limiter := ctx.Shared(storeKey, func() any { return newLimiter(ctx, c, i, limit) }).(rl.Limiter)
		timed, _ := limiter.(rl.TimedLimiter)
		rules[i] = rule{keyType: r.Key.Type, limiter: limiter, timed: timed, limitLine: new(atomic.Pointer[renderedField])}
		if r.Key.Type == config.KeyHeader {
			rules[i].header = http.CanonicalHeaderKey(r.Key.Name)
		}
	}
	return func(next http.Handler) http.Handler {
		return &handler{next: next, rules: rules, ctx: ctx}
	}, nil
}

func newLimiter(ctx plugins.Context, c *config.RateLimit, index int, limit rl.Limit) rl.Limiter {
	if c.Mode == config.RateLimitLocal {
		return rl.NewLocal(limit, 0)
	}
	if ctx.Redis == nil {
		// Without Redis each replica enforces its share, as LocalFallback would. The
		// share is looked up per request: a replica learns the fleet's size only after
		// its first configuration is applied.
		return rl.NewReplicaShare(limit, ctx.Replicas)
	}
	return rl.NewGlobal(rl.GlobalOptions{Client: ctx.Redis, Limit: limit, Prefix: c.ID + ":" + strconv.Itoa(index),
		FailureMode: rl.FailureMode(c.FailureMode), Replicas: ctx.Replicas})
}

// handler is the filter's handler. It is a plugins.RawStage: the data plane gives
// it a request either as an http.Request (ServeHTTP) or in its wire form
// (FilterRaw), and both forms take their tokens from the same buckets through
// decide, so a client cannot get more by having its requests served one way.
type handler struct {
	next  http.Handler
	rules []rule
	ctx   plugins.Context
}

var _ plugins.RawStage = (*handler)(nil)

// refusalMessage is the text of a 429 answer, which ServeHTTP writes with
// http.Error and FilterRaw with refusal.
const refusalMessage = "rate limit exceeded"

// refusal is FilterRaw's answer to a request a rule refuses: what http.Error
// writes for refusalMessage (it adds a newline). It is shared by every refusal,
// so that refusing costs no allocation; nothing may change it.
var refusal = plugins.Answer{Status: http.StatusTooManyRequests, Body: refusalMessage + "\n"}

// ServeHTTP answers 429 when a rule's bucket is empty, and passes the request on
// otherwise. The decision is flagged in the request's Info, for the data plane's
// rate limit metrics and access log. The Info is looked up once, for the keys, the
// time and the flags.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := reqctx.From(r.Context())
	client := func() string { return clientip.From(r, h.ctx.TrustedProxies) }
	d, _ := h.decide(r.Context(), client, r.Header.Get, info)
	writeHeaders(w.Header(), d)
	if !d.Allowed {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(d)))
		http.Error(w, refusalMessage, http.StatusTooManyRequests)
		return
	}
	h.next.ServeHTTP(w, r)
}

// FilterRaw does to a request in its wire form what ServeHTTP does to an
// http.Request: it takes the same tokens, flags the same decision in info and sets
// the same RateLimit-* fields, and refuses with the same 429 answer. A raw request
// never carries X-Forwarded-For, so its client is its TCP peer, whom From would
// name too.
func (h *handler) FilterRaw(req plugins.RawRequest, info *reqctx.Info, fields *plugins.ResponseFields) *plugins.Answer {
	client := func() string { return req.RemoteIP() }
	d, by := h.decide(req.Context(), client, req.HeaderValue, info)
	limit, remaining, reset := headerNumbers(d)
	if by != nil {
		fields.SetLines(by.limitFieldLine(limit))
	} else {
		fields.SetInt(limitHeader, limit)
	}
	fields.SetInt(remainingHeader, remaining)
	if reset < int64(len(resetLines)) {
		fields.SetLines(resetLines[reset])
	} else {
		fields.SetInt(resetHeader, reset)
	}
	if !d.Allowed {
		fields.SetInt("Retry-After", int64(retryAfterSeconds(d)))
		return &refusal
	}
	return nil
}

// limitFieldLine returns the RateLimit-Limit field line of limit, rendered once for
// as long as the rule's capacity stays limit rather than on every response.
func (r *rule) limitFieldLine(limit int64) string {
	if f := r.limitLine.Load(); f != nil && f.value == limit {
		return f.line
	}
	f := &renderedField{value: limit, line: limitHeader + ": " + strconv.FormatInt(limit, 10) + "\r\n"}
	r.limitLine.Store(f)
	return f.line
}

// resetLines are the RateLimit-Reset field lines of the first few seconds, which
// nearly every response gives.
var resetLines = func() (lines [10]string) {
	for i := range lines {
		lines[i] = resetHeader + ": " + strconv.Itoa(i) + "\r\n"
	}
	return lines
}()

// Next is the handler ServeHTTP passes admitted requests on to.
func (h *handler) Next() http.Handler { return h.next }

// decide takes a token for the request from each rule's bucket in turn, flags the
// outcome in info (nil when the request has none), and returns the decision the
// response describes and the rule that made it (nil when there is none): the first
// refusal, or else the admission with the fewest tokens left. The request is given
// by the pieces its keys read (see keyOf), so that both of its forms are decided by
// this one function.
//
// A local bucket counts the request at its arrival, the Info's Start, rather than
// at a reading of the clock of its own: the data plane reads the clock when the
// request arrives anyway, and a reading costs more than the token.
func (h *handler) decide(ctx context.Context, client func() string, header func(string) string, info *reqctx.Info) (rl.Decision, *rule) {
	var now time.Time
	var tightest rl.Decision
	var by *rule
	for i := range h.rules {
		rule := &h.rules[i]
		key := keyOf(rule, client, header, info)
		var d rl.Decision
		if rule.timed != nil {
			if now.IsZero() {
				now = arrival(info)
			}
			d = rule.timed.TakeAt(key, now)
		} else {
			d = rule.limiter.Take(ctx, key)
		}
		if !d.Allowed {
			addFlags(info, reqctx.FlagRateLimited)
			return d, rule
		}
		if i == 0 || d.Remaining < tightest.Remaining {
			tightest, by = d, rule
		}
	}
	addFlags(info, reqctx.FlagRateLimitPassed)
	// Every rule admitted the request. Validate makes sure there is a rule, so
	// tightest is an admission already; this keeps a filter without rules, as
	// ServeHTTP always did, from refusing everything.
	tightest.Allowed = true
	return tightest, by
}

// arrival is when the request arrived: its Info's Start, or now for a request
// without one (served outside the data plane).
func arrival(info *reqctx.Info) time.Time {
	if info != nil && !info.Start.IsZero() {
		return info.Start
	}
	return time.Now()
}

// addFlags adds flags to the request's Info, if it has one.
func addFlags(info *reqctx.Info, f reqctx.Flags) {
	if info != nil {
		info.Flags |= f
	}
}

// keyOf returns the bucket key of a request under rule, from the pieces of the
// request that keys read, which both of its forms can give: client returns the
// client's address (called only by the keys that need it, since finding it costs
// a parse), header returns the first value of the header of a canonical name, and
// info is the request's Info (nil when it has none). Requests without the header
// of a Header key share the bucket of the empty value, so leaving the header out
// is no way around the limit.
func keyOf(rule *rule, client func() string, header func(canonicalName string) string, info *reqctx.Info) string {
	switch rule.keyType {
	case config.KeyClientIP:
		return client()
	case config.KeyHeader:
		return "h=" + header(rule.header)
	case config.KeyCaller:
		if info != nil && info.Caller.Known() {
			return "c=" + info.Caller.Namespace + "/" + info.Caller.Workload
		}
		return client()
	default:
		return "route"
	}
}

// The names of the RateLimit-* headers as http.Header keeps them, worked out once.
var (
	limitHeader     = http.CanonicalHeaderKey("RateLimit-Limit")
	remainingHeader = http.CanonicalHeaderKey("RateLimit-Remaining")
	resetHeader     = http.CanonicalHeaderKey("RateLimit-Reset")
)

// headerValues is where the values of one response's RateLimit-* headers are kept:
// the three strings and the digits they are made of, in one allocation of 80 bytes
// where a string and an array took two.
type headerValues struct {
	values [3]string
	digits [32]byte
}

// writeHeaders sets the RateLimit-Limit, -Remaining and -Reset headers (reset in
// whole seconds, rounded up). They run on every request of a limited route, so the
// three values share one allocation with the digits they are made of: the digits
// are never written again once the strings are made of them, which keeps the
// strings immutable.
func writeHeaders(h http.Header, d rl.Decision) {
	limit, remaining, reset := headerNumbers(d)
	hv := new(headerValues)
	b := strconv.AppendInt(hv.digits[:0], limit, 10)
	limitEnd := len(b)
	b = strconv.AppendInt(b, remaining, 10)
	remainingEnd := len(b)
	b = strconv.AppendInt(b, reset, 10)
	// The digits hold the values of limits below ten billion requests; longer ones
	// make AppendInt move b to a new array, which nothing writes to either.
	numbers := unsafe.String(unsafe.SliceData(b), len(b))
	hv.values = [3]string{numbers[:limitEnd], numbers[limitEnd:remainingEnd], numbers[remainingEnd:]}
	// Each header gets a capped slice of the array, so that an append copies.
	h[limitHeader] = hv.values[0:1:1]
	h[remainingHeader] = hv.values[1:2:2]
	h[resetHeader] = hv.values[2:3:3]
}

// headerNumbers returns the values of the RateLimit-Limit, -Remaining and -Reset
// headers that describe d, for both forms of a response: the limit, the whole
// tokens left (never below zero) and the seconds until the bucket is full, rounded
// up.
func headerNumbers(d rl.Decision) (limit, remaining, reset int64) {
	return d.Limit, max(d.Remaining, 0), int64(ceilSeconds(d.Reset, 0))
}

// retryAfterSeconds is the Retry-After value of a refusal: the seconds until a
// token is available, rounded up, and at least one, so that a client never
// retries at once.
func retryAfterSeconds(d rl.Decision) int {
	return ceilSeconds(d.RetryAfter, 1)
}

// ceilSeconds returns d in whole seconds, rounded up, and at least least.
func ceilSeconds(d time.Duration, least int) int {
	return max(least, int(math.Ceil(d.Seconds())))
}
