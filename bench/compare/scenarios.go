package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// loadKind is the load generator a scenario uses.
type loadKind int

const (
	// wrkLoad is closed-loop HTTP/1.1: wrk, one thread, a fixed number of
	// connections each sending its next request when the last is answered.
	wrkLoad loadKind = iota
	// h2Load is closed-loop HTTP/2 with prior knowledge: h2load.
	h2Load
	// openLoad is the open-loop HTTP/1.1 generator at a fixed rate.
	openLoad
)

// scenario is one table of the report.
type scenario struct {
	// key names it on the command line.
	key   string
	title string
	// about says, in the report, what differs from the reference.
	about   string
	targets []string
	table   routeTable
	// size is the response body size in bytes.
	size int
	// requestBody, when not zero, makes every request a POST with a body of that
	// many bytes (framed by Content-Length), sent by a wrk script; script is that
	// script's path, written when the scenario runs.
	requestBody int
	script      string
	load        loadKind
	// pinned runs each target on one core of its own, the load and the backend on
	// the others.
	pinned bool
}

// Body sizes: the reference's tiny body, and the two larger ones; requests' bodies
// are of an API call's size.
const (
	tinyBody     = 2
	body10KiB    = 10 << 10
	body1MiB     = 1 << 20
	requestBody1 = 1 << 10
)

// scenarios lists every scenario in report order. The policy comparison depends on
// whether the binary has the observability flags.
func scenarios(bins binaries, ls loadSettings) []scenario {
	return []scenario{
		{key: "reference", title: "One route, default parallelism (reference)", targets: baselineTargets(bins), table: catchAll(), size: tinyBody,
			about: fmt.Sprintf("Load from wrk -t1 -c%d; each proxy at its default parallelism; a %d-byte body.", ls.Conns, tinyBody)},
		{key: "pinned", title: "One route, each proxy pinned to one core", targets: baselineTargets(bins), table: catchAll(), size: tinyBody, pinned: true,
			about: "The proxy alone on the last core with one worker (nginx worker_processes 1, HAProxy nbthread 1, Go programs see one CPU); wrk and the backend on the other cores. CPU time per request is the proxy's user+system time from /proc divided by the requests answered, which a busy machine disturbs far less than req/s."},
		{key: "latency", title: "Latency at a fixed rate (open loop)", targets: peers, table: catchAll(), size: tinyBody, load: openLoad,
			about: fmt.Sprintf("%d requests per second for %s from the open-loop generator of bench/compare (HTTP/1.1 over a pool of %d keep-alive connections; each latency counts from when the schedule released the request, so a stalled proxy is not hidden by a waiting client).",
				ls.Rate, seconds(ls.RateDuration), ls.RateConns)},
		{key: "routes-10k", title: "10,000 routes, the request hits the last one", targets: manyRouteTargets(), table: manyRoutes(10000, 100), size: tinyBody,
			about: "100 host names with 100 routes each: half path prefixes, two fifths exact paths, one tenth regular expressions; the request (Host h99.bench.test, /svc9999/item) matches the last route defined, a prefix. nginx gets one server block per host with its locations, HAProxy three maps keyed by host and path (exact paths, prefixes, regular expressions; one use_backend rule per route would be scanned linearly on every request), Caddy one site block per host with a handle block per route, Switchyard one HTTPRoute per route; switchyard-one-route is Switchyard with a single route that takes the same request."},
		{key: "policies", title: "Switchyard with a typical policy set", targets: policyTargets(bins), table: catchAll(), size: tinyBody,
			about: policiesAbout(bins)},
		{key: "body-10k", title: "10 KiB response body", targets: peers, table: catchAll(), size: body10KiB,
			about: "As the reference, with a 10 KiB body."},
		{key: "body-1m", title: "1 MiB response body", targets: peers, table: catchAll(), size: body1MiB,
			about: "As the reference, with a 1 MiB body."},
		{key: "post-1k", title: "1 KiB request body", targets: baselineTargets(bins), table: catchAll(), size: tinyBody, requestBody: requestBody1,
			about: fmt.Sprintf("As the reference, with every request a POST of a %d-byte JSON body, framed by Content-Length and sent with its head, as API clients send small bodies (wrk with a script).", requestBody1)},
		{key: "http2", title: "HTTP/2 clients", targets: http2Targets(bins), table: catchAll(), size: tinyBody, load: h2Load,
			about: fmt.Sprintf("Load from h2load -t1 -c%d -m%d (HTTP/2 with prior knowledge over cleartext, %d streams in flight); proxies speak HTTP/1.1 with keep-alive to the backend, direct and the relay reach the backend's own h2c.%s",
				ls.H2Clients, ls.H2Streams, ls.H2Clients*ls.H2Streams, http2About(bins))},
	}
}

// manyRouteTargets are the peers, with Switchyard on one route beside Switchyard on
// the many.
func manyRouteTargets() []string {
	targets := slices.Clone(peers)
	return slices.Insert(targets, slices.Index(targets, targetSwitchyard)+1, targetOneRoute)
}

// http2About names the run with the HTTP/2 server Switchyard does not use by
// default, when there is one.
func http2About(bins binaries) string {
	if bins.http2Alt == "" {
		return ""
	}
	return fmt.Sprintf(" %s%s is Switchyard with `--http2 %s`; switchyard uses its default.", targetH2Prefix, bins.http2Alt, bins.http2Alt)
}

// policiesAbout describes the policy comparison.
func policiesAbout(bins binaries) string {
	policy := "switchyard-policies has a TrafficPolicy on the Gateway with a request timeout, retries (connect-failure, reset, gateway-error; default budget), " +
		"a circuit breaker and a local rate limit per client address that admits everything"
	if bins.observeFlags {
		about := policy + ", plus route metrics in full and an access log to a file; switchyard-bare has no policy, route metrics and access log off; " +
			"switchyard has no policy and the binary's default observability"
		if bins.forwardingFlag {
			about += "; switchyard-policies-handler runs as switchyard-policies with `--forwarding handler`"
		}
		return about + "."
	}
	return policy + "; switchyard-bare has none. This binary has no --route-metrics or --access-log flag: both runs have its built-in metrics and no access log."
}

// runSettings are the parameters of a whole run.
type runSettings struct {
	rounds int
	load   loadSettings
	// warmup is how long each target is loaded, unmeasured, before the rounds.
	warmup time.Duration
	cores  int
	dir    string
	bins   binaries
	// loadAtStart is the machine's load average when the run began.
	loadAtStart string
}

// scenarioResult holds every round's figures of every target of a scenario.
type scenarioResult struct {
	scenario scenario
	// samples maps a target to one map of figures per round.
	samples map[string][]map[string]float64
	// notes are said under the scenario's table.
	notes []string
}

// cpuPlan returns the CPUs of the target and of the load and backend: in a pinned
// scenario the last core for the target and the others for the rest, else no
// pinning at all.
func cpuPlan(pinned bool, cores int) (targetCPUs, loadCPUs string) {
	if !pinned || cores < 2 {
		return "", ""
	}
	last := cores - 1
	if last == 1 {
		return "1", "0"
	}
	return strconv.Itoa(last), "0-" + strconv.Itoa(last-1)
}

// runScenario starts the backend and every target, warms each up, then measures
// them in alternation, round after round (A, B, C, A, B, C, ...).
func runScenario(ctx context.Context, rs runSettings, sc scenario) (*scenarioResult, error) {
	if err := sc.table.validRegex(); err != nil {
		return nil, err
	}
	dir := filepath.Join(rs.dir, sc.key)
	err := os.MkdirAll(dir, 0o755)
	if err != nil {
		return nil, err
	}
	if sc.requestBody > 0 {
		if sc.script, err = writeBodyScript(dir, sc.requestBody); err != nil {
			return nil, err
		}
	}
	res := &scenarioResult{scenario: sc, samples: map[string][]map[string]float64{}}
	targetCPUs, loadCPUs := cpuPlan(sc.pinned, rs.cores)
	if sc.pinned && targetCPUs == "" {
		res.notes = append(res.notes, "One core only: nothing was pinned.")
	}
	ports := map[int]bool{}
	backendPort, err := freePort(ports)
	if err != nil {
		return nil, err
	}
	backend, err := startProc("backend", dir, loadCPUs, nil, rs.bins.backend, "-listen", listenAddr(backendPort), "-size", strconv.Itoa(sc.size))
	if err != nil {
		return nil, err
	}
	defer backend.stop()
	if err := waitListening(ctx, backend, backendPort, 10*time.Second); err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	var targets []*target
	defer func() {
		for _, t := range targets {
			if t.proc != nil {
				t.proc.stop()
			}
		}
	}()
	for _, name := range sc.targets {
		setup := peerSetup{Dir: filepath.Join(dir, name), Backend: backendPort, Table: sc.table, HTTP2: sc.load == h2Load, Cores: rs.cores}
		if name == targetOneRoute {
			setup.Table = sc.table.oneRoute()
		}
		if sc.pinned {
			setup.Workers = 1
		}
		t, err := startTarget(ctx, name, rs.bins, setup, targetCPUs, sc.size, ports)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	if err := warmUp(ctx, rs, sc, targets, loadCPUs); err != nil {
		return nil, err
	}
	for round := 1; round <= rs.rounds; round++ {
		for _, t := range targets {
			figures, err := measure(ctx, rs.load, sc, t, loadCPUs)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round, t.name, err)
			}
			res.samples[t.name] = append(res.samples[t.name], figures)
			fmt.Fprintf(os.Stderr, "  round %d %-20s %s\n", round, t.name, brief(figures))
		}
	}
	return res, nil
}

// warmUp loads each target once, unmeasured, so that connection pools are full
// and the first round is not the only one paying for cold caches.
func warmUp(ctx context.Context, rs runSettings, sc scenario, targets []*target, loadCPUs string) error {
	if rs.warmup <= 0 {
		return nil
	}
	warm := rs.load
	warm.Duration, warm.RateDuration = rs.warmup, rs.warmup
	for _, t := range targets {
		if _, err := measure(ctx, warm, sc, t, loadCPUs); err != nil {
			return fmt.Errorf("warm-up of %s: %w", t.name, err)
		}
	}
	return nil
}

// measure runs one load run against t and returns its figures: "rps", the latency
// labels of the load generator, "errors" and "cpu" (the target's CPU microseconds
// per answered request; NaN for direct).
func measure(ctx context.Context, ls loadSettings, sc scenario, t *target, loadCPUs string) (map[string]float64, error) {
	var before uint64
	if t.proc != nil {
		ticks, err := t.proc.cpuTicks()
		if err != nil {
			return nil, err
		}
		before = ticks
	}
	url := "http://" + listenAddr(t.port) + sc.table.Path
	var r loadResult
	var err error
	switch sc.load {
	case wrkLoad:
		r, err = runWrk(ctx, ls, url, sc.table.Host, sc.script, loadCPUs)
	case h2Load:
		r, err = runH2load(ctx, ls, url, sc.table.Host, loadCPUs)
	case openLoad:
		r, err = openLoop{Addr: listenAddr(t.port), Host: sc.table.Host, Path: sc.table.Path,
			Rate: ls.Rate, Duration: ls.RateDuration, Conns: ls.RateConns}.run(ctx)
	}
	if err != nil {
		return nil, err
	}
	figures := map[string]float64{"rps": r.RPS, "errors": float64(r.Errors), "cpu": math.NaN()}
	for label, v := range r.Latency {
		figures[label] = v
	}
	if t.proc != nil {
		after, err := t.proc.cpuTicks()
		if err != nil {
			return nil, err
		}
		figures["cpu"] = cpuMicrosPerRequest(after-before, r.Requests)
	}
	return figures, nil
}

// brief is one line of progress.
func brief(f map[string]float64) string {
	s := fmt.Sprintf("%9.0f req/s", f["rps"])
	if v, ok := f["p99"]; ok {
		s += fmt.Sprintf("  p99 %7.3f ms", v)
	}
	if !math.IsNaN(f["cpu"]) {
		s += fmt.Sprintf("  %6.1f us CPU/req", f["cpu"])
	}
	if f["errors"] > 0 {
		s += fmt.Sprintf("  %.0f errors", f["errors"])
	}
	return s
}
