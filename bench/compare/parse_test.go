package main

import (
	"strings"
	"testing"
	"time"
)

// wrkOutput is what wrk 4.1 prints with --latency, here with errors.
const wrkOutput = `Running 3s test @ http://127.0.0.1:29180/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.93ms    1.08ms   9.15ms   89.14%
    Req/Sec    42.46k     5.34k   51.54k    80.00%
  Latency Distribution
     50%  611.00us
     75%    0.96ms
     90%    2.16ms
     99%    1.02s
  126609 requests in 3.00s, 12.45MB read
  Socket errors: connect 0, read 12, write 1, timeout 3
  Non-2xx or 3xx responses: 57
Requests/sec:  42203.11
Transfer/sec:      4.15MB
`

// h2loadOutput is the summary h2load 1.52 prints for a timed run.
const h2loadOutput = `starting benchmark...
spawning thread #0: 8 total client(s). Timing-based test with 0.25s of warm-up time and 3s of main duration for measurements.
Main benchmark duration is over for thread #0. Stopping all clients.

finished in 3.25s, 15123.00 req/s, 354.69KB/s
requests: 45369 total, 45369 started, 45369 done, 45360 succeeded, 4 failed, 3 errored, 2 timeout
status codes: 45370 2xx, 0 3xx, 1 4xx, 5 5xx
traffic: 709.38KB (726402) total, 128.56KB (131648) headers (space savings 94.98%), 63.95KB (65484) data
                     min         max         mean         sd        +/- sd
time for request:       82us     17.22ms      2.01ms      1.28ms    84.29%
time for connect:        0us         0us         0us         0us     0.00%
req/s           :    1854.18     1941.71     1890.10       35.09    62.50%
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 126609 || r.Elapsed != 3*time.Second || r.RPS != 42203.11 {
		t.Errorf("requests %d in %s at %.2f/s", r.Requests, r.Elapsed, r.RPS)
	}
	want := map[string]float64{"p50": 0.611, "p75": 0.96, "p90": 2.16, "p99": 1020}
	for label, ms := range want {
		if got := r.Latency[label]; got < ms*0.999 || got > ms*1.001 {
			t.Errorf("%s = %.4f ms, want %.4f", label, got, ms)
		}
	}
	if r.Errors != 12+1+3+57 {
		t.Errorf("errors %d, want the socket errors plus the non-2xx answers", r.Errors)
	}
}

func TestParseWrkWithoutErrorsOrWithBrokenOutput(t *testing.T) {
	clean := strings.NewReplacer("  Socket errors: connect 0, read 12, write 1, timeout 3\n", "",
		"  Non-2xx or 3xx responses: 57\n", "").Replace(wrkOutput)
	r, err := parseWrk(clean)
	if err != nil || r.Errors != 0 {
		t.Fatalf("errors %d, err %v", r.Errors, err)
	}
	for name, broken := range map[string]string{
		"no requests line":    strings.Replace(wrkOutput, "requests in", "reqs in", 1),
		"no Requests/sec":     strings.Replace(wrkOutput, "Requests/sec:", "Rate:", 1),
		"no distribution":     strings.Replace(wrkOutput, "%  ", "  ", -1),
		"unknown unit":        strings.Replace(wrkOutput, "611.00us", "611.00xs", 1),
		"connection refused":  "unable to connect to 127.0.0.1:1 Connection refused",
		"empty":               "",
		"interval has a typo": strings.Replace(wrkOutput, "in 3.00s,", "in 3.00q,", 1),
	} {
		if _, err := parseWrk(broken); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseH2load(t *testing.T) {
	r, err := parseH2load(h2loadOutput)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 45360 || r.RPS != 15123 {
		t.Errorf("requests %d at %.2f/s", r.Requests, r.RPS)
	}
	if r.Errors != 4+3+2+1+5 {
		t.Errorf("errors %d, want failed, errored, timed out and non-2xx", r.Errors)
	}
	if r.Latency["min"] != 0.082 || r.Latency["max"] != 17.22 || r.Latency["mean"] != 2.01 {
		t.Errorf("request times %v", r.Latency)
	}
	if r.Elapsed < 2900*time.Millisecond || r.Elapsed > 3100*time.Millisecond {
		t.Errorf("elapsed %s, want about the 3 s main duration", r.Elapsed)
	}
	if _, err := parseH2load(strings.Replace(h2loadOutput, "time for request", "time per request", 1)); err == nil {
		t.Error("output without request times was accepted")
	}
	if _, err := parseH2load("connect: Connection refused"); err == nil {
		t.Error("a failed run was accepted")
	}
}

func TestParseToolDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"611.00us": 611 * time.Microsecond, "2.5ms": 2500 * time.Microsecond, "1.02s": 1020 * time.Millisecond,
		"2.00m": 2 * time.Minute, "1h": time.Hour,
	} {
		if got, err := parseToolDuration(in); err != nil || got != want {
			t.Errorf("%s: %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ms", "12", "1.2.3ms", "5ns"} {
		if _, err := parseToolDuration(in); err == nil {
			t.Errorf("%q was accepted", in)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	// A command name may hold spaces and parentheses.
	line := "4242 (my (odd) proc) S 17 4242 4242 0 -1 4194560 1234 0 0 0 350 125 3 1 20 0 4 0 123456 1000000 200 18446744073709551615"
	st, err := parseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != 17 || st.CPUTicks != 350+125 {
		t.Errorf("ppid %d, ticks %d", st.PPID, st.CPUTicks)
	}
	for _, bad := range []string{"", "4242 no name S 1 2", "4242 (x) S 1 2 3", "4242 (x) S one 2 3 4 5 6 7 8 9 10 11 12 13"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func TestTreeTicksSumsDescendantsOnly(t *testing.T) {
	stats := map[int]procStat{
		100: {PPID: 1, CPUTicks: 10},  // the master
		101: {PPID: 100, CPUTicks: 5}, // a worker
		102: {PPID: 100, CPUTicks: 7}, // another
		103: {PPID: 101, CPUTicks: 1}, // a worker's child
		200: {PPID: 1, CPUTicks: 99},  // someone else
	}
	if got := treeTicks(100, stats); got != 23 {
		t.Errorf("tree of 100: %d ticks, want 23", got)
	}
	if got := treeTicks(101, stats); got != 6 {
		t.Errorf("tree of 101: %d ticks, want 6", got)
	}
}
