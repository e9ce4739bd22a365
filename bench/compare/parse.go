package main

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// loadResult is what one load run measured, whichever tool made it.
type loadResult struct {
	// Requests is the number of responses received in the measured interval.
	Requests int64
	// Elapsed is the measured interval.
	Elapsed time.Duration
	// RPS is requests per second over the interval, as the tool computed it.
	RPS float64
	// Latency maps a percentile label ("p50", "p99", "mean", ...) to milliseconds.
	Latency map[string]float64
	// Errors counts non-2xx answers, socket errors and timeouts.
	Errors int64
}

var (
	wrkRequestsLine = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([0-9.]+[a-z]+),`)
	wrkRPSLine      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkPercentile   = regexp.MustCompile(`(?m)^\s+(50|75|90|99(?:\.\d+)?)%\s+([0-9.]+[a-z]+)\s*$`)
	wrkNon2xx       = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSocketErrors = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads the output of `wrk --latency`: the request count and interval,
// requests per second, the latency distribution, and the errors it reports (non-2xx
// or 3xx answers and socket errors; a 3xx would be a misconfigured peer here).
func parseWrk(out string) (loadResult, error) {
	r := loadResult{Latency: map[string]float64{}}
	m := wrkRequestsLine.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("wrk output has no \"N requests in T\" line")
	}
	r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	elapsed, err := parseToolDuration(m[2])
	if err != nil {
		return r, fmt.Errorf("wrk interval: %w", err)
	}
	r.Elapsed = elapsed
	m = wrkRPSLine.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("wrk output has no Requests/sec line")
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	for _, p := range wrkPercentile.FindAllStringSubmatch(out, -1) {
		d, err := parseToolDuration(p[2])
		if err != nil {
			return r, fmt.Errorf("wrk %s%% latency: %w", p[1], err)
		}
		r.Latency["p"+p[1]] = millis(d)
	}
	if len(r.Latency) == 0 {
		return r, errors.New("wrk output has no latency distribution (run it with --latency)")
	}
	if m = wrkNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		r.Errors += n
	}
	if m = wrkSocketErrors.FindStringSubmatch(out); m != nil {
		for _, field := range m[1:] {
			n, _ := strconv.ParseInt(field, 10, 64)
			r.Errors += n
		}
	}
	return r, nil
}

var (
	h2FinishedLine = regexp.MustCompile(`(?m)^finished in ([0-9.]+[a-z]+), ([0-9.]+) req/s`)
	h2RequestsLine = regexp.MustCompile(`(?m)^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2StatusLine   = regexp.MustCompile(`(?m)^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	h2RequestTimes = regexp.MustCompile(`(?m)^time for request:\s+([0-9.]+[a-z]+)\s+([0-9.]+[a-z]+)\s+([0-9.]+[a-z]+)\s+([0-9.]+[a-z]+)`)
)

// parseH2load reads h2load's summary: requests per second over the main duration,
// the requests that succeeded, the failed, errored and timed-out ones plus every
// non-2xx answer as errors, and the request times (h2load prints no percentiles,
// only min, max, mean and standard deviation).
func parseH2load(out string) (loadResult, error) {
	r := loadResult{Latency: map[string]float64{}}
	m := h2FinishedLine.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("h2load output has no \"finished in\" line")
	}
	r.RPS, _ = strconv.ParseFloat(m[2], 64)
	m = h2RequestsLine.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("h2load output has no requests line")
	}
	counts := make([]int64, len(m)-1)
	for i, field := range m[1:] {
		counts[i], _ = strconv.ParseInt(field, 10, 64)
	}
	r.Requests = counts[3]
	r.Errors = counts[4] + counts[5] + counts[6]
	if m = h2StatusLine.FindStringSubmatch(out); m != nil {
		for _, field := range m[2:] {
			n, _ := strconv.ParseInt(field, 10, 64)
			r.Errors += n
		}
	}
	if r.RPS > 0 {
		r.Elapsed = time.Duration(float64(r.Requests) / r.RPS * float64(time.Second))
	}
	m = h2RequestTimes.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("h2load output has no \"time for request\" line")
	}
	for i, label := range []string{"min", "max", "mean", "sd"} {
		d, err := parseToolDuration(m[i+1])
		if err != nil {
			return r, fmt.Errorf("h2load request time %s: %w", label, err)
		}
		r.Latency[label] = millis(d)
	}
	return r, nil
}

// parseToolDuration reads the durations wrk and h2load print: a decimal number and
// a unit among us, ms, s, m and h.
func parseToolDuration(s string) (time.Duration, error) {
	i := strings.IndexFunc(s, func(c rune) bool { return c >= 'a' && c <= 'z' })
	if i <= 0 {
		return 0, fmt.Errorf("%q: want a number and a unit", s)
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}[s[i:]]
	if unit == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q", s, s[i:])
	}
	return time.Duration(math.Round(v * float64(unit))), nil
}

// millis is d in milliseconds.
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// procStat is what the benchmark reads of /proc/PID/stat.
type procStat struct {
	// PPID is the parent's process ID.
	PPID int
	// CPUTicks is user plus system time of the whole process (all its threads,
	// the finished ones included), in clock ticks.
	CPUTicks uint64
}

// parseProcStat reads the parent PID and the CPU time from the content of
// /proc/PID/stat. The command name, in parentheses, may itself hold spaces and
// parentheses, so fields are counted from the last closing parenthesis.
func parseProcStat(content string) (procStat, error) {
	end := strings.LastIndexByte(content, ')')
	if end < 0 {
		return procStat{}, errors.New("no command name in /proc stat line")
	}
	// After the name: state (field 3), ppid (4), ... utime (14), stime (15).
	fields := strings.Fields(content[end+1:])
	if len(fields) < 13 {
		return procStat{}, fmt.Errorf("/proc stat line has %d fields after the name, want at least 13", len(fields))
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return procStat{}, fmt.Errorf("ppid %q: %w", fields[1], err)
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return procStat{}, fmt.Errorf("utime/stime: %w", err)
	}
	return procStat{PPID: ppid, CPUTicks: utime + stime}, nil
}
