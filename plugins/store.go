package plugins

import (
	"io"
	"sync"
)

// Store keeps objects that must outlive configuration versions, such as rate limit
// buckets: a new version that provisions the same key gets the same object, so a
// route edit does not refill every bucket. Objects no version uses any more are
// dropped (and closed, when they are io.Closers) once a version that does not use
// them is in service.
type Store struct {
	mu      sync.Mutex
	round   uint64
	entries map[string]*storeEntry
}

type storeEntry struct {
	value any
	// round is the last provisioning round that used the entry.
	round uint64
}

// NewStore returns an empty Store.
func NewStore() *Store { return &Store{entries: map[string]*storeEntry{}} }

// Begin starts a provisioning round. Every Get until the matching Commit marks its
// entry as used by the new version.
func (s *Store) Begin() {
	s.mu.Lock()
	s.round++
	s.mu.Unlock()
}

// Get returns the object stored under key, creating it with create when there is
// none, and marks it used by the current round.
func (s *Store) Get(key string, create func() any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok {
		e = &storeEntry{value: create()}
		s.entries[key] = e
	}
	e.round = s.round
	return e.value
}

// Commit drops the entries the current round did not use, once its version is in
// service. Entries used by a round that is abandoned (its version failed to compile)
// are kept until a later round commits without them.
func (s *Store) Commit() {
	s.mu.Lock()
	var closers []io.Closer
	for key, e := range s.entries {
		if e.round < s.round {
			delete(s.entries, key)
			if c, ok := e.value.(io.Closer); ok {
				closers = append(closers, c)
			}
		}
	}
	s.mu.Unlock()
	for _, c := range closers {
		_ = c.Close()
	}
}

// Len is the number of stored objects.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}
