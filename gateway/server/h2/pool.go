package h2

import (
	"sync"
	"time"
)

// maxIdleWorkers bounds the worker goroutines a server keeps parked. More
// handlers than this may run at once; the extra ones get a goroutine of
// their own that exits with the handler.
const maxIdleWorkers = 1024

// workerIdleTime is how long a parked worker waits for work before it exits,
// so that a burst does not pin its stacks forever. Tests shorten it.
var workerIdleTime = 10 * time.Second

// workerPool runs stream handlers on reused goroutines. A goroutine that has
// already served a handler has a grown stack, so the next handler it runs
// does not pay for growing (copying) a fresh one.
type workerPool struct {
	mu     sync.Mutex
	idle   []*worker // a stack, so that the most recently used (warmest) worker runs next
	closed bool
}

// worker is one parked goroutine; work arrives on ch, and nil means exit.
type worker struct {
	ch chan *stream
}

func (p *workerPool) init() {
	p.idle = make([]*worker, 0, 64)
}

// submit runs st's handler on an idle worker, or on a new goroutine that
// joins the pool when it finishes.
func (p *workerPool) submit(st *stream) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.ch <- st
		return
	}
	p.mu.Unlock()
	go p.run(st)
}

// run serves st and then further streams handed to it, until it has been idle
// for workerIdleTime, the pool is full, or the pool is closed.
func (p *workerPool) run(st *stream) {
	w := &worker{ch: make(chan *stream, 1)}
	idleTime := workerIdleTime
	var timer *time.Timer
	for st != nil {
		st.c.runHandler(st)
		if !p.park(w) {
			return
		}
		if timer == nil {
			timer = time.NewTimer(idleTime)
		} else {
			timer.Reset(idleTime)
		}
		select {
		case st = <-w.ch:
		case <-timer.C:
			if p.unpark(w) {
				return
			}
			// Someone took w off the idle stack just as the timer fired and
			// is about to hand it a stream; serve it.
			st = <-w.ch
		}
	}
	timer.Stop()
}

// park puts w on the idle stack; false means w should exit instead.
func (p *workerPool) park(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) >= maxIdleWorkers {
		return false
	}
	p.idle = append(p.idle, w)
	return true
}

// unpark removes w from the idle stack, reporting whether it was there.
func (p *workerPool) unpark(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.idle {
		if x == w {
			copy(p.idle[i:], p.idle[i+1:])
			p.idle[len(p.idle)-1] = nil
			p.idle = p.idle[:len(p.idle)-1]
			return true
		}
	}
	return false
}

// close makes every parked worker exit and later workers exit once done.
func (p *workerPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.closed = true
	p.mu.Unlock()
	for _, w := range idle {
		w.ch <- nil
	}
}
