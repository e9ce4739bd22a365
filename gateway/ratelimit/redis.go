package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// takeScript takes up to ARGV[3] tokens from the bucket KEYS[1], refilled at ARGV[1]
// tokens per second up to ARGV[2], using the Redis server's clock so that replicas'
// clocks do not matter. It returns the tokens granted, the whole tokens left, and the
// milliseconds until one token is available. The bucket expires once it would be
// full again, so idle keys cost Redis nothing.
var takeScript = redis.NewScript(`
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate / 1000)
end
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) * 1000 / rate) + 1000)
local wait = 0
if tokens < 1 then
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
return {granted, math.floor(tokens), wait}
`)

// fetch asks Redis for up to want tokens of key's bucket.
func (g *Global) fetch(ctx context.Context, key string, want int64) (granted, remaining int64, wait time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, g.opts.Timeout)
	defer cancel()
	limit := g.opts.Limit
	g.redisCalls.Add(1)
	res, err := takeScript.Run(ctx, g.opts.Client, []string{g.redisKey(key)},
		strconv.FormatFloat(limit.Rate(), 'g', -1, 64), limit.Capacity(), want).Int64Slice()
	if err != nil {
		return 0, 0, 0, err
	}
	if len(res) != 3 {
		return 0, 0, 0, fmt.Errorf("rate limit script returned %d values, want 3", len(res))
	}
	return res[0], res[1], time.Duration(res[2]) * time.Millisecond, nil
}

// markDown switches to the failure mode and starts probing Redis until it answers.
func (g *Global) markDown() {
	g.down.Store(true)
	if !g.probing.CompareAndSwap(false, true) {
		return
	}
	go g.probe()
}

// probe pings Redis until it answers, then leaves the failure mode. Leases taken
// before the outage are dropped: the shared buckets may have been lost with Redis.
func (g *Global) probe() {
	ticker := time.NewTicker(DefaultProbeEvery)
	defer ticker.Stop()
	for {
		select {
		case <-g.stop:
			g.probing.Store(false)
			return
		case <-ticker.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), g.opts.Timeout*4)
		err := g.opts.Client.Ping(ctx).Err()
		cancel()
		if err == nil {
			g.leases.Purge()
			// Probing ends before the failure mode does: a failure in between then
			// starts a new prober, and nothing can stay down without one.
			g.probing.Store(false)
			g.down.Store(false)
			return
		}
	}
}

// degraded decides while Redis is unreachable, as the failure mode says.
func (g *Global) degraded(ctx context.Context, key string) Decision {
	limit := g.opts.Limit
	switch g.opts.FailureMode {
	case FailAllow:
		return Decision{Allowed: true, Limit: limit.Capacity(), Remaining: limit.Capacity()}
	case FailDeny:
		return Decision{Limit: limit.Capacity(), RetryAfter: time.Second, Reset: time.Second}
	default:
		return g.fallback.Take(ctx, key)
	}
}

// fallbackLimiter enforces a replica's share of the limit locally. The share follows
// the number of live replicas; when it changes, the buckets start over.
type fallbackLimiter struct {
	limit    Limit
	replicas func() int

	mu     sync.Mutex
	shares int
	local  *Local
}

// NewReplicaShare returns a Limiter that enforces, in this replica alone, its share
// of a limit that replicas divide among themselves: the limit divided by what
// replicas returns (nil means one) at each request, so that the share follows the
// fleet as the replica learns its size.
func NewReplicaShare(limit Limit, replicas func() int) Limiter {
	return &fallbackLimiter{limit: limit, replicas: replicas}
}

func (f *fallbackLimiter) Take(ctx context.Context, key string) Decision {
	n := 1
	if f.replicas != nil {
		n = max(1, f.replicas())
	}
	f.mu.Lock()
	if f.local == nil || f.shares != n {
		f.local, f.shares = NewLocal(f.limit.Scaled(n), 0), n
	}
	local := f.local
	f.mu.Unlock()
	return local.Take(ctx, key)
}
