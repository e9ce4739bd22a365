package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// DefaultMaxKeys bounds the buckets a limiter keeps. When more keys are live, a
// least recently used bucket is forgotten (see Local), which lets that key start
// over with a full bucket: the bound trades memory for a little leniency under key
// floods.
const DefaultMaxKeys = 65536

// localShards is how many parts a Local's buckets are split into, each with a lock
// of its own, so that requests of different keys rarely wait for one another.
const localShards = 16

// Local keeps buckets in this process only.
//
// The buckets are split by key into shards, each a least-recently-used cache of its
// share of the keys: when more keys are live than a shard holds, the bucket that
// shard used least recently is forgotten. Taking a token locks the key's shard once,
// to find the bucket, mark it used and take from it, never the whole limiter: one
// lock per request rather than a cache's lock and then a bucket's, since a token
// takes less time than a second lock does.
type Local struct {
	limit Limit
	// rate is limit.Rate(), worked out once rather than divided out on every take.
	rate   float64
	now    func() time.Time
	seed   maphash.Seed
	shards []localShard
}

// localShard is one part of a Local's buckets.
type localShard struct {
	// mu guards buckets and the buckets it holds.
	mu sync.Mutex
	// buckets maps a key to its bucket, least recently used first to go.
	buckets *simplelru.LRU[string, *bucket]
}

// NewLocal returns a limiter that keeps up to maxKeys buckets (DefaultMaxKeys when
// maxKeys is not positive). The limit must be valid.
func NewLocal(limit Limit, maxKeys int) *Local {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	l := &Local{limit: limit, rate: limit.Rate(), now: time.Now, seed: maphash.MakeSeed(),
		shards: make([]localShard, min(localShards, maxKeys))}
	for i := range l.shards {
		// The first maxKeys%shards shards hold one key more, so that they hold
		// maxKeys together.
		size := maxKeys / len(l.shards)
		if i < maxKeys%len(l.shards) {
			size++
		}
		cache, err := simplelru.NewLRU[string, *bucket](size, nil)
		if err != nil {
			panic(err) // Only a non-positive size fails, which is excluded above.
		}
		l.shards[i].buckets = cache
	}
	return l
}

// Take takes one token from key's bucket.
func (l *Local) Take(_ context.Context, key string) Decision {
	return l.TakeAt(key, l.now())
}

// TakeAt takes one token from key's bucket at now, a reading of the clock the
// caller has already made (the request's arrival, say), so that a request reads the
// clock once rather than once more here. A bucket's refills only move forward: a
// token taken at a time before the bucket's last refill is taken from what the
// bucket holds, as it would be by a request that came a moment later.
func (l *Local) TakeAt(key string, now time.Time) Decision {
	shard := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	shard.mu.Lock()
	b, ok := shard.buckets.Get(key)
	if !ok {
		b = newBucket(l.limit, now)
		shard.buckets.Add(key, b)
	}
	d := b.take(l.limit, l.rate, now)
	shard.mu.Unlock()
	return d
}

// Len is the number of keys with a bucket.
func (l *Local) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.buckets.Len()
		s.mu.Unlock()
	}
	return n
}

// Local is given the request's time by callers that have read the clock already.
var _ TimedLimiter = (*Local)(nil)
