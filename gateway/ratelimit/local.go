package ratelimit

import (
	"context"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultMaxKeys bounds the buckets a limiter keeps. When more keys are live, the
// least recently used bucket is forgotten, which lets that key start over with a full
// bucket: the bound trades memory for a little leniency under key floods.
const DefaultMaxKeys = 65536

// Local keeps buckets in this process only.
type Local struct {
	limit Limit
	now   func() time.Time
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
	cache, err := lru.New[string, *lockedBucket](maxKeys)
	if err != nil {
		panic(err) // Only a non-positive size fails, which is excluded above.
	}
	return &Local{limit: limit, now: time.Now, buckets: cache}
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
	if b, ok := l.buckets.Get(key); ok {
		return b
	}
	l.create.Lock()
	defer l.create.Unlock()
	if b, ok := l.buckets.Get(key); ok {
		return b
	}
	b := &lockedBucket{bucket: *newBucket(l.limit, now)}
	l.buckets.Add(key, b)
	return b
}

// Len is the number of keys with a bucket.
func (l *Local) Len() int { return l.buckets.Len() }
