// Command resilience measures Switchyard's resilience features end to end: retries
// and outlier detection against a failing endpoint, retry amplification under a
// retry budget, the accuracy and cost of the Redis-backed global rate limit, a Redis
// crash with LocalFallback, and canary rollouts that promote and abort. It starts
// the standalone gateway as real processes, its own backends in this process, and
// redis-server, all on loopback, and prints a Markdown table of the figures.
//
// Usage (from the repository): go run ./bench/resilience [-switchyard bin/switchyard]
// [-scenarios 1,2,3,4,5,6] [-out FILE] [-keep]
//
// Each scenario checks that what it measured makes sense (no 5xx while Redis
// restarts, a rollout that finishes, ...) and the command exits 1 when a check
// fails; timing figures are reported, never checked.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchyard-dev/switchyard/bench/internal/benchkit"
)

// scenario is one numbered measurement.
type scenario struct {
	number int
	title  string
	run    func(ctx context.Context, e *env, r *report) error
}

var scenarios = []scenario{
	{1, "retries and outlier detection", runFailingEndpoint},
	{2, "retry amplification under a budget", runRetryBudget},
	{3, "global rate limit accuracy", runGlobalAccuracy},
	{4, "global rate limit latency", runGlobalLatency},
	{5, "Redis crash with LocalFallback", runRedisCrash},
	{6, "rollouts", runRollouts},
}

func main() {
	os.Exit(run())
}

func run() int {
	bin := flag.String("switchyard", "", "switchyard binary to use; empty builds ./cmd/switchyard into a temporary folder")
	only := flag.String("scenarios", "1,2,3,4,5,6", "comma-separated scenario numbers to run")
	out := flag.String("out", "", "also write the Markdown report to this file")
	keep := flag.Bool("keep", false, "keep the temporary folder (manifests, logs) for inspection")
	flag.Parse()
	selected, err := parseSelection(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}

	// Whatever happens, the whole run is bounded, and an interrupt still stops the
	// processes it started.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancelRun := context.WithTimeout(ctx, 6*time.Minute)
	defer cancelRun()

	e, err := newEnv(ctx, *bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer e.close(*keep)
	if *keep {
		fmt.Fprintln(os.Stderr, "keeping", e.dir)
	}

	r := &report{}
	started := time.Now()
	for _, s := range scenarios {
		if !slices.Contains(selected, s.number) {
			continue
		}
		fmt.Fprintf(os.Stderr, "scenario %d: %s\n", s.number, s.title)
		t0 := time.Now()
		if err := s.run(ctx, e, r); err != nil {
			r.check(false, strconv.Itoa(s.number), "did not complete: %v", err)
		}
		e.stopGateways()
		fmt.Fprintf(os.Stderr, "scenario %d done in %s\n", s.number, time.Since(t0).Round(100*time.Millisecond))
	}

	header := []string{
		"# Resilience figures",
		"",
		fmt.Sprintf("- Date: %s, machine: %d cores, %s; whole run %s",
			time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), time.Since(started).Round(time.Second)),
		"- Command: `" + commandLine() + "` (see bench/resilience/README.md for what each figure means)",
	}
	r.write(os.Stdout, header)
	if *out != "" {
		if err := writeReport(*out, r, header); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	if r.failed() {
		return 1
	}
	return 0
}

func newEnv(ctx context.Context, bin string) (*env, error) {
	dir, err := os.MkdirTemp("", "switchyard-resilience-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir, bin: bin}
	if bin == "" {
		root, err := benchkit.ModuleRoot()
		if err != nil {
			return nil, err
		}
		if e.bin, err = buildSwitchyard(ctx, root, dir); err != nil {
			return nil, err
		}
	}
	// Rollout state is kept under --state-dir by binaries that have the flag.
	e.stateDir = supportsFlag(e.bin, "state-dir")
	return e, nil
}

// stopGateways stops the switchyard processes of the scenario that just ended, so
// that the next one has the machine to itself.
func (e *env) stopGateways() {
	for _, s := range e.gateways {
		s.stop()
	}
	e.gateways = nil
}

func parseSelection(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > len(scenarios) {
			return nil, fmt.Errorf("-scenarios: %q is not a scenario number (1-%d)", f, len(scenarios))
		}
		out = append(out, n)
	}
	return out, nil
}

// commandLine is how this run was started, as a reader would repeat it.
func commandLine() string {
	args := []string{"go run ./bench/resilience"}
	flag.Visit(func(f *flag.Flag) {
		if f.Name != "out" && f.Name != "keep" {
			args = append(args, "-"+f.Name+" "+f.Value.String())
		}
	})
	return strings.Join(args, " ")
}

func writeReport(path string, r *report, header []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	r.write(f, header)
	return f.Close()
}
