// Package ratelimit implements token-bucket rate limits, kept per key either by each
// replica alone (Local) or shared by all replicas through Redis (Global).
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Limit is one rate limit: Requests per Per, with Burst more allowed at once. The
// bucket holds Requests+Burst tokens, starts full, and refills at Requests per Per.
type Limit struct {
	// Requests is how many requests the bucket refills per Per.
	Requests int64
	// Per is the refill period.
	Per time.Duration
	// Burst is how many requests beyond Requests the bucket holds.
	Burst int64
}

// Validate reports a limit that cannot be enforced.
func (l Limit) Validate() error {
	switch {
	case l.Requests <= 0:
		return fmt.Errorf("requests must be positive, not %d", l.Requests)
	case l.Per <= 0:
		return errors.New("per must be a positive duration")
	case l.Burst < 0:
		return fmt.Errorf("burst must not be negative, not %d", l.Burst)
	}
	return nil
}

// Capacity is the number of tokens a full bucket holds.
func (l Limit) Capacity() int64 { return l.Requests + l.Burst }

// Rate is the refill rate in tokens per second.
func (l Limit) Rate() float64 { return float64(l.Requests) / l.Per.Seconds() }

// Scaled returns the limit divided among n replicas, never below one request per
// period, for replicas that enforce a share of a shared limit on their own.
func (l Limit) Scaled(n int) Limit {
	if n <= 1 {
		return l
	}
	out := l
	out.Requests = max(1, l.Requests/int64(n))
	out.Burst = l.Burst / int64(n)
	return out
}

// Decision is the outcome of taking a token.
type Decision struct {
	// Allowed says whether the request may proceed.
	Allowed bool
	// Limit is the bucket's capacity (the RateLimit-Limit header).
	Limit int64
	// Remaining is the number of whole tokens left (the RateLimit-Remaining header).
	Remaining int64
	// Reset is the time until the bucket is full again (the RateLimit-Reset header).
	Reset time.Duration
	// RetryAfter is, for a denied request, the time until a token is available.
	RetryAfter time.Duration
}

// Limiter takes tokens from per-key buckets.
type Limiter interface {
	// Take takes one token from key's bucket.
	Take(ctx context.Context, key string) Decision
}

// TimedLimiter is a Limiter that can be given the time of the request rather than
// read the clock itself, for callers that have read it already: a clock reading
// costs more than a token does (Local).
type TimedLimiter interface {
	Limiter
	// TakeAt takes one token from key's bucket at now.
	TakeAt(key string, now time.Time) Decision
}

// bucket is a token bucket's state. Its methods need the caller to serialise access.
type bucket struct {
	tokens float64
	last   time.Time
}

// newBucket returns a full bucket.
func newBucket(l Limit, now time.Time) *bucket {
	return &bucket{tokens: float64(l.Capacity()), last: now}
}

// refill adds the tokens earned since the last refill; rate is l.Rate().
func (b *bucket) refill(l Limit, rate float64, now time.Time) {
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = math.Min(float64(l.Capacity()), b.tokens+elapsed.Seconds()*rate)
		b.last = now
	}
}

// take takes one token if there is one and describes the result. rate is l.Rate(),
// which the caller works out once for all its buckets.
func (b *bucket) take(l Limit, rate float64, now time.Time) Decision {
	b.refill(l, rate, now)
	d := Decision{Limit: l.Capacity()}
	if b.tokens >= 1 {
		b.tokens--
		d.Allowed = true
	} else {
		d.RetryAfter = tokensTime(1-b.tokens, rate)
	}
	d.Remaining = int64(b.tokens)
	d.Reset = tokensTime(float64(l.Capacity())-b.tokens, rate)
	return d
}

// tokensTime is how long a bucket refilling at rate tokens per second takes to earn
// n tokens, rounded up to a millisecond.
func tokensTime(n float64, rate float64) time.Duration {
	if n <= 0 {
		return 0
	}
	d := time.Duration(n / rate * float64(time.Second))
	return d.Truncate(time.Millisecond) + time.Millisecond
}
