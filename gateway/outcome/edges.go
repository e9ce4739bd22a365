package outcome

import (
	"cmp"
	"time"
)

// EdgeKey names one edge of the service graph: requests a node replica forwarded from
// a caller to a callee. A replica keeps one Recorder per edge, as per backend, and
// reports its cumulative Totals by EdgeKey.
type EdgeKey struct {
	// Caller is the workload that sent the requests, "namespace/workload".
	Caller string `json:"caller"`
	// Callee is the Service they were sent to, "namespace/service".
	Callee string `json:"callee"`
}

// Compare orders edges by caller, then callee.
func (k EdgeKey) Compare(o EdgeKey) int {
	return cmp.Or(cmp.Compare(k.Caller, o.Caller), cmp.Compare(k.Callee, o.Callee))
}

// String returns "caller -> callee".
func (k EdgeKey) String() string { return k.Caller + " -> " + k.Callee }

// Percentile returns the q-th quantile (0 < q <= 1) of the latencies, interpolated
// linearly within the histogram bucket that holds it, on the assumption that the
// requests of a bucket are spread evenly over it. The last, unbounded bucket is taken
// to end at twice the last bound, as Quantile does. Zero when there are no requests.
func (t Totals) Percentile(q float64) time.Duration {
	var n int64
	for _, c := range t.Latency {
		n += c
	}
	if n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := q * float64(n)
	var below int64
	for i, c := range t.Latency {
		if c == 0 || float64(below+c) < rank {
			below += c
			continue
		}
		lower, upper := bucketRange(i)
		within := (rank - float64(below)) / float64(c)
		return lower + time.Duration(within*float64(upper-lower))
	}
	_, upper := bucketRange(len(t.Latency) - 1)
	return upper
}

// bucketRange returns the lower and upper bound of histogram bucket i.
func bucketRange(i int) (time.Duration, time.Duration) {
	last := Bounds[len(Bounds)-1]
	switch {
	case i <= 0:
		return 0, Bounds[0]
	case i < len(Bounds):
		return Bounds[i-1], Bounds[i]
	}
	return last, 2 * last
}
