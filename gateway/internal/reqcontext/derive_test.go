package reqcontext

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// cancelOnLookup is a parent context whose first lookup of an unknown key ends
// the request context: it lands where the context package looks its parent up
// (parentCancelCtx) between checking Done and calling AfterFunc, which is the
// window a client going away (the watcher) or the handler returning can hit.
type cancelOnLookup struct {
	context.Context
	rc   *Context
	done bool
}

func (c *cancelOnLookup) Value(key any) any {
	if !c.done {
		c.done = true
		c.rc.Cancel()
	}
	return c.Context.Value(key)
}

// TestDeriveWhileEndingDoesNotDeadlock derives a context from a request context
// that ends while context.WithCancel registers with it.
func TestDeriveWhileEndingDoesNotDeadlock(t *testing.T) {
	rc := &Context{}
	rc.Init(&cancelOnLookup{Context: context.Background(), rc: rc})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		ctx, cancel := context.WithCancel(rc)
		defer cancel()
		<-ctx.Done()
	}()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		t.Fatal("context.WithCancel of a request context ending meanwhile deadlocked")
	}
}

// TestDeriveRacingCancel is the same race without instrumentation: one goroutine
// ends the request context while another derives from it.
func TestDeriveRacingCancel(t *testing.T) {
	finished := make(chan struct{})
	var iter atomic.Int64
	go func() {
		defer close(finished)
		for i := 0; i < 50000; i++ {
			iter.Store(int64(i))
			rc := newContext(context.Background())
			start := make(chan struct{})
			go func() { <-start; rc.Cancel() }()
			close(start)
			stop := context.AfterFunc(rc, func() {})
			stop()
		}
	}()
	select {
	case <-finished:
	case <-time.After(20 * time.Second):
		t.Fatalf("context.AfterFunc racing the end of a request context deadlocked (iteration %d)", iter.Load())
	}
}
