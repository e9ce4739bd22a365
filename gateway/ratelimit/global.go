package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"
)

// FailureMode says what a Global limiter does while Redis cannot be reached.
type FailureMode string

const (
	// FailLocalFallback enforces the limit divided by the live replicas, per replica.
	FailLocalFallback FailureMode = "LocalFallback"
	// FailAllow admits every request.
	FailAllow FailureMode = "Allow"
	// FailDeny answers every request with 429.
	FailDeny FailureMode = "Deny"
)

// Defaults of GlobalOptions.
const (
	DefaultRedisTimeout = 50 * time.Millisecond
	DefaultLeaseWindow  = 50 * time.Millisecond
	DefaultLeaseTTL     = time.Second
	DefaultProbeEvery   = 500 * time.Millisecond
)

// GlobalOptions configure a Global limiter.
type GlobalOptions struct {
	// Client is the Redis client, shared by all limiters of a replica.
	Client redis.UniversalClient
	// Limit is the limit all replicas share.
	Limit Limit
	// Prefix names the policy; it starts every Redis key of this limiter.
	Prefix string
	// FailureMode applies while Redis is unreachable; LocalFallback when empty.
	FailureMode FailureMode
	// Replicas returns how many replicas share the limit, for LocalFallback. Nil
	// means one (standalone).
	Replicas func() int
	// Timeout bounds one Redis call; DefaultRedisTimeout when zero.
	Timeout time.Duration
	// LeaseWindow sizes token leases: a replica takes at most the tokens the limit
	// refills in this window at once. DefaultLeaseWindow when zero.
	LeaseWindow time.Duration
	// LeaseTTL is how long leased tokens stay usable; unused ones are dropped.
	// DefaultLeaseTTL when zero.
	LeaseTTL time.Duration
	// MaxKeys bounds the leases kept; DefaultMaxKeys when zero.
	MaxKeys int
}

// Global shares one token bucket per key among all replicas through Redis. To avoid
// a Redis round trip per request, a replica leases tokens in batches of at most
// MaxBatch and spends them locally. Tokens are taken from Redis before they are
// spent, so replicas never admit more than Redis granted; the only excess over an
// exact shared bucket is the leased tokens not yet spent at the start of an
// interval. A replica holds at most two leases' worth (a background refill may land
// on a lease not yet spent), so in any interval of length T, admitted <= Capacity +
// Rate*T + 2*replicas*MaxBatch. Leased tokens unspent after LeaseTTL, or dropped with
// an evicted key or after a Redis outage, are lost, which can only admit less.
type Global struct {
	opts     GlobalOptions
	maxBatch int64
	now      func() time.Time
	leases   *lru.Cache[string, *lease]
	create   sync.Mutex
	fallback fallbackLimiter

	// redisCalls counts the scripts run, to show that leases save round trips.
	redisCalls atomic.Int64

	// down is set while Redis is unreachable; a prober clears it.
	down    atomic.Bool
	probing atomic.Bool
	stop    chan struct{}
	stopped sync.Once
}

// lease is the tokens this replica holds for one key.
type lease struct {
	mu sync.Mutex
	// tokens are leased and not yet spent; usable until expires.
	tokens  int64
	expires time.Time
	// remaining is the shared bucket's level after the last grant.
	remaining int64
	// deniedUntil is when the shared bucket may have a token again, after Redis
	// granted none; until then requests are denied without asking Redis.
	deniedUntil time.Time
	// spent counts tokens spent since windowStart, to size the next lease.
	spent       int64
	windowStart time.Time
	fetching    bool
}

// NewGlobal returns a Global limiter. Call Close when it is no longer used.
func NewGlobal(opts GlobalOptions) *Global {
	if opts.FailureMode == "" {
		opts.FailureMode = FailLocalFallback
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultRedisTimeout
	}
	if opts.LeaseWindow <= 0 {
		opts.LeaseWindow = DefaultLeaseWindow
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	cache, err := lru.New[string, *lease](opts.MaxKeys)
	if err != nil {
		panic(err) // Only a non-positive size fails, which is excluded above.
	}
	g := &Global{opts: opts, now: time.Now, leases: cache, stop: make(chan struct{})}
	g.maxBatch = min(opts.Limit.Capacity(), max(1, int64(opts.Limit.Rate()*opts.LeaseWindow.Seconds())))
	g.fallback = fallbackLimiter{limit: opts.Limit, replicas: opts.Replicas}
	return g
}

// MaxBatch is the most tokens one replica leases at once.
func (g *Global) MaxBatch() int64 { return g.maxBatch }

// RedisCalls is the number of token requests sent to Redis so far.
func (g *Global) RedisCalls() int64 { return g.redisCalls.Load() }

// Degraded reports whether Redis is currently unreachable.
func (g *Global) Degraded() bool { return g.down.Load() }

// Close stops the background work of the limiter. It is an io.Closer so that the
// plugin store closes limiters that no configuration uses any more.
func (g *Global) Close() error {
	g.stopped.Do(func() { close(g.stop) })
	return nil
}

// Take takes one token from key's shared bucket.
func (g *Global) Take(ctx context.Context, key string) Decision {
	if g.down.Load() {
		return g.degraded(ctx, key)
	}
	now := g.now()
	l := g.leaseFor(key, now)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tokens > 0 && now.Before(l.expires) {
		return g.spend(l, key, now)
	}
	if now.Before(l.deniedUntil) {
		return g.denied(l, l.deniedUntil.Sub(now))
	}
	// The client going away must not look like Redis failing: the call is bounded
	// by its own timeout, not by the request.
	granted, remaining, wait, err := g.fetch(context.WithoutCancel(ctx), key, g.leaseSize(l, now))
	if err != nil {
		g.markDown()
		return g.degraded(ctx, key)
	}
	l.remaining = remaining
	if granted == 0 {
		l.tokens = 0
		l.deniedUntil = now.Add(g.pause(wait))
		return g.denied(l, l.deniedUntil.Sub(now))
	}
	l.tokens, l.expires = granted, now.Add(g.opts.LeaseTTL)
	return g.spend(l, key, now)
}

// spend spends one leased token, and leases more in the background when the lease
// runs low. l.mu is held.
func (g *Global) spend(l *lease, key string, now time.Time) Decision {
	l.tokens--
	l.spent++
	// Below one token per lease window there is nothing to batch: a replica asks
	// Redis per request (at most the limit's rate), and holds no spare token that
	// another replica might need.
	if g.maxBatch > 1 && l.tokens*2 < g.leaseSize(l, now) && !l.fetching && !now.Before(l.deniedUntil) {
		l.fetching = true
		go g.prefetch(key, l)
	}
	remaining := l.remaining + l.tokens
	limit := g.opts.Limit
	return Decision{Allowed: true, Limit: limit.Capacity(), Remaining: remaining,
		Reset: tokensTime(float64(limit.Capacity()-remaining), limit.Rate())}
}

func (g *Global) denied(l *lease, wait time.Duration) Decision {
	limit := g.opts.Limit
	return Decision{Limit: limit.Capacity(), RetryAfter: wait, Reset: tokensTime(float64(limit.Capacity()-l.remaining), limit.Rate())}
}

// pause is how long to stop asking Redis after it granted less than asked, given the
// time until its bucket has a token again. Asking again sooner would cost a round trip
// per token while the limit is saturated; tokens earned meanwhile stay in the shared
// bucket, so the pause does not lower the rate admitted, unless the bucket fills up
// within half a lease window (a capacity below Rate*LeaseWindow/2).
func (g *Global) pause(wait time.Duration) time.Duration {
	return max(wait, g.opts.LeaseWindow/2)
}

// leaseSize is how many tokens to ask for: what this replica spent for the key in
// about one lease window, at least one and at most MaxBatch. l.mu is held.
func (g *Global) leaseSize(l *lease, now time.Time) int64 {
	elapsed := now.Sub(l.windowStart)
	if elapsed <= 0 {
		return 1
	}
	want := int64(float64(l.spent) * g.opts.LeaseWindow.Seconds() / elapsed.Seconds())
	if elapsed > 4*g.opts.LeaseWindow {
		// Start a new measurement window, keeping a little history.
		l.spent, l.windowStart = l.spent/4, now.Add(-g.opts.LeaseWindow)
	}
	return min(g.maxBatch, max(1, want))
}

// prefetch leases more tokens for key without holding up a request.
func (g *Global) prefetch(key string, l *lease) {
	l.mu.Lock()
	want := g.leaseSize(l, g.now())
	l.mu.Unlock()
	granted, remaining, wait, err := g.fetch(context.Background(), key, want)
	now := g.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fetching = false
	if err != nil {
		g.markDown()
		return
	}
	l.remaining = remaining
	if granted < want {
		l.deniedUntil = now.Add(g.pause(wait))
	}
	if granted > 0 {
		if !now.Before(l.expires) {
			l.tokens = 0
		}
		l.tokens += granted
		l.expires = now.Add(g.opts.LeaseTTL)
	}
}

func (g *Global) leaseFor(key string, now time.Time) *lease {
	if l, ok := g.leases.Get(key); ok {
		return l
	}
	g.create.Lock()
	defer g.create.Unlock()
	if l, ok := g.leases.Get(key); ok {
		return l
	}
	l := &lease{windowStart: now}
	g.leases.Add(key, l)
	return l
}

// redisKey names key's bucket. Long keys (header values are chosen by clients) are
// hashed, so a client cannot make Redis store large keys.
func (g *Global) redisKey(key string) string {
	if len(key) > 64 {
		sum := sha256.Sum256([]byte(key))
		key = "h:" + hex.EncodeToString(sum[:16])
	}
	return "sy:rl:" + g.opts.Prefix + ":" + key
}
