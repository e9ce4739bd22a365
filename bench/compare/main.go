// Command compare measures Switchyard against its peers on loopback, all in front of
// the same fast backend (bench/backend): the backend direct, an L4 relay as the
// floor for any proxy (bench/relay), an HTTP/1.1 floor in Go (bench/floor, in the
// reference and pinned scenarios), Switchyard (the standalone binary), nginx,
// HAProxy and Caddy, each configured by this command as an equivalent reverse proxy with
// upstream keep-alive and no request logging. Load comes from wrk, h2load and an
// open-loop generator of its own. Targets are measured in alternation, round after
// round, and the report gives medians, ranges and every ratio between targets.
//
// Usage (from the repository; bench/run.sh installs the peers and load tools):
//
//	go run ./bench/compare [-switchyard bin/switchyard] [-quick] [-scenarios reference,pinned,...]
//	    [-rounds 5] [-duration 3s] [-rate 2000] [-out FILE] [-keep]
//	go run ./bench/compare -instructions 3000 [-rounds 3] [-out FILE]
//
// Numbers are reported, never asserted: the command fails only when something is
// broken (a peer that does not start or answers wrongly, a load tool missing).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/switchyard-dev/switchyard/bench/internal/benchkit"
)

func main() {
	os.Exit(run())
}

// options are the command's flags.
type options struct {
	switchyard, out, only, invokedAs string
	quick, keep                      bool
	rounds                           int
	// instructions, when positive, runs the instructions view alone, counting
	// that many requests.
	instructions                   int
	duration, rateDuration, warmup time.Duration
	rate                           int
}

func parseOptions() options {
	var o options
	flag.StringVar(&o.switchyard, "switchyard", "", "switchyard binary; empty builds ./cmd/switchyard into the run's folder")
	flag.StringVar(&o.out, "out", "", "also write the Markdown report to this file")
	flag.StringVar(&o.only, "scenarios", "", "comma-separated scenario keys to run (default: all)")
	flag.StringVar(&o.invokedAs, "invoked-as", "", "the command line to print as the report's command (default: this command's)")
	flag.BoolVar(&o.quick, "quick", false, "a short run for trying the suite: 3 rounds of 1 s, no warm-up; its figures are not for quoting")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's folder (configurations, logs)")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds of alternating runs")
	flag.IntVar(&o.instructions, "instructions", 0, "count the user-space instructions per request of this many requests under callgrind, instead of the scenarios (bench/instructions.sh)")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "length of each wrk and h2load run (whole seconds)")
	flag.DurationVar(&o.rateDuration, "rate-duration", 3*time.Second, "length of each open-loop run")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load on each target before the rounds (0: none)")
	flag.IntVar(&o.rate, "rate", 2000, "requests per second of the open-loop latency runs")
	flag.Parse()
	if o.quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		defaults := map[string]func(){
			"rounds":        func() { o.rounds = 3 },
			"duration":      func() { o.duration = time.Second },
			"rate-duration": func() { o.rateDuration = time.Second },
			"warmup":        func() { o.warmup = 0 },
		}
		for name, apply := range defaults {
			if !set[name] {
				apply()
			}
		}
	}
	return o
}

func run() int {
	o := parseOptions()
	// Whatever happens the run is bounded, and an interrupt still stops every
	// process it started.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancelRun := context.WithTimeout(ctx, 45*time.Minute)
	defer cancelRun()
	if o.instructions > 0 {
		return runInstructionMode(ctx, o)
	}

	dir, bins, cleanup, code := setUp(o, "switchyard-compare-", checkTools)
	if code != 0 {
		return code
	}
	defer cleanup()
	rs := runSettings{rounds: o.rounds, warmup: o.warmup, cores: runtime.NumCPU(), dir: dir, bins: bins, loadAtStart: loadAverage(),
		load: loadSettings{Duration: o.duration, Conns: 32, H2Clients: 8, H2Streams: 4,
			Rate: o.rate, RateDuration: o.rateDuration, RateConns: 64}}
	all := scenarios(bins, rs.load)
	selected, err := selectScenarios(all, o.only)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}

	started := time.Now()
	var results []*scenarioResult
	for _, sc := range selected {
		fmt.Fprintf(os.Stderr, "%s: %s\n", sc.key, sc.title)
		res, err := runScenario(ctx, rs, sc)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", sc.key, err)
			return 1
		}
		results = append(results, res)
	}

	var report strings.Builder
	writeHeader(&report, o, rs, bins, time.Since(started))
	for _, res := range results {
		writeScenario(&report, res)
	}
	return publish(o, report.String())
}

// publish prints the report and writes it to -out, if given; it returns the exit
// status.
func publish(o options, report string) int {
	fmt.Print(report)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	return 0
}

// setUp checks that the run's tools are there, makes its folder (which cleanup
// removes, unless -keep) and builds the binaries. A code other than 0 is the exit
// status of a failure, already reported.
func setUp(o options, folder string, check func() error) (dir string, bins binaries, cleanup func(), code int) {
	if err := check(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return "", bins, nil, 2
	}
	dir, err := os.MkdirTemp("", folder)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return "", bins, nil, 2
	}
	cleanup = func() { _ = os.RemoveAll(dir) }
	if o.keep {
		fmt.Fprintln(os.Stderr, "keeping", dir)
		cleanup = func() {}
	}
	if bins, err = buildBinaries(o.switchyard, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		cleanup()
		return "", bins, nil, 2
	}
	return dir, bins, cleanup, 0
}

// checkTools fails with the list of missing programs.
func checkTools() error {
	return requireTools([]string{"wrk", "h2load", "nginx", "haproxy", "caddy", "taskset"},
		"bench/run.sh installs them (Debian packages wrk, nghttp2-client, nginx, haproxy, caddy, util-linux)")
}

// requireTools fails with the list of the tools not on the PATH, and how to get
// them.
func requireTools(tools []string, howTo string) error {
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: %s", strings.Join(missing, ", "), howTo)
	}
	return nil
}

// buildBinaries builds the backend, the relay and the floor, and Switchyard unless
// given.
func buildBinaries(switchyard, dir string) (binaries, error) {
	root, err := benchkit.ModuleRoot()
	if err != nil {
		return binaries{}, err
	}
	var bins binaries
	if bins.backend, err = goBuild(root, dir, "./bench/backend", "backend"); err != nil {
		return bins, err
	}
	if bins.relay, err = goBuild(root, dir, "./bench/relay", "relay"); err != nil {
		return bins, err
	}
	if bins.floor, err = goBuild(root, dir, "./bench/floor", "floor"); err != nil {
		return bins, err
	}
	// Processes run in folders of their own, so a relative path would not do.
	if bins.switchyard, err = filepath.Abs(switchyard); err != nil {
		return bins, err
	}
	if switchyard == "" {
		if bins.switchyard, err = goBuild(root, dir, "./cmd/switchyard", "switchyard"); err != nil {
			return bins, err
		}
	}
	bins.observeFlags = flagSupported(bins.switchyard, "route-metrics") && flagSupported(bins.switchyard, "access-log")
	bins.http2Alt = http2Alternative(bins.switchyard)
	bins.forwardingFlag = flagSupported(bins.switchyard, "forwarding")
	return bins, nil
}

// http2Targets are the targets of the HTTP/2 scenario: the peers, and Switchyard
// with its other HTTP/2 server where it has one, right after its default run.
func http2Targets(bins binaries) []string {
	if bins.http2Alt == "" {
		return peers
	}
	targets := make([]string, 0, len(peers)+1)
	for _, name := range peers {
		targets = append(targets, name)
		if name == targetSwitchyard {
			targets = append(targets, targetH2Prefix+bins.http2Alt)
		}
	}
	return targets
}

// baselineTargets are the targets of the reference and pinned scenarios: the peers
// with the HTTP/1.1 floor (bench/floor) after the relay, and, where the binary has
// the observability flags, Switchyard with its policies off (switchyard-bare)
// right after its default run, and then, where the binary has --forwarding, the same
// with every request served by its rule's handler (switchyard-bare-handler), which
// tells what the raw forwarding path gains. The floor tells what the Go runtime and the kernel
// cost per request apart from the HTTP work a gateway adds. The performance goals
// are stated with policies off, and request metrics and the access log count
// among the policies (see the policies scenario); the default run, with route
// metrics on, stays in the table so that what an operator gets without flags is
// measured too.
func baselineTargets(bins binaries) []string {
	targets := make([]string, 0, len(peers)+3)
	for _, name := range peers {
		targets = append(targets, name)
		switch {
		case name == targetRelay:
			targets = append(targets, targetFloor)
		case name == targetSwitchyard && bins.observeFlags:
			targets = append(targets, targetBare)
			if bins.forwardingFlag {
				targets = append(targets, targetBareHandler)
			}
		}
	}
	return targets
}

// policyTargets are the targets of the policy comparison: bare and with policies,
// plus the binary's defaults when they differ from bare (route metrics are on by
// default where the flag exists), and the policies run without the raw forwarding
// path where the binary has one.
func policyTargets(bins binaries) []string {
	targets := []string{targetBare, targetPolicies}
	if bins.observeFlags {
		targets = []string{targetBare, targetSwitchyard, targetPolicies}
	}
	if bins.forwardingFlag {
		targets = append(targets, targetPoliciesHandler)
	}
	return targets
}

// selectScenarios keeps the scenarios named in the comma-separated list, all when
// it is empty.
func selectScenarios(all []scenario, list string) ([]scenario, error) {
	if strings.TrimSpace(list) == "" {
		return all, nil
	}
	var keys []string
	for _, sc := range all {
		keys = append(keys, sc.key)
	}
	var out []scenario
	for _, key := range strings.Split(list, ",") {
		key = strings.TrimSpace(key)
		i := slices.Index(keys, key)
		if i < 0 {
			return nil, fmt.Errorf("unknown scenario %q (known: %s)", key, strings.Join(keys, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}
