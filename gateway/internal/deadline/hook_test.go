package deadline

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/internal/ctxhook"
)

// hookSource is a parent that is a ctxhook.Source, as a request's context on the
// gateway's own server is. It counts its registered hooks.
type hookSource struct {
	context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	hooks  ctxhook.List
	live   int
}

func newHookSource() *hookSource {
	ctx, cancel := context.WithCancel(context.Background())
	return &hookSource{Context: ctx, cancel: cancel}
}

func (s *hookSource) Value(k any) any {
	if k == ctxhook.Key {
		return s
	}
	return s.Context.Value(k)
}

func (s *hookSource) Hook(h *ctxhook.Hook) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err() != nil {
		return false
	}
	s.hooks.Add(h)
	s.live++
	return true
}

func (s *hookSource) Unhook(h *ctxhook.Hook) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	removed := s.hooks.Remove(h)
	if removed {
		s.live--
	}
	return removed
}

func (s *hookSource) end() {
	s.mu.Lock()
	s.cancel()
	first := s.hooks.Take()
	s.live = 0
	s.mu.Unlock()
	ctxhook.Run(first)
}

func (s *hookSource) registered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live
}

func TestDoneFollowsAHookSourceParent(t *testing.T) {
	parent := newHookSource()
	c := New(context.WithValue(parent, struct{}{}, 1), time.Hour, errInner)
	done := c.Done()
	if parent.registered() != 1 {
		t.Fatalf("%d hooks registered with the parent, want 1", parent.registered())
	}
	parent.end()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Done never closed once the parent ended")
	}
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("got %v, want the parent's context.Canceled", c.Err())
	}
}

func TestReleaseUnhooksFromTheParent(t *testing.T) {
	parent := newHookSource()
	defer parent.end()
	c := New(parent, time.Hour, errInner)
	c.Done()
	c.Release()
	if parent.registered() != 0 {
		t.Fatal("a released context stays registered with its parent")
	}
	ended := newHookSource()
	ended.end()
	late := New(ended, time.Hour, errInner)
	select {
	case <-late.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a context under an ended parent did not end")
	}
}
