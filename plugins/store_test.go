package plugins

import (
	"testing"
)

type closeCounter struct{ closed *int }

func (c closeCounter) Close() error { *c.closed++; return nil }

func TestStoreKeepsWhatTheNewVersionUses(t *testing.T) {
	s := NewStore()
	closed := 0
	newCounter := func() any { return closeCounter{&closed} }
	s.Begin()
	a := s.Get("a", newCounter)
	s.Get("b", newCounter)
	s.Commit()
	// The next version uses only "a": it gets the same object, and "b" goes.
	s.Begin()
	if again := s.Get("a", func() any { t.Fatal("a was created again"); return nil }); again != a {
		t.Fatal("a different object for the same key")
	}
	s.Commit()
	if s.Len() != 1 || closed != 1 {
		t.Fatalf("%d entries, %d closed; want 1 and 1", s.Len(), closed)
	}
	// An abandoned round (its version failed) drops nothing.
	s.Begin()
	s.Begin()
	s.Get("a", newCounter)
	s.Commit()
	if s.Len() != 1 {
		t.Fatalf("%d entries after a round that used a; want 1", s.Len())
	}
}

func TestSharedWithoutStoreCreates(t *testing.T) {
	n := 0
	var c Context
	c.Shared("k", func() any { n++; return n })
	c.Shared("k", func() any { n++; return n })
	if n != 2 {
		t.Fatalf("created %d times; without a Store each call creates", n)
	}
}
