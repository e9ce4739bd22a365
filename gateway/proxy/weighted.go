package proxy

import (
	"math/rand/v2"
	"net/http"
)

// weightedHandler splits requests among handlers in proportion to their weights.
// The cumulative weights are computed once per configuration version, so a request
// costs one random number and a binary search.
type weightedHandler struct {
	// upper[i] is the sum of the weights of handlers 0..i.
	upper    []uint64
	handlers []http.Handler
}

// add appends a handler with a positive weight.
func (w *weightedHandler) add(weight int32, h http.Handler) {
	total := uint64(0)
	if n := len(w.upper); n > 0 {
		total = w.upper[n-1]
	}
	w.upper = append(w.upper, total+uint64(weight))
	w.handlers = append(w.handlers, h)
}

// pick returns a handler chosen at random by weight. The weighted handler must hold
// at least one handler.
func (w *weightedHandler) pick() http.Handler {
	if len(w.handlers) == 1 {
		return w.handlers[0]
	}
	n := rand.Uint64N(w.upper[len(w.upper)-1])
	// Find the first handler whose cumulative weight exceeds n.
	lo, hi := 0, len(w.upper)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if w.upper[mid] <= n {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return w.handlers[lo]
}

// ServeHTTP forwards the request to a handler chosen by weight.
func (w *weightedHandler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.pick().ServeHTTP(rw, r)
}
