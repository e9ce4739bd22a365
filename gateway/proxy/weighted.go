package proxy

import (
	"math/rand/v2"
	"net/http"
)

// weighted splits requests among items in proportion to their weights. The
// cumulative weights are computed once per configuration version, so a request
// costs one random number and a binary search.
type weighted[T any] struct {
	// upper[i] is the sum of the weights of items 0..i.
	upper []uint64
	items []T
}

// add appends an item with a positive weight.
func (w *weighted[T]) add(weight int32, item T) {
	total := uint64(0)
	if n := len(w.upper); n > 0 {
		total = w.upper[n-1]
	}
	w.upper = append(w.upper, total+uint64(weight))
	w.items = append(w.items, item)
}

// pick returns an item chosen at random by weight. w must hold at least one item.
func (w *weighted[T]) pick() T {
	if len(w.items) == 1 {
		return w.items[0]
	}
	n := rand.Uint64N(w.upper[len(w.upper)-1])
	// Find the first item whose cumulative weight exceeds n.
	lo, hi := 0, len(w.upper)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if w.upper[mid] <= n {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return w.items[lo]
}

// weightedHandler splits requests among handlers by weight.
type weightedHandler struct {
	weighted[http.Handler]
}

// ServeHTTP forwards the request to a handler chosen by weight.
func (w *weightedHandler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.pick().ServeHTTP(rw, r)
}
