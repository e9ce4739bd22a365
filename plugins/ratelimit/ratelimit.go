// Package ratelimit implements the RateLimit filter: token buckets per key, kept by
// each replica (Local) or shared through Redis (Global), with the RateLimit-* response
// headers and 429 answers carrying Retry-After.
package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
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
// timed is the limiter when it can be given the request's time, nil otherwise.
type rule struct {
	key     config.RateLimitKey
	limiter rl.Limiter
	timed   rl.TimedLimiter
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
		rules[i] = rule{key: r.Key, limiter: limiter, timed: timed}
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

type handler struct {
	next  http.Handler
	rules []rule
	ctx   plugins.Context
}

// ServeHTTP answers 429 when a rule's bucket is empty, and passes the request on
// otherwise. The decision is flagged in the request's Info, for the data plane's
// rate limit metrics and access log.
//
// A local bucket counts the request at its arrival, the Info's Start, rather than
// at a reading of the clock of its own: the data plane reads the clock when the
// request arrives anyway, and a reading costs more than the token. The Info is
// looked up once, for the keys, the time and the flags.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := reqctx.From(r.Context())
	var now time.Time
	var tightest rl.Decision
	for i, rule := range h.rules {
		key := h.keyOf(rule.key, r, info)
		var d rl.Decision
		if rule.timed != nil {
			if now.IsZero() {
				now = arrival(info)
			}
			d = rule.timed.TakeAt(key, now)
		} else {
			d = rule.limiter.Take(r.Context(), key)
		}
		if !d.Allowed {
			addFlags(info, reqctx.FlagRateLimited)
			writeHeaders(w.Header(), d)
			w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(d.RetryAfter, 1)))
			http.Error(w, "rate limit exceeded", http.StatusTooManyRequests)
			return
		}
		if i == 0 || d.Remaining < tightest.Remaining {
			tightest = d
		}
	}
	writeHeaders(w.Header(), tightest)
	addFlags(info, reqctx.FlagRateLimitPassed)
	h.next.ServeHTTP(w, r)
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

// keyOf returns the bucket key of a request, whose Info is info (nil when it has
// none). Requests without the header of a Header key share the bucket of the empty
// value, so leaving the header out is no way around the limit.
func (h *handler) keyOf(k config.RateLimitKey, r *http.Request, info *reqctx.Info) string {
	switch k.Type {
	case config.KeyClientIP:
		return clientip.From(r, h.ctx.TrustedProxies)
	case config.KeyHeader:
		return "h=" + r.Header.Get(k.Name)
	case config.KeyCaller:
		if info != nil && info.Caller.Known() {
			return "c=" + info.Caller.Namespace + "/" + info.Caller.Workload
		}
		return clientip.From(r, h.ctx.TrustedProxies)
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
	hv := new(headerValues)
	b := strconv.AppendInt(hv.digits[:0], d.Limit, 10)
	limitEnd := len(b)
	b = strconv.AppendInt(b, max(d.Remaining, 0), 10)
	remainingEnd := len(b)
	b = strconv.AppendInt(b, int64(ceilSeconds(d.Reset, 0)), 10)
	// The digits hold the values of limits below ten billion requests; longer ones
	// make AppendInt move b to a new array, which nothing writes to either.
	numbers := unsafe.String(unsafe.SliceData(b), len(b))
	hv.values = [3]string{numbers[:limitEnd], numbers[limitEnd:remainingEnd], numbers[remainingEnd:]}
	// Each header gets a capped slice of the array, so that an append copies.
	h[limitHeader] = hv.values[0:1:1]
	h[remainingHeader] = hv.values[1:2:2]
	h[resetHeader] = hv.values[2:3:3]
}

func ceilSeconds(d time.Duration, least int) int {
	return max(least, int(math.Ceil(d.Seconds())))
}
