package standalone_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rolloutView is the part of an entry of GET /api/v1/rollouts the tests read.
type rolloutView struct {
	Name         string `json:"name"`
	Accepted     bool   `json:"accepted"`
	Phase        string `json:"phase"`
	CurrentStep  int    `json:"currentStep"`
	CanaryWeight int    `json:"canaryWeight"`
	Message      string `json:"message"`
	Waiting      string `json:"waiting"`
}

// rollout returns Rollout default/name as the admin API shows it.
func (g *gateway) rollout(t testing.TB, name string) rolloutView {
	t.Helper()
	var list struct {
		Rollouts []rolloutView `json:"rollouts"`
	}
	g.adminJSON(t, "/api/v1/rollouts", &list)
	for _, r := range list.Rollouts {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("Rollout %s is not listed: %+v", name, list.Rollouts)
	return rolloutView{}
}

// waitRolloutPhase waits until the Rollout has the phase and returns it.
func (g *gateway) waitRolloutPhase(t testing.TB, name, phase string, timeout time.Duration) rolloutView {
	t.Helper()
	var r rolloutView
	deadline := time.Now().Add(timeout)
	for r = g.rollout(t, name); r.Phase != phase; r = g.rollout(t, name) {
		if time.Now().After(deadline) {
			t.Fatalf("Rollout %s is %+v after %v, want phase %s", name, r, timeout, phase)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

// act posts an action on Rollout default/name and returns the status code and the
// rollout as the answer shows it.
func (g *gateway) act(t testing.TB, name, action string) (int, rolloutView) {
	t.Helper()
	resp, err := http.Post(g.admin+"/api/v1/rollouts/default/"+name+"/"+action, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r rolloutView
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, r
}

// rolloutManifests are three routes, each sending everything to its v1 Service, and
// three Rollouts: shop (healthy canary, timed steps, analysis), ratings (failing
// canary, analysis) and manual (steps that wait for an operator, a header match).
const rolloutManifests = `apiVersion: switchyard.dev/v1alpha1
kind: Rollout
metadata: {name: shop, namespace: default}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: shop}
  stable: {name: shop-v1, port: 80}
  canary: {name: shop-v2, port: 80}
  steps: [{weight: 50, pause: 1s}, {weight: 100}]
  analysis: {interval: 1s, minRequests: 5, maxErrorRate: "5%"}
---
apiVersion: switchyard.dev/v1alpha1
kind: Rollout
metadata: {name: ratings, namespace: default}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: ratings}
  stable: {name: ratings-v1, port: 80}
  canary: {name: ratings-v2, port: 80}
  steps: [{weight: 50, pause: 30s}, {weight: 100}]
  analysis: {interval: 1s, minRequests: 5, maxErrorRate: "5%"}
---
apiVersion: switchyard.dev/v1alpha1
kind: Rollout
metadata: {name: manual, namespace: default}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: manual}
  stable: {name: manual-v1, port: 80}
  canary: {name: manual-v2, port: 80}
  headerMatch: [{name: x-canary, value: always}]
  steps: [{weight: 20}, {weight: 80}, {weight: 100}]
`

// TestRolloutStandalone drives three Rollouts through a standalone gateway with a
// state folder: a healthy canary is promoted through its steps under steady load, a
// failing one is aborted by the analysis, and one whose steps wait for an operator is
// promoted one step through the admin API, reaching its canary by header at step 0.
// The gateway is then restarted, and every rollout carries on where it was.
func TestRolloutStandalone(t *testing.T) {
	services, routes := "", ""
	backends := map[string]*loopbackBackend{}
	for _, app := range []string{"shop", "ratings", "manual"} {
		for _, v := range []string{"v1", "v2"} {
			b := startBackend(t, app+"-"+v)
			backends[b.name] = b
			services += serviceYAML(b.name, "", b.port) + "---\n"
		}
		routes += routeYAML(app, "/"+app, app+"-v1") + "---\n"
	}
	backends["ratings-v2"].set(behaviour{status: http.StatusServiceUnavailable})
	port := freePort(t)
	stateDir := t.TempDir()
	g := startGateway(t, map[string]string{
		"gateway.yaml":  gatewayYAML("gw", port),
		"services.yaml": services,
		"routes.yaml":   routes,
		"rollouts.yaml": rolloutManifests,
	}, "--state-dir", stateDir)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	load := startRolloutLoad(g, base+"/shop", base+"/ratings")
	defer load.stop()
	watchShopRollout(t, g, load)
	waitFor(t, 10*time.Second, func() bool { return g.tally(base+"/shop", 20)["shop-v2"] == 20 })
	aborted := g.waitRolloutPhase(t, "ratings", "Aborted", 30*time.Second)
	if aborted.CanaryWeight != 0 || !strings.Contains(aborted.Message, "error rate") {
		t.Errorf("aborted ratings rollout: %+v, want weight 0 and the error rate in the message", aborted)
	}
	waitFor(t, 10*time.Second, func() bool { return g.tally(base+"/ratings", 20)["ratings-v1"] == 20 })

	// The manual rollout holds step 0 until promoted: x-canary requests all reach
	// the canary, the rest split 80/20.
	if r := g.rollout(t, "manual"); r.Phase != "Progressing" || r.CurrentStep != 0 || r.CanaryWeight != 20 || r.Waiting != "promote" {
		t.Errorf("manual rollout before a promote: %+v, want step 0 at 20%% waiting for a promote", r)
	}
	if got := g.tally(base+"/manual", 20, "x-canary", "always"); got["manual-v2"] != 20 {
		t.Errorf("x-canary requests at step 0: %v, want all to manual-v2", got)
	}
	checkSplit(t, "manual rollout at step 0", g.tally(base+"/manual", 200), "manual-v1", "manual-v2", 20)

	if code, r := g.act(t, "manual", "promote"); code != http.StatusOK || r.CurrentStep != 1 || r.CanaryWeight != 80 {
		t.Fatalf("promote manual: %d %+v, want 200 at step 1 with 80%%", code, r)
	}
	waitFor(t, 10*time.Second, func() bool { return g.tally(base+"/manual", 20)["manual-v2"] >= 10 })
	checkSplit(t, "manual rollout at step 1", g.tally(base+"/manual", 200), "manual-v1", "manual-v2", 80)
	load.stop()

	g.proc.Stop(10 * time.Second)
	g = launchGateway(t, g.dir, "--state-dir", stateDir)
	checkRolloutsAfterRestart(t, g, base)

	if code, r := g.act(t, "manual", "abort"); code != http.StatusOK || r.Phase != "Aborted" {
		t.Errorf("abort manual: %d %+v, want 200 Aborted", code, r)
	}
	waitFor(t, 10*time.Second, func() bool { return g.tally(base+"/manual", 20)["manual-v1"] == 20 })
	if code, _ := g.act(t, "manual", "promote"); code != http.StatusConflict {
		t.Errorf("promote an aborted rollout: %d, want 409", code)
	}
	if code, _ := g.act(t, "nonexistent", "promote"); code != http.StatusNotFound {
		t.Errorf("promote an unknown rollout: %d, want 404", code)
	}
}

// watchShopRollout follows the shop rollout until it is promoted, requiring it to
// hold 50% at step 0 with traffic reaching both versions meanwhile, and to end at
// 100%.
func watchShopRollout(t *testing.T, g *gateway, load *rolloutLoad) {
	t.Helper()
	var atStep0, afterStep0 map[string]int
	var r rolloutView
	deadline := time.Now().Add(30 * time.Second)
	for r = g.rollout(t, "shop"); r.Phase != "Promoted"; r = g.rollout(t, "shop") {
		switch {
		case time.Now().After(deadline):
			t.Fatalf("shop rollout is %+v after 30 s, want Promoted", r)
		case r.Phase == "Progressing" && r.CurrentStep == 0 && atStep0 == nil:
			if r.CanaryWeight != 50 {
				t.Errorf("shop rollout at step 0: %+v, want 50%%", r)
			}
			atStep0, _ = load.counts()
		case r.CurrentStep > 0 && atStep0 != nil && afterStep0 == nil:
			afterStep0, _ = load.counts()
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.CanaryWeight != 100 {
		t.Errorf("promoted shop rollout: %+v, want canary weight 100", r)
	}
	if afterStep0 == nil {
		afterStep0, _ = load.counts()
	}
	if atStep0 == nil {
		t.Fatalf("the shop rollout was never seen at step 0")
	}
	// Traffic between the first sight of step 0 and the first sight of a later step.
	v1, v2 := afterStep0["shop-v1"]-atStep0["shop-v1"], afterStep0["shop-v2"]-atStep0["shop-v2"]
	if v1 == 0 || v2 == 0 {
		t.Errorf("shop traffic during step 0 at 50%%: shop-v1 %d, shop-v2 %d; want both", v1, v2)
	}
	t.Logf("shop traffic during step 0: shop-v1 %d, shop-v2 %d", v1, v2)
}

// checkRolloutsAfterRestart requires the rollouts to be where they were before the
// gateway restarted, in the admin API and in the traffic served from the start.
func checkRolloutsAfterRestart(t *testing.T, g *gateway, base string) {
	t.Helper()
	if r := g.rollout(t, "shop"); r.Phase != "Promoted" || r.CanaryWeight != 100 {
		t.Errorf("shop after a restart: %+v, want Promoted at 100%%", r)
	}
	if r := g.rollout(t, "ratings"); r.Phase != "Aborted" || r.CanaryWeight != 0 {
		t.Errorf("ratings after a restart: %+v, want Aborted at 0%%", r)
	}
	if r := g.rollout(t, "manual"); r.Phase != "Progressing" || r.CurrentStep != 1 || r.CanaryWeight != 80 {
		t.Errorf("manual after a restart: %+v, want Progressing at step 1 with 80%%", r)
	}
	if got := g.tally(base+"/shop", 20); got["shop-v2"] != 20 {
		t.Errorf("shop traffic right after a restart: %v, want all to shop-v2", got)
	}
	if got := g.tally(base+"/ratings", 20); got["ratings-v1"] != 20 {
		t.Errorf("ratings traffic right after a restart: %v, want all to ratings-v1", got)
	}
	checkSplit(t, "manual rollout after a restart", g.tally(base+"/manual", 200), "manual-v1", "manual-v2", 80)
}

// checkSplit requires every request to have been answered by the stable or the
// canary, and the canary's share to be within six standard deviations of its weight
// (a correct split fails that with probability below 1e-8).
func checkSplit(t *testing.T, what string, counts map[string]int, stable, canary string, weight int) {
	t.Helper()
	n := 0
	for _, c := range counts {
		n += c
	}
	p := float64(weight) / 100
	sd := math.Sqrt(float64(n) * p * (1 - p))
	if counts[stable]+counts[canary] != n || math.Abs(float64(counts[canary])-p*float64(n)) > 6*sd {
		t.Errorf("%s: %v, want %s to get %d%% of %d +- %.0f", what, counts, canary, weight, n, 6*sd)
	}
}

// rolloutLoad sends requests to each URL in turn, about a hundred a second each,
// until stopped (at most two minutes), and counts who answered, per URL.
type rolloutLoad struct {
	done    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
	mu      sync.Mutex
	by      []map[string]int
}

func startRolloutLoad(g *gateway, urls ...string) *rolloutLoad {
	l := &rolloutLoad{done: make(chan struct{}), by: make([]map[string]int, len(urls))}
	for i := range l.by {
		l.by[i] = map[string]int{}
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		deadline := time.After(2 * time.Minute)
		for {
			select {
			case <-l.done:
				return
			case <-deadline:
				return
			case <-time.After(10 * time.Millisecond):
			}
			for i, url := range urls {
				key := g.send(http.MethodGet, url).key()
				l.mu.Lock()
				l.by[i][key]++
				l.mu.Unlock()
			}
		}
	}()
	return l
}

func (l *rolloutLoad) stop() {
	l.stopped.Do(func() { close(l.done) })
	l.wg.Wait()
}

// counts returns copies of the first two URLs' counts so far.
func (l *rolloutLoad) counts() (map[string]int, map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	clone := func(m map[string]int) map[string]int {
		out := make(map[string]int, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return clone(l.by[0]), clone(l.by[1])
}
