// Package outcome counts how the requests sent to a backend ended: how many, how
// many failed, and how long they took. A gateway replica keeps one Recorder per
// backend for its whole life (across configuration versions); the totals are
// cumulative, so that whoever reads them (a Rollout's analysis, the controller
// aggregating its fleet) takes differences between two readings and never needs the
// replica to reset anything.
package outcome

import (
	"sync/atomic"
	"time"
)

// Bounds are the upper bounds of the latency histogram's buckets; a last bucket
// counts everything slower than the last bound. They are fixed, so that totals from
// different replicas add bucket by bucket.
var Bounds = [...]time.Duration{
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// Buckets is the number of histogram buckets: one per bound and one for the rest.
const Buckets = len(Bounds) + 1

// Recorder counts the outcomes of requests to one backend. It is safe for
// concurrent use and never blocks.
type Recorder struct {
	requests atomic.Int64
	errors   atomic.Int64
	latency  [Buckets]atomic.Int64
}

// Record counts one request that took d; failed says it ended in a 5xx answer, a
// connection failure or a timeout.
func (r *Recorder) Record(d time.Duration, failed bool) {
	r.requests.Add(1)
	if failed {
		r.errors.Add(1)
	}
	r.latency[bucketOf(d)].Add(1)
}

// Totals returns the counts so far.
func (r *Recorder) Totals() Totals {
	t := Totals{Requests: r.requests.Load(), Errors: r.errors.Load(), Latency: make([]int64, Buckets)}
	for i := range r.latency {
		t.Latency[i] = r.latency[i].Load()
	}
	return t
}

func bucketOf(d time.Duration) int {
	for i, b := range Bounds {
		if d <= b {
			return i
		}
	}
	return len(Bounds)
}

// Totals are cumulative counts of request outcomes.
type Totals struct {
	// Requests is how many requests ended.
	Requests int64 `json:"requests"`
	// Errors is how many of them failed: 5xx answers, connection failures, timeouts.
	Errors int64 `json:"errors"`
	// Latency counts the requests per histogram bucket (see Bounds); it has Buckets
	// entries, or none when Requests is zero.
	Latency []int64 `json:"latency,omitempty"`
}

// Add returns the sum of t and o, bucket by bucket.
func (t Totals) Add(o Totals) Totals {
	sum := Totals{Requests: t.Requests + o.Requests, Errors: t.Errors + o.Errors, Latency: make([]int64, Buckets)}
	for i := range sum.Latency {
		sum.Latency[i] = at(t.Latency, i) + at(o.Latency, i)
	}
	return sum
}

// Sub returns what happened between an earlier reading o and t. A count that went
// down (its source restarted) is taken as t's own count, since everything t counts
// then happened after o.
func (t Totals) Sub(o Totals) Totals {
	if t.Requests < o.Requests || t.Errors < o.Errors {
		return t.Add(Totals{})
	}
	d := Totals{Requests: t.Requests - o.Requests, Errors: t.Errors - o.Errors, Latency: make([]int64, Buckets)}
	for i := range d.Latency {
		d.Latency[i] = max(at(t.Latency, i)-at(o.Latency, i), 0)
	}
	return d
}

// Quantile returns the upper bound of the bucket that holds the q-th quantile
// (0 < q <= 1) of the latencies, which overstates it by at most one bucket. Zero
// when there are no requests; for the last, unbounded bucket it returns twice the
// last bound.
func (t Totals) Quantile(q float64) time.Duration {
	var n int64
	for _, c := range t.Latency {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := int64(q*float64(n) + 0.999999)
	rank = min(max(rank, 1), n)
	var seen int64
	for i, c := range t.Latency {
		seen += c
		if seen >= rank {
			if i < len(Bounds) {
				return Bounds[i]
			}
			break
		}
	}
	return 2 * Bounds[len(Bounds)-1]
}

func at(s []int64, i int) int64 {
	if i < len(s) {
		return s[i]
	}
	return 0
}
