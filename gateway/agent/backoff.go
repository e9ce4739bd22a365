package agent

import (
	"math/rand/v2"
	"time"
)

// backoff is capped exponential backoff with jitter: each wait is drawn from the upper
// half of a window that doubles up to max, so a fleet of replicas that lost the
// controller together does not reconnect in lockstep.
type backoff struct {
	min, max time.Duration
	window   time.Duration
}

// next returns the wait before the next attempt and widens the window.
func (b *backoff) next() time.Duration {
	if b.window < b.min {
		b.window = b.min
	}
	w := b.window
	b.window = min(b.window*2, b.max)
	half := w / 2
	return half + rand.N(w-half+1)
}

// reset starts over from min, after a connection that worked.
func (b *backoff) reset() { b.window = 0 }
