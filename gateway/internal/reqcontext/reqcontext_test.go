package reqcontext

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/internal/ctxhook"
)

type testKey struct{ name string }

// testTimeout bounds every wait of these tests.
const testTimeout = 5 * time.Second

func TestRequestContextEnds(t *testing.T) {
	parent := context.WithValue(context.Background(), testKey{"conn"}, "conn value")
	rc := newContext(parent)
	if rc.Err() != nil {
		t.Fatalf("a live context reports %v", rc.Err())
	}
	if _, ok := rc.Deadline(); ok {
		t.Fatal("a request context reports a deadline")
	}
	if rc.Value(testKey{"conn"}) != "conn value" {
		t.Fatal("the connection's values are lost")
	}
	if ctxhook.Find(rc) != rc {
		t.Fatal("the context is not a hook source")
	}
	done := rc.Done()
	child, stopChild := context.WithCancel(rc)
	defer stopChild()
	ran := make(chan struct{})
	context.AfterFunc(context.WithValue(rc, testKey{"v"}, 1), func() { close(ran) })
	select {
	case <-done:
		t.Fatal("the channel is closed before the end")
	default:
	}

	rc.Cancel()
	rc.Cancel()
	<-done
	if !errors.Is(rc.Err(), context.Canceled) || !errors.Is(context.Cause(rc), context.Canceled) {
		t.Fatalf("ended context reports %v, cause %v", rc.Err(), context.Cause(rc))
	}
	waitClosed(t, child.Done(), "a derived context")
	waitClosed(t, ran, "context.AfterFunc's function")
	// A channel asked for after the end is closed already.
	late := newContext(parent)
	late.Cancel()
	waitClosed(t, late.Done(), "a channel made after the end")
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testTimeout):
		t.Fatalf("%s did not end with the request context", what)
	}
}

func TestRequestContextHooks(t *testing.T) {
	rc := newContext(context.Background())
	runs := 0
	kept := ctxhook.Hook{Func: func() { runs++ }}
	removed := ctxhook.Hook{Func: func() { runs += 100 }}
	if !rc.Hook(&kept) || !rc.Hook(&removed) {
		t.Fatal("a live context refused a hook")
	}
	if !rc.Unhook(&removed) {
		t.Fatal("a registered hook could not be removed")
	}
	rc.Cancel()
	if runs != 1 {
		t.Fatalf("hooks ran %d (want the kept one once)", runs)
	}
	if rc.Unhook(&kept) {
		t.Fatal("a hook that ran reports being still registered")
	}
	if rc.Hook(&removed) {
		t.Fatal("an ended context took a hook")
	}
	ran := make(chan struct{})
	stop := rc.AfterFunc(func() { close(ran) })
	if stop() {
		t.Fatal("AfterFunc on an ended context can be stopped")
	}
	waitClosed(t, ran, "AfterFunc's function on an ended context")
}

func TestRequestContextHoldsOneValue(t *testing.T) {
	rc := newContext(context.WithValue(context.Background(), testKey{"a"}, "from the connection"))
	if rc.SetValue(nil, 1) {
		t.Fatal("a nil key was taken")
	}
	if !rc.SetValue(testKey{"a"}, "from the handler") {
		t.Fatal("the first value was refused")
	}
	if rc.SetValue(testKey{"b"}, "second") {
		t.Fatal("a second value was taken")
	}
	if got := rc.Value(testKey{"a"}); got != "from the handler" {
		t.Fatalf("Value = %v, want the handler's, which hides the connection's", got)
	}
	if rc.Value(testKey{"b"}) != nil {
		t.Fatal("a refused value is visible")
	}
}

func newContext(parent context.Context) *Context {
	rc := &Context{}
	rc.Init(parent)
	return rc
}
