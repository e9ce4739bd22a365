// Package deadline provides a context bounded by a deadline that starts no timer
// until something waits on it.
//
// A request timeout made with context.WithTimeout costs a timer, a goroutine-safe
// registration with the parent and several allocations on every request, although
// on the data path almost nothing waits on the context's Done channel: the backend
// client enforces the deadline with a socket deadline instead (see Watch). A Context
// answers Deadline, Err and Cause by reading the clock, and arms a timer only when
// Done is called, so that code which does wait (a retry's backoff, a queue for a
// circuit breaker's slot, net/http's Transport) sees the usual behaviour.
package deadline

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/internal/ctxhook"
)

// Context is a context that ends at a deadline, when its parent ends, or when it is
// released, whichever comes first. Create one with New.
type Context struct {
	parent context.Context
	// at is this context's own deadline; the effective one, deadline, may be the
	// parent's. A context's deadline never changes, so the effective one is worked
	// out once, when the context is made: a request's contexts are asked for it
	// several times, each asking its parents.
	at, deadline time.Time
	// cause is what Cause reports once the context ended at its own deadline.
	cause error

	mu sync.Mutex
	// done is made by the first call of Done; until then nothing watches the clock
	// or the parent.
	done chan struct{}
	// err and endCause are set once the context has ended with its channel made, or
	// once it was released.
	err, endCause error
	timer         *time.Timer
	stopParent    func() bool
	// parentHook watches a parent that is a ctxhook.Source (a request's context on
	// the gateway's own server) without the allocations of context.AfterFunc;
	// hookedTo is that parent while the hook is registered.
	parentHook ctxhook.Hook
	hookedTo   ctxhook.Source
	// afters are the functions registered by AfterFunc that have yet to run.
	afters []*afterFunc
}

// afterFunc is a function to run once the context ends, unless stopped first.
type afterFunc struct {
	f func()
	// state is 0 while pending, 1 once run, 2 once stopped.
	state atomic.Int32
}

func (a *afterFunc) run() {
	if a.state.CompareAndSwap(0, 1) {
		a.f()
	}
}

// AfterFunc runs f in its own goroutine once the context ends, and returns a
// function that stops that from happening (reporting whether it did). The context
// package uses it for contexts derived from a Context and for context.AfterFunc,
// which would otherwise each start a goroutine that waits on Done.
func (c *Context) AfterFunc(f func()) func() bool {
	c.Done()
	a := &afterFunc{f: f}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go a.run()
	} else {
		c.afters = append(c.afters, a)
		c.mu.Unlock()
	}
	return func() bool { return a.state.CompareAndSwap(0, 2) }
}

type key struct{}

// New returns a context that ends timeout from now, reporting cause from Cause once
// it has (unless its parent ended first). Call Release when the work it bounds is
// done.
func New(parent context.Context, timeout time.Duration, cause error) *Context {
	return NewAt(parent, time.Now().Add(timeout), cause)
}

// NewAt is New for a context that ends at a given time, for a caller that has read
// the clock already (a timeout counted from a request's arrival).
func NewAt(parent context.Context, at time.Time, cause error) *Context {
	return &Context{parent: parent, at: at, deadline: earlierDeadline(parent, at), cause: cause}
}

// earlierDeadline is the earlier of at and parent's deadline.
func earlierDeadline(parent context.Context, at time.Time) time.Time {
	if pd, ok := parent.Deadline(); ok && pd.Before(at) {
		return pd
	}
	return at
}

// Deadline returns the earlier of this context's deadline and its parent's.
func (c *Context) Deadline() (time.Time, bool) {
	return c.deadline, true
}

// Done returns a channel closed when the context ends. The first call arms a timer
// and watches the parent.
func (c *Context) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		c.armLocked()
	}
	return c.done
}

// armLocked starts watching the clock and the parent for a newly made channel,
// closing it at once when the context has already ended.
func (c *Context) armLocked() {
	if c.err != nil {
		close(c.done)
		return
	}
	if err, cause := c.evaluate(time.Now()); err != nil {
		c.endLocked(err, cause)
		return
	}
	c.timer = time.AfterFunc(time.Until(c.at), c.expire)
	if source := ctxhook.Find(c.parent); source != nil {
		// The hook runs parentEnded on the goroutine that ends the parent, which
		// holds none of this context's locks.
		c.parentHook.Func = c.parentEnded
		if source.Hook(&c.parentHook) {
			c.hookedTo = source
		} else {
			c.endLocked(c.parent.Err(), Cause(c.parent))
		}
		return
	}
	if c.parent.Done() != nil {
		c.stopParent = context.AfterFunc(c.parent, c.parentEnded)
	}
}

func (c *Context) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The parent may have ended first without its watch having run yet.
	err, cause := c.evaluate(time.Now())
	if err == nil {
		err, cause = context.DeadlineExceeded, c.cause
	}
	c.endLocked(err, cause)
}

func (c *Context) parentEnded() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLocked(c.parent.Err(), Cause(c.parent))
}

// endLocked records the end, once, closes the channel if it exists and stops the
// watches.
func (c *Context) endLocked(err, cause error) {
	if c.err != nil {
		return
	}
	if cause == nil {
		cause = err
	}
	c.err, c.endCause = err, cause
	if c.done != nil {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.stopParent != nil {
		c.stopParent()
	}
	if c.hookedTo != nil {
		c.hookedTo.Unhook(&c.parentHook)
		c.hookedTo = nil
	}
	for _, a := range c.afters {
		go a.run()
	}
	c.afters = nil
}

// evaluate reads the clock and the parent: the error and cause the context has at
// now, or nil when it has not ended. Of two ends that both passed, the one whose
// deadline came first is reported, as a chain of timers would have.
func (c *Context) evaluate(now time.Time) (error, error) {
	ownEnded := !now.Before(c.at)
	if perr := parentErr(c.parent, now); perr != nil {
		pd, hasParentDeadline := c.parent.Deadline()
		if !ownEnded || (hasParentDeadline && pd.Before(c.at)) {
			return perr, Cause(c.parent)
		}
	}
	if ownEnded {
		return context.DeadlineExceeded, c.cause
	}
	return nil, nil
}

// parentErr is parent.Err(), with the clock reading now for a parent that is a
// Context, so that a chain of them (a request timeout and a per-try timeout) reads
// the clock once.
func parentErr(parent context.Context, now time.Time) error {
	if p, ok := parent.(*Context); ok {
		err, _ := p.stateAt(now)
		return err
	}
	return parent.Err()
}

// Err returns nil while the context lasts, then context.DeadlineExceeded or the
// parent's error (context.Canceled once released).
func (c *Context) Err() error {
	err, _ := c.state()
	return err
}

// state returns the error and the cause: as recorded once the context ended, else
// as the clock and the parent say now. The first end seen is recorded, so that the
// answer never changes after (a parent canceled before the deadline stays the
// reason once the deadline has passed too), and so that Err and Done agree when an
// armed timer has yet to run.
func (c *Context) state() (error, error) {
	return c.stateAt(time.Now())
}

// stateAt is state with the clock read by the caller; now is not used once the
// context has ended. A child's lock is held while its parent's is taken, never the
// other way round.
func (c *Context) stateAt(now time.Time) (error, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		if err, cause := c.evaluate(now); err != nil {
			c.endLocked(err, cause)
		}
	}
	return c.err, c.endCause
}

// Value returns the context itself for this package's lookups and defers every
// other key to the parent.
func (c *Context) Value(k any) any {
	if _, ok := k.(key); ok {
		return c
	}
	return c.parent.Value(k)
}

// String names the context for debugging, as the standard contexts do.
func (c *Context) String() string { return "deadline.Context" }

// Release ends the context, as the cancel function of context.WithTimeout does: a
// context that had not ended reports context.Canceled from then on. It releases the
// timer and the watch of the parent, if Done had armed them.
func (c *Context) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	if err, cause := c.evaluate(time.Now()); err != nil {
		c.endLocked(err, cause)
		return
	}
	c.endLocked(context.Canceled, context.Canceled)
}

// Recycle ends the context as Release does, and reports whether it may be made
// ready again with Reset: when Done was never called, so that no timer, watch of
// the parent or AfterFunc refers to it. It is for a caller that gave the context
// only to code that keeps no hold of it once the work is done, and keeps it for its
// next piece of work, saving an allocation. A context that may be reused ends
// without reading the clock: it reports context.Canceled from then on.
func (c *Context) Recycle() bool {
	c.mu.Lock()
	if c.done != nil {
		// Something may be waiting on the context: it ends as Release ends it.
		c.mu.Unlock()
		c.Release()
		return false
	}
	defer c.mu.Unlock()
	if c.err == nil {
		c.err, c.endCause = context.Canceled, context.Canceled
	}
	// A context kept for reuse does not keep its parent (a request's context, and
	// through it a connection) alive meanwhile.
	c.parent = context.Background()
	return true
}

// Reset makes a context that Recycle reported reusable what NewAt would return. The
// caller must hold the only reference to it: Reset overwrites it whole, lock
// included, without taking the lock.
func (c *Context) Reset(parent context.Context, at time.Time, cause error) {
	*c = Context{parent: parent, at: at, deadline: earlierDeadline(parent, at), cause: cause}
}

// Cause returns why ctx ended, as context.Cause does: for a Context (or a context
// that only adds values to one), its cause when it ended at its deadline, its
// parent's cause when that ended first; for any other context, context.Cause.
func Cause(ctx context.Context) error {
	c := nearest(ctx)
	if c == nil {
		return context.Cause(ctx)
	}
	err := ctx.Err()
	if err == nil {
		return nil
	}
	if cerr, cause := c.state(); cerr != nil && errors.Is(err, cerr) {
		return cause
	}
	// Something between ctx and the Context ended it first: a standard context.
	return context.Cause(ctx)
}

// nearest returns the Context ctx derives from when nothing between them sets a
// deadline of its own, else nil. A standard context with its own timeout (or one
// that drops the deadline, as context.WithoutCancel does) shows in ctx.Deadline.
func nearest(ctx context.Context) *Context {
	c, ok := ctx.Value(key{}).(*Context)
	if !ok {
		return nil
	}
	at, _ := c.Deadline()
	if got, has := ctx.Deadline(); !has || !got.Equal(at) {
		return nil
	}
	return c
}

// Watch is for a client that enforces the deadline of ctx itself, with a socket
// deadline, rather than by waiting on ctx.Done (which would arm the timers Context
// exists to avoid). When the nearest source of cancellation of ctx is a Context
// reached through contexts that only carry values, it returns the effective
// deadline and the context whose end must still be watched: the nearest ancestor
// that is not a Context itself. Otherwise ok is false and ctx.Done is the thing to
// watch. A standard context with a deadline of its own between ctx and the Context
// is recognised by its different deadline.
func Watch(ctx context.Context) (at time.Time, source context.Context, ok bool) {
	c := nearest(ctx)
	if c == nil {
		return time.Time{}, nil, false
	}
	at, _ = c.Deadline()
	source = c.parent
	for {
		p, isContext := source.(*Context)
		if !isContext {
			return at, source, true
		}
		source = p.parent
	}
}
