package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// writeHeader prints the report's title, the machine, the versions, the command
// and how to read the tables.
func writeHeader(w io.Writer, o options, rs runSettings, bins binaries, took time.Duration) {
	fmt.Fprintln(w, "# Switchyard and its peers on loopback")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- Date: %s; whole run %s.\n", time.Now().UTC().Format("2006-01-02"), took.Round(time.Second))
	fmt.Fprintf(w, "- Machine: %s; load average %s at the start, %s at the end (other work on the machine shows here).\n",
		machine(), rs.loadAtStart, loadAverage())
	fmt.Fprintf(w, "- Go: %s (this command, the backend, the relay, the floor and Switchyard).\n", runtime.Version())
	fmt.Fprintf(w, "- Versions: %s.\n", strings.Join(versions(bins), ", "))
	fmt.Fprintf(w, "- Command: `%s`%s.\n", commandLine(o), quickNote(o))
	fmt.Fprintf(w, "- Method: %d rounds; in each round every target of a scenario is measured once, in the order of its table "+
		"(A, B, C, A, B, C, ...), %s. wrk and h2load runs last %s, open-loop runs %s. "+
		"Tables give the median over the rounds and the range (lowest–highest); spread is that range over the median. "+
		"CPU µs/req is the target's own user+system time (all its processes and threads, from /proc) over the requests it answered; "+
		"direct has none. Errors are non-2xx answers, socket errors and timeouts, summed over the rounds.\n",
		rs.rounds, warmupNote(rs.warmup), wholeSeconds(rs.load.Duration)+" s", seconds(rs.load.RateDuration))
	fmt.Fprintln(w, "- Peers: nginx with worker_processes auto, HAProxy with nbthread = cores, Caddy, Switchyard, the relay and the floor with Go's default GOMAXPROCS; "+
		"every proxy keeps idle HTTP/1.1 connections to the backend (64; the relay and the floor one per client connection) and logs no requests; nginx's 1,000-requests-per-connection limits are lifted and it passes large bodies through without temporary files.")
	fmt.Fprintf(w, "- Switchyard observability: %s\n", observeNote(bins))
	fmt.Fprintln(w, "- Numbers are reported, never asserted. On a small machine the load generator, the backend and the proxy share the cores: "+
		"compare ratios within a table rather than absolute figures across machines.")
	fmt.Fprintln(w)
}

func warmupNote(d time.Duration) string {
	if d <= 0 {
		return "without a warm-up"
	}
	return "after one unmeasured " + seconds(d) + " run of each"
}

func quickNote(o options) string {
	if o.quick {
		return " (quick mode: for trying the suite, not for quoting)"
	}
	return ""
}

func observeNote(bins binaries) string {
	if bins.observeFlags {
		return "switchyard and the peer comparisons use the binary's defaults; switchyard-bare runs with `--route-metrics off --access-log off`, " +
			"switchyard-policies with `--route-metrics full --access-log FILE`" + handlerNote(bins) + "."
	}
	return "this binary has no `--route-metrics` or `--access-log` flag, so every Switchyard run has its built-in metrics and no access log; " +
		"the policies run differs from the bare one by the TrafficPolicy alone."
}

// handlerNote names the run without the raw forwarding path, where there is one.
func handlerNote(bins binaries) string {
	if !bins.forwardingFlag {
		return ""
	}
	return "; switchyard-bare-handler runs as switchyard-bare with `--forwarding handler` (every request through its rule's handler, " +
		"no raw forwarding path)"
}

// commandLine is how the run was started.
func commandLine(o options) string {
	if o.invokedAs != "" {
		return o.invokedAs
	}
	return "go run ./bench/compare " + strings.Join(os.Args[1:], " ")
}

// loadAverage is the one-minute load average from /proc/loadavg, "?" if unknown.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// machine describes the processor, cores, memory and kernel.
func machine() string {
	model := "unknown processor"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	parts := []string{model, strconv.Itoa(runtime.NumCPU()) + " cores"}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kib int64
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kib); err == nil {
			parts = append(parts, fmt.Sprintf("%.0f GiB", float64(kib)/(1<<20)))
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		parts = append(parts, "Linux "+strings.TrimSpace(string(data)))
	}
	return strings.Join(parts, ", ")
}

// versions asks each program for its version.
func versions(bins binaries) []string {
	first := firstLine
	field := func(line string, i int) string {
		f := strings.Fields(line)
		if i < len(f) {
			return f[i]
		}
		return "?"
	}
	nginx := strings.TrimPrefix(first("nginx", "-v"), "nginx version: ")
	return []string{
		"Switchyard " + strings.TrimPrefix(first(bins.switchyard, "version"), "switchyard "),
		strings.Replace(nginx, "/", " ", 1),
		"HAProxy " + field(first("haproxy", "-v"), 2),
		"Caddy " + field(first("caddy", "version"), 0),
		"wrk " + strings.TrimPrefix(field(first("wrk", "-v"), 1), "debian/"),
		"h2load " + strings.TrimPrefix(field(first("h2load", "--version"), 1), "nghttp2/"),
	}
}

// firstLine is the first line a program prints, trimmed; "" when it prints none.
func firstLine(name string, args ...string) string {
	out, _ := execOutput(name, args...)
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(line)
}

// seconds renders d in seconds, as "0.5 s".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
}
