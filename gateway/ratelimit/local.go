package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
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
// shard used least recently is forgotten. Taking a token locks the key's shard (to
// find the bucket and mark it used) and then its bucket, never the whole limiter.
type Local struct {
	limit  Limit
	now    func() time.Time
	seed   maphash.Seed
	shards []localShard
}

// localShard is one part of a Local's buckets.
type localShard struct {
	// buckets maps a key to its *lockedBucket.
	buckets *lru.Cache[string, *lockedBucket]
	// create serialises the creation of buckets, so that two first requests of a key
	// share one bucket.
	create sync.Mutex
}

type lockedBucket struct {
	mu sync.Mutex
	bucket
}

// NewLocal returns a limiter that keeps up to maxKeys buckets (DefaultMaxKeys when
// maxKeys is not positive). The limit must be valid.
func NewLocal(limit Limit, maxKeys int) *Local {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	l := &Local{limit: limit, now: time.Now, seed: maphash.MakeSeed(), shards: make([]localShard, min(localShards, maxKeys))}
	for i := range l.shards {
		// The first maxKeys%shards shards hold one key more, so that they hold
		// maxKeys together.
		size := maxKeys / len(l.shards)
		if i < maxKeys%len(l.shards) {
			size++
		}
		cache, err := lru.New[string, *lockedBucket](size)
		if err != nil {
			panic(err) // Only a non-positive size fails, which is excluded above.
		}
		l.shards[i].buckets = cache
	}
	return l
}

// Take takes one token from key's bucket.
func (l *Local) Take(_ context.Context, key string) Decision {
	now := l.now()
	b := l.bucketFor(key, now)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.take(l.limit, now)
}

func (l *Local) bucketFor(key string, now time.Time) *lockedBucket {
	shard := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	if b, ok := shard.buckets.Get(key); ok {
		return b
	}
	shard.create.Lock()
	defer shard.create.Unlock()
	if b, ok := shard.buckets.Get(key); ok {
		return b
	}
	b := &lockedBucket{bucket: *newBucket(l.limit, now)}
	shard.buckets.Add(key, b)
	return b
}

// Len is the number of keys with a bucket.
func (l *Local) Len() int {
	n := 0
	for i := range l.shards {
		n += l.shards[i].buckets.Len()
	}
	return n
}
