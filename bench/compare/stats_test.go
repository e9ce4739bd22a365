package main

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		values        []float64
		med, min, max float64
		n             int
	}{
		{[]float64{3, 1, 2}, 2, 1, 3, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4, 4},
		{[]float64{5}, 5, 5, 5, 1},
		{[]float64{math.NaN(), 7, 9}, 8, 7, 9, 2},
	} {
		in := slices.Clone(tc.values)
		s := summarize(tc.values)
		if s.Median != tc.med || s.Min != tc.min || s.Max != tc.max || s.N != tc.n {
			t.Errorf("summarize(%v) = %+v", tc.values, s)
		}
		for i := range in {
			if in[i] != tc.values[i] && !math.IsNaN(in[i]) {
				t.Errorf("summarize reordered its input: %v", tc.values)
			}
		}
	}
	if s := summarize(nil); !math.IsNaN(s.Median) || s.N != 0 || !math.IsNaN(s.spread()) {
		t.Errorf("summary of nothing: %+v", s)
	}
}

func TestSpread(t *testing.T) {
	s := summarize([]float64{90, 100, 110, 105, 95})
	if got := s.spread(); math.Abs(got-0.2) > 1e-12 {
		t.Errorf("spread %.4f, want 0.2", got)
	}
	if got := summarize([]float64{0, 0}).spread(); !math.IsNaN(got) {
		t.Errorf("spread around a zero median: %v", got)
	}
}

func TestRatios(t *testing.T) {
	names := []string{"direct", "proxy", "broken", "absent"}
	m := ratios(names, map[string]float64{"direct": 40000, "proxy": 10000, "broken": math.NaN()})
	if m["proxy"]["direct"] != 0.25 || m["direct"]["proxy"] != 4 || m["proxy"]["proxy"] != 1 {
		t.Errorf("ratios %v", m)
	}
	for _, pair := range [][2]string{{"broken", "direct"}, {"direct", "broken"}, {"absent", "proxy"}, {"proxy", "absent"}} {
		if !math.IsNaN(m[pair[0]][pair[1]]) {
			t.Errorf("%s/%s = %v, want NaN", pair[0], pair[1], m[pair[0]][pair[1]])
		}
	}
	zero := ratios([]string{"a", "b"}, map[string]float64{"a": 1, "b": 0})
	if !math.IsNaN(zero["a"]["b"]) || zero["b"]["a"] != 0 {
		t.Errorf("ratios with a zero: %v", zero)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	sorted := make([]time.Duration, 0, 1000)
	for i := 1; i <= 1000; i++ {
		sorted = append(sorted, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 500, 0.9: 900, 0.99: 990, 0.999: 999, 1: 1000, 0.0001: 1} {
		if got := percentile(sorted, q); got != want*time.Millisecond {
			t.Errorf("q=%v: %s, want %s", q, got, want*time.Millisecond)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing")
	}
	if got := percentile([]time.Duration{7}, 0.99); got != 7 {
		t.Errorf("percentile of one value: %s", got)
	}
}

func TestCPUMicrosPerRequest(t *testing.T) {
	// 150 ticks of 10 ms over 10,000 requests: 150 us each.
	if got := cpuMicrosPerRequest(150, 10000); math.Abs(got-150) > 1e-9 {
		t.Errorf("got %v", got)
	}
	if !math.IsNaN(cpuMicrosPerRequest(5, 0)) {
		t.Error("CPU per request without requests")
	}
}
