package main

import (
	"math"
	"slices"
	"time"
)

// summary describes one figure of one target over the rounds.
type summary struct {
	// Median is the middle value (the mean of the two middle ones for an even
	// count); NaN without values.
	Median float64
	// Min and Max bound the values.
	Min, Max float64
	// N is the number of values.
	N int
}

// summarize returns the median and range of values, ignoring NaNs (a figure a
// round could not measure).
func summarize(values []float64) summary {
	clean := make([]float64, 0, len(values))
	for _, v := range values {
		if !math.IsNaN(v) {
			clean = append(clean, v)
		}
	}
	if len(clean) == 0 {
		return summary{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	slices.Sort(clean)
	n := len(clean)
	med := clean[n/2]
	if n%2 == 0 {
		med = (clean[n/2-1] + clean[n/2]) / 2
	}
	return summary{Median: med, Min: clean[0], Max: clean[n-1], N: n}
}

// spread is the range of the values relative to their median, as a fraction: 0.1
// means the rounds varied by 10% of the median from the lowest to the highest.
func (s summary) spread() float64 {
	if s.N == 0 || s.Median == 0 {
		return math.NaN()
	}
	return (s.Max - s.Min) / s.Median
}

// ratios returns, for every pair of names, the median of the first divided by the
// median of the second: out[a][b] = medians[a] / medians[b]. A ratio involving a
// missing or zero median is NaN.
func ratios(names []string, medians map[string]float64) map[string]map[string]float64 {
	out := make(map[string]map[string]float64, len(names))
	for _, a := range names {
		out[a] = make(map[string]float64, len(names))
		for _, b := range names {
			va, okA := medians[a]
			vb, okB := medians[b]
			if !okA || !okB || vb == 0 || math.IsNaN(va) || math.IsNaN(vb) {
				out[a][b] = math.NaN()
				continue
			}
			out[a][b] = va / vb
		}
	}
	return out
}

// percentile returns the q-quantile (0 < q <= 1) of sorted by the nearest-rank
// method: the smallest value with at least q of the values at or below it.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// cpuMicrosPerRequest converts clock ticks of CPU time spent over requests into
// microseconds per request; NaN when there were no requests.
func cpuMicrosPerRequest(ticks uint64, requests int64) float64 {
	if requests <= 0 {
		return math.NaN()
	}
	return float64(ticks) * (1e6 / clockTicksPerSecond) / float64(requests)
}

// clockTicksPerSecond is the unit of the CPU times in /proc (USER_HZ), which Linux
// fixes at 100 for user space on every architecture it exposes /proc on.
const clockTicksPerSecond = 100
