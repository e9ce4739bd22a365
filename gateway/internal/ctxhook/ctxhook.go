// Package ctxhook lets code on the data path be told that a request's context ended
// without what context.AfterFunc costs on every request: a context of its own, a
// registration in its parent's set of children, a function to stop it, each
// allocated, or a goroutine when the parent is not one of the standard contexts.
//
// A Hook is a node kept inside the struct of the code that waits (a backend
// connection, a deadline): registering it with a Source links it into the Source's
// list, and ending the Source runs it on the goroutine that ended it. Contexts
// that implement Source answer Find through Value, so that they are found below
// contexts that only carry values.
package ctxhook

import "context"

// Hook is a function a Source runs once, when it ends.
type Hook struct {
	// Func runs on the goroutine that ends the Source, so it must be quick and must
	// not block: set a deadline in the past on a connection, close a channel.
	Func func()
	// next and prev link the hooks of one Source; linked is set while the hook is
	// registered, under the Source's lock.
	next, prev *Hook
	linked     bool
}

// Source is a context that runs Hooks when it ends.
type Source interface {
	context.Context
	// Hook registers h and reports true; it reports false, and registers nothing,
	// when the context has already ended. A Hook is registered with one Source at a
	// time.
	Hook(h *Hook) bool
	// Unhook removes h and reports whether it was still registered. False means h
	// has run or is about to, on another goroutine; h may be registered again only
	// once its Func has run.
	Unhook(h *Hook) bool
}

// key is what a Source's Value answers itself for.
type key struct{}

// Key is the key under which a Source's Value returns the Source itself.
var Key any = key{}

// Wrapper is a context that adds values to another, its parent, and ends exactly
// when its parent does. Find passes through Wrappers without calling Done.
type Wrapper interface {
	context.Context
	// ValueParent returns the context this one adds values to.
	ValueParent() context.Context
}

// Find returns the Source that ends ctx, when ctx is one or derives from one through
// contexts that end only with it (those that only carry values); else nil. Through
// Wrappers it needs no more than type assertions. Past any other context it calls
// Done on ctx and on the Source (which makes their channels): a context with an end
// of its own in between (a standard context with a cancel function or a deadline)
// has a channel of its own.
func Find(ctx context.Context) Source {
	for {
		if s, ok := ctx.(Source); ok {
			return s
		}
		w, ok := ctx.(Wrapper)
		if !ok {
			break
		}
		ctx = w.ValueParent()
	}
	s, ok := ctx.Value(Key).(Source)
	if !ok {
		return nil
	}
	if ctx.Done() != s.Done() {
		return nil
	}
	return s
}

// List is the hooks of a Source. Its methods are called under the Source's lock,
// except Run.
type List struct {
	first *Hook
}

// Add links h in.
func (l *List) Add(h *Hook) {
	h.prev, h.next, h.linked = nil, l.first, true
	if l.first != nil {
		l.first.prev = h
	}
	l.first = h
}

// Remove unlinks h, reporting whether it was linked.
func (l *List) Remove(h *Hook) bool {
	if !h.linked {
		return false
	}
	if h.prev != nil {
		h.prev.next = h.next
	} else {
		l.first = h.next
	}
	if h.next != nil {
		h.next.prev = h.prev
	}
	h.prev, h.next, h.linked = nil, nil, false
	return true
}

// Take empties the list and returns its hooks, for Run once the lock is released.
// They count as unregistered from here on: Remove reports false for them.
func (l *List) Take() *Hook {
	first := l.first
	l.first = nil
	for h := first; h != nil; h = h.next {
		h.linked = false
	}
	return first
}

// Run runs the hooks Take returned.
func Run(first *Hook) {
	for h := first; h != nil; {
		// The owner may register h again once its Func has run: read the link first.
		next := h.next
		h.Func()
		h = next
	}
}
