package main

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCPUPlan(t *testing.T) {
	for _, tc := range []struct {
		pinned        bool
		cores         int
		target, loads string
	}{
		{false, 8, "", ""}, {true, 1, "", ""}, {true, 2, "1", "0"}, {true, 8, "7", "0-6"},
	} {
		target, loads := cpuPlan(tc.pinned, tc.cores)
		if target != tc.target || loads != tc.loads {
			t.Errorf("pinned=%v cores=%d: %q %q, want %q %q", tc.pinned, tc.cores, target, loads, tc.target, tc.loads)
		}
	}
}

func TestScenariosAndSelection(t *testing.T) {
	ls := loadSettings{Conns: 32, H2Clients: 8, H2Streams: 4, Rate: 2000, RateDuration: 3 * time.Second, RateConns: 64}
	all := scenarios(binaries{}, ls)
	keys := map[string]bool{}
	for _, sc := range all {
		if keys[sc.key] {
			t.Errorf("scenario %s listed twice", sc.key)
		}
		keys[sc.key] = true
		if len(sc.targets) < 2 || sc.about == "" || sc.table.Path == "" {
			t.Errorf("scenario %s is incomplete: %+v", sc.key, sc)
		}
	}
	picked, err := selectScenarios(all, " pinned, reference")
	if err != nil || len(picked) != 2 || picked[0].key != "pinned" || picked[1].key != "reference" {
		t.Errorf("selection: %v, %v", picked, err)
	}
	if got, _ := selectScenarios(all, ""); len(got) != len(all) {
		t.Error("an empty selection does not run everything")
	}
	if _, err := selectScenarios(all, "reference,nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("an unknown key: %v", err)
	}
}

func TestPolicyComparisonFollowsTheBinarysFlags(t *testing.T) {
	if got := policyTargets(binaries{}); !slices.Equal(got, []string{targetBare, targetPolicies}) {
		t.Errorf("without the flags: %v", got)
	}
	if got := policyTargets(binaries{observeFlags: true}); !slices.Contains(got, targetSwitchyard) {
		t.Errorf("with the flags the defaults are measured too: %v", got)
	}
	if got := policyTargets(binaries{observeFlags: true, forwardingFlag: true}); !slices.Equal(got,
		[]string{targetBare, targetSwitchyard, targetPolicies, targetPoliciesHandler}) {
		t.Errorf("with --forwarding the policies run is measured on the handler path too: %v", got)
	}
	if about := policiesAbout(binaries{observeFlags: true, forwardingFlag: true}); !strings.Contains(about, "switchyard-policies-handler") {
		t.Errorf("the description does not name the handler-path run: %s", about)
	}
	without, with := policiesAbout(binaries{}), policiesAbout(binaries{observeFlags: true})
	if !strings.Contains(without, "no --route-metrics") || strings.Contains(with, "no --route-metrics") || !strings.Contains(with, "access log to a file") {
		t.Errorf("the descriptions do not follow the flags:\n%s\n%s", without, with)
	}
}

func TestBaselineScenariosMeasureSwitchyardBareAndTheFloor(t *testing.T) {
	withoutBare := slices.Insert(slices.Clone(peers), slices.Index(peers, targetRelay)+1, targetFloor)
	if got := baselineTargets(binaries{}); !slices.Equal(got, withoutBare) {
		t.Errorf("without the flags: %v, want %v", got, withoutBare)
	}
	got := baselineTargets(binaries{observeFlags: true})
	i := slices.Index(got, targetSwitchyard)
	if len(got) != len(peers)+2 || i < 0 || got[i+1] != targetBare {
		t.Errorf("with the flags: %v, want switchyard-bare right after switchyard", got)
	}
	got = baselineTargets(binaries{observeFlags: true, forwardingFlag: true})
	if i := slices.Index(got, targetBare); len(got) != len(peers)+3 || i < 0 || got[i+1] != targetBareHandler {
		t.Errorf("with --forwarding: %v, want switchyard-bare-handler right after switchyard-bare", got)
	}
	for _, sc := range scenarios(binaries{observeFlags: true, forwardingFlag: true}, loadSettings{}) {
		// The request body scenario compares the raw path with the handler path as
		// the reference does.
		baseline := sc.key == "reference" || sc.key == "pinned" || sc.key == "post-1k"
		if baseline && !slices.Contains(sc.targets, targetBare) {
			t.Errorf("scenario %s does not measure switchyard-bare: %v", sc.key, sc.targets)
		}
		if slices.Contains(sc.targets, targetBareHandler) != baseline {
			t.Errorf("scenario %s: switchyard-bare-handler in %v; it belongs to the reference, pinned and post-1k scenarios only", sc.key, sc.targets)
		}
		if slices.Contains(sc.targets, targetFloor) != baseline {
			t.Errorf("scenario %s: the floor in %v; it belongs to the reference, pinned and post-1k scenarios only", sc.key, sc.targets)
		}
	}
}

func TestWholeSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "1", 400 * time.Millisecond: "1", 3 * time.Second: "3", 2600 * time.Millisecond: "3"} {
		if got := wholeSeconds(d); got != want {
			t.Errorf("%s: %s, want %s", d, got, want)
		}
	}
}

func TestSwitchyardCommandObservability(t *testing.T) {
	for _, observe := range []bool{false, true} {
		bins := binaries{switchyard: "/opt/switchyard", observeFlags: observe}
		for name, want := range map[string]string{
			targetBare:            "--route-metrics off --access-log off",
			targetPolicies:        "--route-metrics full --access-log ",
			targetPoliciesHandler: "--route-metrics full --access-log ",
			targetSwitchyard:      "",
		} {
			s := peerSetup{Dir: t.TempDir(), Listen: 28080, Backend: 29090, Table: catchAll()}
			argv, _, err := peerCommand(name, bins, s, map[int]bool{})
			if err != nil {
				t.Fatal(err)
			}
			line := strings.Join(argv, " ")
			if !strings.HasPrefix(line, "/opt/switchyard standalone --config "+s.Dir) {
				t.Errorf("%s: %s", name, line)
			}
			if handler := strings.Contains(line, "--forwarding handler"); handler != (name == targetPoliciesHandler) {
				t.Errorf("%s: --forwarding handler %v: %s", name, handler, line)
			}
			hasFlags := strings.Contains(line, "--route-metrics") || strings.Contains(line, "--access-log")
			if observe && want != "" && !strings.Contains(line, want) || (!observe || want == "") && hasFlags {
				t.Errorf("%s with observability flags %v: %s", name, observe, line)
			}
		}
	}
}

func TestHTTP2ScenarioRunsTheOtherServer(t *testing.T) {
	help := "  -http2 string\n    \tHTTP/2 server for clients when --http1 is fast: fast (built for the data path) or std (net/http); default: $SWITCHYARD_HTTP2, else std\n"
	if got := alternativeIn(help); got != "fast" {
		t.Errorf("alternative to std: %q", got)
	}
	if got := alternativeIn(strings.Replace(help, "else std", "else fast", 1)); got != "std" {
		t.Errorf("alternative to fast: %q", got)
	}
	if got := alternativeIn("  -http1 string\n"); got != "" {
		t.Errorf("a binary without --http2: %q", got)
	}
	if got := http2Targets(binaries{}); !slices.Equal(got, peers) {
		t.Errorf("without --http2: %v", got)
	}
	bins := binaries{switchyard: "/opt/switchyard", http2Alt: "fast"}
	got := http2Targets(bins)
	i := slices.Index(got, targetSwitchyard)
	if len(got) != len(peers)+1 || i < 0 || got[i+1] != "switchyard-h2fast" {
		t.Fatalf("with --http2: %v", got)
	}
	s := peerSetup{Dir: t.TempDir(), Listen: 28080, Backend: 29090, Table: catchAll(), HTTP2: true}
	argv, _, err := peerCommand("switchyard-h2fast", bins, s, map[int]bool{})
	if err != nil || !strings.Contains(strings.Join(argv, " "), "--http2 fast") {
		t.Fatalf("command %v, %v", argv, err)
	}
	if argv, _, _ := peerCommand(targetSwitchyard, bins, s, map[int]bool{}); strings.Contains(strings.Join(argv, " "), "--http2") {
		t.Errorf("the default run chooses a server: %v", argv)
	}
}

func TestManyRoutesScenarioMeasuresOneRouteInTheSameRounds(t *testing.T) {
	for _, sc := range scenarios(binaries{observeFlags: true, forwardingFlag: true}, loadSettings{}) {
		i := slices.Index(sc.targets, targetOneRoute)
		if sc.key != "routes-10k" {
			if i >= 0 {
				t.Errorf("scenario %s measures %s: %v", sc.key, targetOneRoute, sc.targets)
			}
			continue
		}
		if i < 1 || sc.targets[i-1] != targetSwitchyard {
			t.Errorf("routes-10k: %v, want %s right after %s", sc.targets, targetOneRoute, targetSwitchyard)
		}
		one := sc.table.oneRoute()
		if len(one.Routes) != 1 || one.Host != sc.table.Host || one.Path != sc.table.Path || one.MissPath != "" {
			t.Errorf("the one-route table %+v does not take the many-route request %s%s", one, sc.table.Host, sc.table.Path)
		}
	}
}

func TestBodyScriptSendsItsSize(t *testing.T) {
	for _, size := range []int{12, 100, 1024} {
		if got := len(jsonBody(size)); got != size {
			t.Errorf("jsonBody(%d) is %d bytes", size, got)
		}
	}
	path, err := writeBodyScript(t.TempDir(), 1024)
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`wrk.method = "POST"`, `wrk.body = "{\"data\":\"xxx`, `"application/json"`} {
		if !strings.Contains(string(script), want) {
			t.Errorf("the script lacks %s:\n%s", want, script)
		}
	}
}
