package h1

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/internal/ctxhook"
)

// requestContext is a request's context: the connection's values, ended once the
// handler returns or the client goes away, as net/http's request contexts are. It
// lives in the request's requestState, where context.WithCancel costs two
// allocations of its own, makes its channel only when Done is called, runs ctxhook.Hooks without allocating (the backend client
// watches requests with them), and lets context.AfterFunc and the contexts derived
// from it register without a goroutine of their own. It also holds one value that
// the handler may add (see SetValue), so that a handler that attaches a value to
// every request need not copy the request to do it.
type requestContext struct {
	parent context.Context
	// ended is set once the context has ended; err is then context.Canceled.
	ended atomic.Bool
	mu    sync.Mutex
	// done is made by the first call of Done.
	done  chan struct{}
	hooks ctxhook.List
	// slotKey and slotValue are the value SetValue added, if any.
	slotKey, slotValue any
}

// Deadline reports none: a request's context has no deadline of its own, and the
// connection's has none.
func (rc *requestContext) Deadline() (deadline time.Time, ok bool) { return rc.parent.Deadline() }

// Done returns a channel closed once the context has ended.
func (rc *requestContext) Done() <-chan struct{} {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.done == nil {
		rc.done = make(chan struct{})
		if rc.ended.Load() {
			close(rc.done)
		}
	}
	return rc.done
}

// Err returns context.Canceled once the context has ended, else nil.
func (rc *requestContext) Err() error {
	if rc.ended.Load() {
		return context.Canceled
	}
	return nil
}

// Value returns the context itself for ctxhook.Key, the value SetValue added for its
// key, and the connection's values otherwise.
func (rc *requestContext) Value(key any) any {
	if key == ctxhook.Key {
		return rc
	}
	if rc.slotKey != nil && key == rc.slotKey {
		return rc.slotValue
	}
	return rc.parent.Value(key)
}

// String names the context for debugging, as the standard contexts do.
func (rc *requestContext) String() string { return "h1.requestContext" }

// SetValue adds a value to the context, for the handler's code to find with Value,
// and reports whether it could: a request's context holds one such value, which the
// handler adds before it starts other goroutines. Code that gets false attaches its
// value by copying the request with a context of its own, as with any other server.
func (rc *requestContext) SetValue(key, value any) bool {
	if rc.slotKey != nil || key == nil {
		return false
	}
	rc.slotKey, rc.slotValue = key, value
	return true
}

// Hook registers h to run once the context ends; see ctxhook.Source.
func (rc *requestContext) Hook(h *ctxhook.Hook) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.ended.Load() {
		return false
	}
	rc.hooks.Add(h)
	return true
}

// Unhook removes h; see ctxhook.Source.
func (rc *requestContext) Unhook(h *ctxhook.Hook) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.hooks.Remove(h)
}

// AfterFunc runs f once the context ends, and returns a function that stops that
// from happening, reporting whether it did. The context package calls it for
// context.AfterFunc and for the contexts derived from this one, which would
// otherwise each start a goroutine that waits on Done; the functions it gives are
// quick (they end a derived context, or start the goroutine context.AfterFunc
// promises), so f runs on the goroutine that ends this context. On a context that
// has ended already, f runs on a goroutine of its own: the context package calls
// AfterFunc holding the lock of the derived context that f ends.
func (rc *requestContext) AfterFunc(f func()) (stop func() bool) {
	h := &ctxhook.Hook{Func: f}
	if !rc.Hook(h) {
		go f()
		return func() bool { return false }
	}
	return func() bool { return rc.Unhook(h) }
}

// cancel ends the context, and runs its hooks.
func (rc *requestContext) cancel() {
	rc.mu.Lock()
	if rc.ended.Load() {
		rc.mu.Unlock()
		return
	}
	rc.ended.Store(true)
	if rc.done != nil {
		close(rc.done)
	}
	hooks := rc.hooks.Take()
	rc.mu.Unlock()
	ctxhook.Run(hooks)
}
