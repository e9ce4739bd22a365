package ctxhook

import (
	"context"
	"sync"
	"testing"
)

// source is a minimal Source for the tests: it ends on cancel.
type source struct {
	context.Context
	mu    sync.Mutex
	done  chan struct{}
	ended bool
	hooks List
}

func newSource() *source {
	return &source{Context: context.Background(), done: make(chan struct{})}
}

func (s *source) Done() <-chan struct{} { return s.done }
func (s *source) Value(k any) any {
	if k == Key {
		return s
	}
	return s.Context.Value(k)
}
func (s *source) Hook(h *Hook) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.hooks.Add(h)
	return true
}
func (s *source) Unhook(h *Hook) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hooks.Remove(h)
}
func (s *source) cancel() {
	s.mu.Lock()
	s.ended = true
	close(s.done)
	first := s.hooks.Take()
	s.mu.Unlock()
	Run(first)
}

type valueKey struct{}

func TestFindLooksThroughValuesOnly(t *testing.T) {
	s := newSource()
	if Find(s) != s {
		t.Fatal("the source itself is not found")
	}
	withValue := context.WithValue(s, valueKey{}, 1)
	if Find(withValue) != s {
		t.Fatal("the source is not found below a context that only carries a value")
	}
	withCancel, cancel := context.WithCancel(withValue)
	defer cancel()
	if Find(withCancel) != nil {
		t.Fatal("a context that ends on its own is taken for the source")
	}
	if Find(context.Background()) != nil {
		t.Fatal("a source is found where there is none")
	}
}

func TestHooksRunOnceInAnyOrderOfRemoval(t *testing.T) {
	s := newSource()
	runs := make([]int, 4)
	hooks := make([]Hook, 4)
	for i := range hooks {
		hooks[i].Func = func() { runs[i]++ }
		if !s.Hook(&hooks[i]) {
			t.Fatal("a live source refused a hook")
		}
	}
	// Removing the first, a middle and the last registered keeps the list whole.
	for _, i := range []int{0, 2} {
		if !s.Unhook(&hooks[i]) {
			t.Fatalf("hook %d was not registered", i)
		}
		if s.Unhook(&hooks[i]) {
			t.Fatalf("hook %d was removed twice", i)
		}
	}
	s.cancel()
	want := []int{0, 1, 0, 1}
	for i := range runs {
		if runs[i] != want[i] {
			t.Fatalf("runs %v, want %v", runs, want)
		}
	}
	if s.Unhook(&hooks[1]) {
		t.Fatal("a hook that ran reports being still registered")
	}
	if s.Hook(&hooks[0]) {
		t.Fatal("an ended source took a hook")
	}
}

func TestRunLetsAHookRegisterAgain(t *testing.T) {
	first, second := newSource(), newSource()
	var h Hook
	runs := 0
	h.Func = func() {
		runs++
		if runs == 1 && !second.Hook(&h) {
			t.Error("the second source refused the hook")
		}
	}
	other := Hook{Func: func() { runs += 10 }}
	first.Hook(&other)
	first.Hook(&h)
	first.cancel()
	if runs != 11 {
		t.Fatalf("runs %d after the first source ended, want 11", runs)
	}
	second.cancel()
	if runs != 12 {
		t.Fatalf("runs %d after the second source ended, want 12", runs)
	}
}

// wrapper adds nothing to its parent but says so.
type wrapper struct{ context.Context }

func (w wrapper) ValueParent() context.Context { return w.Context }

// doneCounter counts the calls of Done on it.
type doneCounter struct {
	context.Context
	calls int
}

func (d *doneCounter) Done() <-chan struct{} { d.calls++; return d.Context.Done() }

func TestFindPassesWrappersWithoutDone(t *testing.T) {
	s := newSource()
	counted := &doneCounter{Context: wrapper{s}}
	if Find(wrapper{wrapper{s}}) != s {
		t.Fatal("the source is not found through wrappers")
	}
	// A context that is not a Wrapper is passed by the identity of channels.
	if Find(wrapper{counted}) != s || counted.calls != 1 {
		t.Fatalf("found through a plain context with %d calls of its Done, want 1", counted.calls)
	}
	withCancel, cancel := context.WithCancel(s)
	defer cancel()
	if Find(wrapper{withCancel}) != nil {
		t.Fatal("a context that ends on its own, behind a wrapper, is taken for the source")
	}
}
