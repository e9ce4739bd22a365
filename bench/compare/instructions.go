package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// The instructions view counts the user-space instructions each proxy executes per
// request, under valgrind's callgrind. Unlike CPU time, the count hardly depends on
// what else runs on the machine, so small changes show run after run on a shared,
// noisy machine. It leaves out the kernel's work (system calls, the network stack)
// and how fast the instructions run (cache misses, frequency), which the CPU views
// measure.

// instructionTargets are the targets of the instructions view, in the order of
// each round: the Go floor, Switchyard bare, with its defaults and with the policy
// set, then nginx and HAProxy. Caddy is left out: it is far behind in every other
// view, and slow under callgrind.
func instructionTargets(bins binaries) []string {
	targets := []string{targetFloor, targetSwitchyard, targetNginx, targetHAProxy}
	if bins.observeFlags {
		targets = []string{targetFloor, targetBare, targetSwitchyard, targetPolicies, targetNginx, targetHAProxy}
	}
	return targets
}

// instructionPass is one table of the instructions view: its targets, and whether
// the clients speak HTTP/2 (with prior knowledge) or HTTP/1.1.
type instructionPass struct {
	http2   bool
	targets []string
}

// instructionPasses are the tables of the instructions view: every target over
// HTTP/1.1, then Switchyard (bare when the binary has the flags), nginx and HAProxy
// with HTTP/2 clients, where Switchyard runs its own HTTP/2 server and the handler
// path rather than its raw HTTP/1.1 forwarding.
func instructionPasses(bins binaries) []instructionPass {
	own := targetSwitchyard
	if bins.observeFlags {
		own = targetBare
	}
	return []instructionPass{
		{targets: instructionTargets(bins)},
		{http2: true, targets: []string{own, targetNginx, targetHAProxy}},
	}
}

// instructionSettings are the parameters of an instructions run.
type instructionSettings struct {
	// requests is how many requests each count covers, after a warm-up of
	// requests/3 that it leaves out.
	requests, rounds int
	dir              string
	bins             binaries
}

// instructionTools are the programs the instructions view runs.
var instructionTools = []string{"valgrind", "callgrind_control", "h2load", "nginx", "haproxy"}

// runInstructions measures every instruction target in rounds and returns the
// report's section.
func runInstructions(ctx context.Context, is instructionSettings) (string, error) {
	ports := map[int]bool{}
	backendPort, err := freePort(ports)
	if err != nil {
		return "", err
	}
	backend, err := startProc("backend", is.dir, "", nil, is.bins.backend, "-listen", listenAddr(backendPort), "-size", "64")
	if err != nil {
		return "", err
	}
	defer backend.stop()
	if err := waitListening(ctx, backend, backendPort, 10*time.Second); err != nil {
		return "", fmt.Errorf("backend: %w", err)
	}
	passes := instructionPasses(is.bins)
	counts := make([]map[string][]float64, len(passes))
	for round := 1; round <= is.rounds; round++ {
		for i, pass := range passes {
			if counts[i] == nil {
				counts[i] = map[string][]float64{}
			}
			for _, name := range pass.targets {
				n, err := countInstructions(ctx, is, name, pass.http2, backendPort, ports, round)
				if err != nil {
					return "", fmt.Errorf("%s (%s): %w", name, protocolName(pass.http2), err)
				}
				fmt.Fprintf(os.Stderr, "instructions: round %d %s %s %.0f per request\n", round, protocolName(pass.http2), name, n)
				counts[i][name] = append(counts[i][name], n)
			}
		}
	}
	var report strings.Builder
	for i, pass := range passes {
		report.WriteString(instructionReport(pass, counts[i], is))
	}
	return report.String(), nil
}

// firstLineOf is the first line of s.
func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// protocolName names the protocol the clients of a pass speak.
func protocolName(http2 bool) string {
	if http2 {
		return "HTTP/2"
	}
	return "HTTP/1.1"
}

// countInstructions starts one target under callgrind, warms it up, and counts the
// instructions of requests made with h2load on four connections, over HTTP/1.1 or
// HTTP/2.
func countInstructions(ctx context.Context, is instructionSettings, name string, http2 bool, backendPort int, ports map[int]bool, round int) (float64, error) {
	dir := filepath.Join(is.dir, fmt.Sprintf("%s-%d", name, round))
	if http2 {
		dir += "-h2"
	}
	out := filepath.Join(dir, "callgrind.out")
	setup := peerSetup{Dir: dir, Backend: backendPort, Table: routeTable{}.oneRoute(), Workers: 1, SingleProcess: true, HTTP2: http2,
		Wrap: []string{"valgrind", "--tool=callgrind", "--callgrind-out-file=" + out},
		// Callgrind cannot follow the signals the Go runtime preempts goroutines
		// with; without them, goroutines yield only at function calls.
		Env: []string{"GODEBUG=asyncpreemptoff=1"}}
	t, err := startTarget(ctx, name, is.bins, setup, "", 64, ports)
	if err != nil && ctx.Err() == nil {
		// A Go program under callgrind, without asynchronous preemption, now and
		// then fails to come up in time; one more start tells that from a fault.
		fmt.Fprintf(os.Stderr, "instructions: %s did not start (%v); starting it again\n", name, firstLineOf(err.Error()))
		t, err = startTarget(ctx, name, is.bins, setup, "", 64, ports)
	}
	if err != nil {
		return 0, err
	}
	defer t.proc.stop()
	url := "http://" + listenAddr(t.port) + "/"
	if _, err := fixedLoad(ctx, url, max(is.requests/3, 1), http2); err != nil {
		return 0, err
	}
	pid := strconv.Itoa(t.proc.cmd.Process.Pid)
	if _, err := execOutput("callgrind_control", "--zero", pid); err != nil {
		return 0, fmt.Errorf("callgrind_control --zero: %w", err)
	}
	if _, err := fixedLoad(ctx, url, is.requests, http2); err != nil {
		return 0, err
	}
	if _, err := execOutput("callgrind_control", "--dump", pid); err != nil {
		return 0, fmt.Errorf("callgrind_control --dump: %w", err)
	}
	total, err := readDump(ctx, out+".1")
	if err != nil {
		return 0, err
	}
	return float64(total) / float64(is.requests), nil
}

// fixedLoad makes n GETs with h2load on four connections, and fails unless every
// one got a 2xx answer: over HTTP/1.1, or over HTTP/2 with four streams in flight on
// each connection.
func fixedLoad(ctx context.Context, url string, n int, http2 bool) (string, error) {
	args := []string{"--h1", "-n", strconv.Itoa(n), "-c", "4", url}
	if http2 {
		args = []string{"-n", strconv.Itoa(n), "-c", "4", "-m", "4", url}
	}
	out, err := runTool(ctx, "", "h2load", args...)
	if err != nil {
		return "", err
	}
	if ok, err := allSucceeded(out, n); !ok {
		return "", err
	}
	return out, nil
}

var h2loadStatusCodes = regexp.MustCompile(`status codes: (\d+) 2xx`)

// allSucceeded reports whether h2load's summary counts n answers of 2xx.
func allSucceeded(out string, n int) (bool, error) {
	m := h2loadStatusCodes.FindStringSubmatch(out)
	if m == nil {
		return false, errors.New("h2load printed no status codes")
	}
	if got, _ := strconv.Atoi(m[1]); got != n {
		return false, fmt.Errorf("%d of %d requests answered 2xx:\n%s", got, n, out)
	}
	return true, nil
}

// readDump waits for callgrind's dump file to be written whole and returns its
// instruction total.
func readDump(ctx context.Context, path string) (int64, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, err := os.Open(path)
		if err == nil {
			total, perr := dumpTotal(f)
			_ = f.Close()
			if perr == nil {
				return total, nil
			}
			err = perr
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, fmt.Errorf("callgrind dump %s: %w", path, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// dumpTotal reads the instruction total of a callgrind dump: its "totals:" line,
// else its "summary:" line, which callgrind writes last.
func dumpTotal(r io.Reader) (int64, error) {
	content, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	for _, key := range []string{"totals:", "summary:"} {
		for line := range strings.SplitSeq(string(content), "\n") {
			if rest, ok := strings.CutPrefix(line, key); ok {
				fields := strings.Fields(rest)
				if len(fields) == 0 {
					break
				}
				return strconv.ParseInt(fields[0], 10, 64)
			}
		}
	}
	return 0, errors.New("no totals in the dump (not written whole yet?)")
}

// instructionReport renders the counts of one pass: the median per target, the
// range, and the ratios to nginx and to Switchyard bare (or with its defaults).
func instructionReport(pass instructionPass, counts map[string][]float64, is instructionSettings) string {
	targets := pass.targets
	var b strings.Builder
	load := "HTTP/1.1, four connections"
	if pass.http2 {
		b.WriteString("## User-space instructions per request, HTTP/2 clients\n\n")
		load = "HTTP/2 with prior knowledge, four connections with four streams in flight each; the proxies speak HTTP/1.1 to the backend"
	} else {
		b.WriteString("## User-space instructions per request\n\n")
	}
	fmt.Fprintf(&b, "Each target runs under valgrind's callgrind, one process with one worker; after %d warm-up requests, "+
		"the instructions of %d GETs (h2load, %s, a 64-byte body) are counted and divided by the requests. "+
		"Go targets run with GODEBUG=asyncpreemptoff=1, which callgrind needs. The kernel's work is not counted. %d rounds, medians.\n\n",
		max(is.requests/3, 1), is.requests, load, is.rounds)
	base := targetBare
	if _, ok := counts[base]; !ok {
		base = targetSwitchyard
	}
	writeRow(&b, []string{"Target", "Instructions per request", "Range", "vs nginx", "vs " + base})
	writeRow(&b, separators(5))
	nginx := summarize(counts[targetNginx]).Median
	own := summarize(counts[base]).Median
	for _, name := range targets {
		s := summarize(counts[name])
		writeRow(&b, []string{name, fmt.Sprintf("%.0f", s.Median), fmt.Sprintf("%.0f-%.0f", s.Min, s.Max),
			ratio(s.Median, nginx), ratio(s.Median, own)})
	}
	b.WriteString("\n")
	return b.String()
}

// ratio renders a/b as "0.94x", or "-" when b is zero or unknown.
func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(b) || math.IsNaN(a) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// checkInstructionTools fails with the list of missing programs.
func checkInstructionTools() error {
	return requireTools(instructionTools,
		"bench/instructions.sh installs them (Debian packages valgrind, nghttp2-client, nginx, haproxy)")
}

// runInstructionMode is the command with -instructions: the instructions view alone,
// printed and written to -out.
func runInstructionMode(ctx context.Context, o options) int {
	dir, bins, cleanup, code := setUp(o, "switchyard-instructions-", checkInstructionTools)
	if code != 0 {
		return code
	}
	defer cleanup()
	started := time.Now()
	section, err := runInstructions(ctx, instructionSettings{requests: o.instructions, rounds: o.rounds, dir: dir, bins: bins})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var report strings.Builder
	report.WriteString("# Switchyard and its peers: instructions per request\n\n")
	fmt.Fprintf(&report, "- Date: %s; whole run %s.\n", time.Now().UTC().Format("2006-01-02"), time.Since(started).Round(time.Second))
	fmt.Fprintf(&report, "- Machine: %s.\n", machine())
	fmt.Fprintf(&report, "- Go: %s; valgrind %s.\n", runtime.Version(), strings.TrimPrefix(cmp.Or(firstLine("valgrind", "--version"), "?"), "valgrind-"))
	fmt.Fprintf(&report, "- Versions: %s.\n", strings.Join(versions(bins), ", "))
	fmt.Fprintf(&report, "- Command: `%s`.\n", commandLine(o))
	fmt.Fprintln(&report, "- Numbers are reported, never asserted.")
	report.WriteString("\n" + section)
	return publish(o, report.String())
}
