// Package coalesce turns a stream of change notifications into few runs of one
// function. A burst of changes (a kubectl apply of many objects, an informer's
// relist) becomes one translation, yet a steady trickle of changes still gets a run
// at least every maxDelay, so new routes converge quickly.
package coalesce

import (
	"sync"
	"time"
)

// Defaults for the controller: short enough that a new route reaches the data plane
// well within the 100 ms convergence goal, long enough to merge a burst of writes.
const (
	// DefaultHoldOff is how long the controller waits for the stream of changes to
	// pause before translating.
	DefaultHoldOff = 5 * time.Millisecond
	// DefaultMaxDelay bounds how long a change waits when changes keep coming.
	DefaultMaxDelay = 50 * time.Millisecond
)

// Coalescer runs a function after triggers, merging triggers that come close
// together. Its methods are safe for concurrent use.
type Coalescer struct {
	holdOff  time.Duration
	maxDelay time.Duration
	fn       func()

	mu   sync.Mutex
	idle sync.Cond // signalled when a run ends
	// pending is set by a trigger that no run has answered yet; first and last are the
	// times of the first and latest such trigger.
	pending     bool
	first, last time.Time
	running     bool
	stopped     bool
	timer       *time.Timer
}

// New returns a Coalescer that runs fn once no trigger has come for holdOff, and never
// later than maxDelay after the first trigger that is still waiting. A maxDelay below
// holdOff is raised to holdOff; negative durations count as zero. Nothing runs until
// Trigger is called.
func New(holdOff, maxDelay time.Duration, fn func()) *Coalescer {
	holdOff = max(holdOff, 0)
	maxDelay = max(maxDelay, holdOff)
	c := &Coalescer{holdOff: holdOff, maxDelay: maxDelay, fn: fn}
	c.idle.L = &c.mu
	return c
}

// Trigger asks for a run. It never blocks on fn. A trigger that arrives while fn runs
// schedules exactly one more run after it, however many such triggers arrive.
func (c *Coalescer) Trigger() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	now := time.Now()
	if !c.pending {
		c.pending = true
		c.first = now
	}
	c.last = now
	if !c.running {
		c.scheduleLocked(now)
	}
}

// Stop cancels any run that has not started and waits for a running one to finish.
// Later triggers are ignored. It must not be called from fn.
func (c *Coalescer) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	c.pending = false
	if c.timer != nil {
		c.timer.Stop()
	}
	for c.running {
		c.idle.Wait()
	}
}

// dueLocked is when the pending run should start: holdOff after the latest trigger,
// but no later than maxDelay after the first.
func (c *Coalescer) dueLocked() time.Time {
	due := c.last.Add(c.holdOff)
	if limit := c.first.Add(c.maxDelay); limit.Before(due) {
		due = limit
	}
	return due
}

// scheduleLocked arms the timer for the pending run.
func (c *Coalescer) scheduleLocked(now time.Time) {
	wait := c.dueLocked().Sub(now)
	if c.timer == nil {
		c.timer = time.AfterFunc(wait, c.fire)
		return
	}
	c.timer.Reset(wait)
}

// fire runs fn if a run is due. A timer that was reset may still deliver its old
// expiry, so fire checks the due time again rather than trusting the timer.
func (c *Coalescer) fire() {
	c.mu.Lock()
	if c.stopped || c.running || !c.pending {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	if due := c.dueLocked(); now.Before(due) {
		c.timer.Reset(due.Sub(now))
		c.mu.Unlock()
		return
	}
	c.pending = false
	c.running = true
	c.mu.Unlock()

	defer func() {
		c.mu.Lock()
		c.running = false
		if c.pending && !c.stopped {
			c.scheduleLocked(time.Now())
		}
		c.idle.Broadcast()
		c.mu.Unlock()
	}()
	c.fn()
}
