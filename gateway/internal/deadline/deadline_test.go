package deadline

import (
	"context"
	"errors"
	"testing"
	"time"
)

var (
	errOuter = errors.New("outer timeout")
	errInner = errors.New("inner timeout")
)

func TestEndsAtItsDeadlineWithoutDone(t *testing.T) {
	c := New(context.Background(), 20*time.Millisecond, errInner)
	defer c.Release()
	if c.Err() != nil || Cause(c) != nil {
		t.Fatalf("ended early: %v, %v", c.Err(), Cause(c))
	}
	time.Sleep(30 * time.Millisecond)
	if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(Cause(c), errInner) {
		t.Fatalf("after the deadline: %v, %v", c.Err(), Cause(c))
	}
}

func TestDoneClosesAtTheDeadline(t *testing.T) {
	c := New(context.Background(), 20*time.Millisecond, errInner)
	defer c.Release()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done never closed")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(Cause(c), errInner) {
		t.Fatalf("got %v, %v", c.Err(), Cause(c))
	}
}

func TestDoneClosesWhenTheParentEnds(t *testing.T) {
	parent, cancel := context.WithCancelCause(context.Background())
	c := New(parent, time.Hour, errInner)
	defer c.Release()
	done := c.Done()
	parentCause := errors.New("client went away")
	cancel(parentCause)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Done never closed")
	}
	if !errors.Is(c.Err(), context.Canceled) || !errors.Is(Cause(c), parentCause) {
		t.Fatalf("got %v, %v", c.Err(), Cause(c))
	}
}

func TestParentEndedBeforeDoneIsSeen(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	c := New(parent, time.Hour, errInner)
	defer c.Release()
	cancel()
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err = %v before Done", c.Err())
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done of an ended context is open")
	}
}

func TestReleaseCancels(t *testing.T) {
	c := New(context.Background(), time.Hour, errInner)
	done := c.Done()
	c.Release()
	select {
	case <-done:
	default:
		t.Fatal("Release left Done open")
	}
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err = %v", c.Err())
	}
	unarmed := New(context.Background(), time.Hour, errInner)
	unarmed.Release()
	if !errors.Is(unarmed.Err(), context.Canceled) {
		t.Fatalf("Err of a released unarmed context = %v", unarmed.Err())
	}
	select {
	case <-unarmed.Done():
	default:
		t.Fatal("Done of a released context is open")
	}
}

func TestReleaseAfterTheDeadlineKeepsTheDeadline(t *testing.T) {
	c := New(context.Background(), time.Millisecond, errInner)
	time.Sleep(5 * time.Millisecond)
	c.Release()
	if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(Cause(c), errInner) {
		t.Fatalf("got %v, %v", c.Err(), Cause(c))
	}
}

func TestNestedContextsReportTheEarlierEnd(t *testing.T) {
	outer := New(context.Background(), 10*time.Millisecond, errOuter)
	defer outer.Release()
	inner := New(outer, time.Hour, errInner)
	defer inner.Release()
	if at, _ := inner.Deadline(); !at.Equal(outer.at) {
		t.Fatalf("inner deadline %v, want the outer's %v", at, outer.at)
	}
	time.Sleep(20 * time.Millisecond)
	if !errors.Is(inner.Err(), context.DeadlineExceeded) || !errors.Is(Cause(inner), errOuter) {
		t.Fatalf("got %v, %v; want the outer's cause", inner.Err(), Cause(inner))
	}

	outer2 := New(context.Background(), time.Hour, errOuter)
	defer outer2.Release()
	inner2 := New(outer2, 10*time.Millisecond, errInner)
	defer inner2.Release()
	time.Sleep(20 * time.Millisecond)
	if !errors.Is(Cause(inner2), errInner) || outer2.Err() != nil {
		t.Fatalf("got %v (outer %v); want the inner's cause", Cause(inner2), outer2.Err())
	}
}

func TestValuesPassThrough(t *testing.T) {
	type k struct{}
	parent := context.WithValue(context.Background(), k{}, "v")
	c := New(parent, time.Hour, errInner)
	defer c.Release()
	if got := context.WithValue(c, struct{ n int }{1}, 1).Value(k{}); got != "v" {
		t.Fatalf("Value = %v", got)
	}
}

func TestWatchSkipsDeadlineLayers(t *testing.T) {
	type k struct{}
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	outer := New(base, time.Hour, errOuter)
	defer outer.Release()
	inner := New(outer, time.Minute, errInner)
	defer inner.Release()
	ctx := context.WithValue(inner, k{}, 1)

	at, source, ok := Watch(ctx)
	if !ok || source != base || !at.Equal(inner.at) {
		t.Fatalf("Watch = %v, %v, %v; want the inner deadline and the base context", at, source, ok)
	}
	if _, _, ok := Watch(base); ok {
		t.Fatal("Watch found a Context in a plain context")
	}
	// A standard timeout between the caller and the Context has a deadline of its
	// own: the caller must watch Done.
	std, stdCancel := context.WithTimeout(context.WithoutCancel(inner), time.Second)
	defer stdCancel()
	if _, _, ok := Watch(std); ok {
		t.Fatal("Watch looked through a standard timeout")
	}
	// Nothing was armed.
	if inner.done != nil || outer.done != nil {
		t.Fatal("Watch armed a timer")
	}
}

func BenchmarkNewAndRelease(b *testing.B) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		outer := New(parent, time.Minute, errOuter)
		inner := New(outer, time.Second, errInner)
		_ = inner.Err()
		_, _, _ = Watch(inner)
		inner.Release()
		outer.Release()
	}
}

func BenchmarkStandardTimeouts(b *testing.B) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		outer, c1 := context.WithTimeoutCause(parent, time.Minute, errOuter)
		inner, c2 := context.WithTimeoutCause(outer, time.Second, errInner)
		_ = inner.Err()
		stop := context.AfterFunc(inner, func() {})
		stop()
		c2()
		c1()
	}
}

// The first end seen stays the answer: a parent canceled before the deadline is
// still the reason after the deadline has passed.
func TestTheFirstEndStays(t *testing.T) {
	parent, cancel := context.WithCancelCause(context.Background())
	gone := errors.New("client went away")
	c := New(parent, 20*time.Millisecond, errInner)
	defer c.Release()
	cancel(gone)
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err = %v", c.Err())
	}
	time.Sleep(30 * time.Millisecond)
	if !errors.Is(c.Err(), context.Canceled) || !errors.Is(Cause(c), gone) {
		t.Fatalf("after the deadline: %v, %v; want the parent's end", c.Err(), Cause(c))
	}
}

// Cause does not look through a standard context with a timeout of its own, nor
// report the Context's cause for a standard child that ended alone.
func TestCauseOfStandardContextsBelow(t *testing.T) {
	c := New(context.Background(), time.Hour, errInner)
	defer c.Release()
	mirrorCause := errors.New("mirror timeout")
	mirror, cancelMirror := context.WithTimeoutCause(context.WithoutCancel(c), time.Millisecond, mirrorCause)
	defer cancelMirror()
	<-mirror.Done()
	if got := Cause(mirror); !errors.Is(got, mirrorCause) {
		t.Fatalf("Cause(mirror) = %v", got)
	}
	child, cancelChild := context.WithCancelCause(c)
	childCause := errors.New("child canceled")
	cancelChild(childCause)
	if got := Cause(child); !errors.Is(got, childCause) {
		t.Fatalf("Cause(child) = %v", got)
	}
	if c.Err() != nil {
		t.Fatalf("the child's end reached the parent: %v", c.Err())
	}

	// The child ended first; the parent's deadline passing later changes nothing.
	short := New(context.Background(), 10*time.Millisecond, errInner)
	defer short.Release()
	child2, cancelChild2 := context.WithCancelCause(short)
	cancelChild2(childCause)
	time.Sleep(20 * time.Millisecond)
	if got := Cause(child2); !errors.Is(got, childCause) {
		t.Fatalf("Cause(child canceled before the deadline) = %v", got)
	}
}

// Contexts derived with the context package and context.AfterFunc are told of the
// end through AfterFunc, without a goroutine each while they wait.
func TestDerivedContextsEnd(t *testing.T) {
	c := New(context.Background(), 20*time.Millisecond, errInner)
	defer c.Release()
	child, cancel := context.WithCancel(c)
	defer cancel()
	ran := make(chan struct{})
	context.AfterFunc(c, func() { close(ran) })
	stopped := context.AfterFunc(c, func() { t.Error("a stopped function ran") })
	if !stopped() {
		t.Fatal("stop reported that the function had run")
	}
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the derived context never ended")
	}
	if !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Fatalf("child Err = %v", child.Err())
	}
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("the AfterFunc function never ran")
	}
}
