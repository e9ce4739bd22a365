package deadline

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRecycleKeepsAContextNothingWaitsOn checks that a context Done was never
// called on may be reused: Recycle ends it, and Reset makes it a new context with
// the new deadline and cause, which ends at that deadline.
func TestRecycleKeepsAContextNothingWaitsOn(t *testing.T) {
	type valueKey struct{}
	c := New(context.WithValue(context.Background(), valueKey{}, "request"), time.Hour, errOuter)
	if !c.Recycle() {
		t.Fatal("a context nothing waited on was not reusable")
	}
	// Kept for reuse, it lets go of its parent.
	if v := c.Value(valueKey{}); v != nil {
		t.Fatalf("a recycled context still reaches its parent's value %v", v)
	}
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("after Recycle: %v, want context.Canceled", c.Err())
	}
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	at := time.Now().Add(20 * time.Millisecond)
	c.Reset(parent, at, errInner)
	if c.Err() != nil {
		t.Fatalf("a reset context has ended: %v", c.Err())
	}
	if got, ok := c.Deadline(); !ok || !got.Equal(at) {
		t.Fatalf("deadline %v, %v; want %v", got, ok, at)
	}
	time.Sleep(30 * time.Millisecond)
	if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(Cause(c), errInner) {
		t.Fatalf("past the new deadline: %v, %v", c.Err(), Cause(c))
	}
}

// TestRecycleDropsAContextSomethingWaitsOn checks that a context whose Done was
// called is not reusable, since a timer or a waiter may still refer to it, and
// that Recycle ends it as Release does: the channel closes.
func TestRecycleDropsAContextSomethingWaitsOn(t *testing.T) {
	c := New(context.Background(), time.Hour, errOuter)
	done := c.Done()
	if c.Recycle() {
		t.Fatal("a context whose Done was called was reusable")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Recycle did not close the channel")
	}
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("after Recycle: %v, want context.Canceled", c.Err())
	}

	// One that ended at its deadline keeps that end, as with Release.
	c = New(context.Background(), time.Millisecond, errInner)
	c.Done()
	time.Sleep(5 * time.Millisecond)
	if c.Recycle() || !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(Cause(c), errInner) {
		t.Fatalf("after the deadline: %v, %v", c.Err(), Cause(c))
	}
}
