// Package reqcontext is the context of a request served by the gateway's own HTTP
// servers (HTTP/1.1 and HTTP/2): a context that costs no allocation of its own, runs
// ctxhook.Hooks, and holds one value the handler may add.
package reqcontext

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/internal/ctxhook"
)

// Context is a request's context: the connection's values, ended once the handler
// returns or the client goes away (or resets its stream), as net/http's request
// contexts are. It lives inside the server's own record of the request, where
// context.WithCancel costs two allocations of its own; it makes its channel only
// when Done is called, runs ctxhook.Hooks without allocating (the backend client
// watches requests with them), and lets context.AfterFunc and the contexts derived
// from it register without a goroutine of their own. It also holds one value that
// the handler may add (see SetValue), so that a handler that attaches a value to
// every request need not copy the request to do it.
//
// A Context is used once: Init it, hand it to the request, Cancel it when the
// request ends.
type Context struct {
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

// Init sets the context of the connection whose values the request's context
// carries. The connection's context must never end on its own: the request's
// context ends only through Cancel.
func (rc *Context) Init(parent context.Context) { rc.parent = parent }

// Deadline reports none: a request's context has no deadline of its own, and the
// connection's has none.
func (rc *Context) Deadline() (deadline time.Time, ok bool) { return rc.parent.Deadline() }

// Done returns a channel closed once the context has ended.
func (rc *Context) Done() <-chan struct{} {
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
func (rc *Context) Err() error {
	if rc.ended.Load() {
		return context.Canceled
	}
	return nil
}

// Value returns the context itself for ctxhook.Key, the value SetValue added for its
// key, and the connection's values otherwise.
func (rc *Context) Value(key any) any {
	if key == ctxhook.Key {
		return rc
	}
	if rc.slotKey != nil && key == rc.slotKey {
		return rc.slotValue
	}
	return rc.parent.Value(key)
}

// String names the context for debugging, as the standard contexts do.
func (rc *Context) String() string { return "reqcontext.Context" }

// SetValue adds a value to the context, for the handler's code to find with Value,
// and reports whether it could: a request's context holds one such value, which the
// handler adds before it starts other goroutines or derives contexts from this one
// (the slot has no lock, and a derived context reads it when it ends, which the
// client can make happen at any moment). Code that gets false attaches its
// value by copying the request with a context of its own, as with any other server.
func (rc *Context) SetValue(key, value any) bool {
	if rc.slotKey != nil || key == nil {
		return false
	}
	rc.slotKey, rc.slotValue = key, value
	return true
}

// Hook registers h to run once the context ends; see ctxhook.Source.
func (rc *Context) Hook(h *ctxhook.Hook) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.ended.Load() {
		return false
	}
	rc.hooks.Add(h)
	return true
}

// Unhook removes h; see ctxhook.Source.
func (rc *Context) Unhook(h *ctxhook.Hook) bool {
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
func (rc *Context) AfterFunc(f func()) (stop func() bool) {
	h := &ctxhook.Hook{Func: f}
	if !rc.Hook(h) {
		go f()
		return func() bool { return false }
	}
	return func() bool { return rc.Unhook(h) }
}

// Cancel ends the context, and runs its hooks. Later calls do nothing.
func (rc *Context) Cancel() {
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
