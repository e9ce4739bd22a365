package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/bench/internal/benchkit"
	"github.com/switchyard-dev/switchyard/gateway/admin"
)

// Rollout plans and load of scenario 6.
const (
	rolloutRate    = 200
	rolloutTimeout = 40 * time.Second
	// rolloutTail is how long load continues after the rollout finished, to measure
	// the canary's share once it is promoted or aborted.
	rolloutTail = time.Second
	pollEvery   = 100 * time.Millisecond
)

func rolloutSteps() []v1alpha1.RolloutStep {
	return []v1alpha1.RolloutStep{
		{Weight: 20, Pause: ptr(gwv1.Duration("2s"))},
		{Weight: 50, Pause: ptr(gwv1.Duration("2s"))},
		{Weight: 100},
	}
}

func rolloutAnalysis() *v1alpha1.RolloutAnalysis {
	return &v1alpha1.RolloutAnalysis{Interval: ptr(gwv1.Duration("1s")), MinRequests: ptr(int32(20)), MaxErrorRate: "5%"}
}

// runRollouts is scenario 6: a healthy canary promoted step by step, and a failing
// one aborted.
func runRollouts(ctx context.Context, e *env, r *report) error {
	const scenario = "6 rollout"
	healthy, err := runRollout(ctx, e, "healthy", modeOK)
	if err != nil {
		return err
	}
	r.check(healthy.final == v1alpha1.RolloutPromoted, scenario, "healthy canary: phase %q after %s, not Promoted (%s)",
		healthy.final, rolloutTimeout, healthy.message)
	r.add(scenario, "healthy canary: time to Promoted", finishTime(healthy),
		"steps 20% (2s), 50% (2s), 100%; analysis every 1s, minRequests 20, maxErrorRate 5%; from the gateway serving")
	for _, s := range healthy.steps {
		r.add(scenario, fmt.Sprintf("healthy canary: share at step %d (weight %d%%)", s.step, s.weight), percent(s.share()),
			fmt.Sprintf("%d of %d responses, held %s", s.canary, s.total, seconds(s.held)))
	}
	r.add(scenario, "healthy canary: share once Promoted", percent(healthy.after.share()),
		fmt.Sprintf("%d of %d responses in the %s after", healthy.after.canary, healthy.after.total, rolloutTail))
	r.check(healthy.after.total > 0 && healthy.after.share() >= 0.99, scenario,
		"healthy canary: the canary served %s of the traffic after Promoted", percent(healthy.after.share()))

	failing, err := runRollout(ctx, e, "failing", modeFail)
	if err != nil {
		return err
	}
	r.check(failing.final == v1alpha1.RolloutAborted, scenario, "failing canary: phase %q after %s, not Aborted (%s)",
		failing.final, rolloutTimeout, failing.message)
	r.add(scenario, "failing canary (503): time to Aborted", finishTime(failing), failing.message)
	r.add(scenario, "failing canary: share once Aborted", percent(failing.after.share()),
		fmt.Sprintf("%d of %d responses in the %s after", failing.after.canary, failing.after.total, rolloutTail))
	r.check(failing.after.total > 0 && failing.after.canary == 0, scenario,
		"failing canary: the canary served %d of %d requests after Aborted", failing.after.canary, failing.after.total)
	return nil
}

// finishTime is the time to the final phase, or what the rollout was left at.
func finishTime(run *rolloutRun) string {
	if run.elapsed == 0 {
		return fmt.Sprintf("not finished (%s)", run.final)
	}
	return seconds(run.elapsed)
}

// stepShare counts the responses while one step was in force.
type stepShare struct {
	step, weight  int
	canary, total int
	held          time.Duration
}

func (s stepShare) share() float64 { return share(int64(s.canary), int64(s.total)) }

// rolloutRun is what one rollout came to.
type rolloutRun struct {
	final   v1alpha1.RolloutPhase
	message string
	// elapsed is from the gateway serving to the final phase.
	elapsed time.Duration
	steps   []stepShare
	// after counts the responses to requests sent once the final phase was seen.
	after stepShare
}

// runRollout serves a route from stable to canary (whose backend answers in
// canaryMode) under a Rollout, sends load and polls the rollout until it is
// Promoted or Aborted, then for rolloutTail more.
func runRollout(ctx context.Context, e *env, name string, canaryMode mode) (*rolloutRun, error) {
	probe, err := e.newBackend("probe", modeOK)
	if err != nil {
		return nil, err
	}
	stable, err := e.newBackend("stable", modeOK)
	if err != nil {
		return nil, err
	}
	canary, err := e.newBackend("canary", canaryMode)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &manifests{}
	m.add(benchkit.Gateway(namespace, port), routeObject("main", "/", "stable"), routeObject("probe", probePath, "probe"))
	m.add(serviceObjects("stable", stable)...)
	m.add(serviceObjects("canary", canary)...)
	m.add(serviceObjects("probe", probe)...)
	m.add(rolloutObject(name, rolloutSteps(), rolloutAnalysis()))
	gw, err := e.startSwitchyard(ctx, "s6-"+name, port, m, "")
	if err != nil {
		return nil, err
	}
	serving := time.Now()

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var results []result
	var loadErr error
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		results, loadErr = runLoad(loadCtx, loadSpec{Targets: []string{gw.gatewayURL + "/"},
			Requests: int(rolloutRate * (rolloutTimeout + rolloutTail).Seconds()), Rate: rolloutRate,
			Concurrency: 16, MaxDuration: rolloutTimeout + rolloutTail})
	}()
	timeline, err := pollRollout(ctx, gw, name, rolloutTimeout)
	if err == nil {
		time.Sleep(rolloutTail)
	}
	stopLoad()
	<-loaded
	if err != nil {
		return nil, err
	}
	if loadErr != nil {
		return nil, loadErr
	}
	return summarise(timeline, results, serving, canary.name), nil
}

// observation is the rollout's state as one poll saw it.
type observation struct {
	at      time.Time
	phase   v1alpha1.RolloutPhase
	step    int
	weight  int
	message string
}

// pollRollout polls the admin API until the rollout is Promoted or Aborted or the
// timeout passes, and returns every change it saw (the first poll included).
func pollRollout(ctx context.Context, gw *switchyard, name string, timeout time.Duration) ([]observation, error) {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var timeline []observation
	var lastErr error
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return timeline, err
		}
		if !gw.running() {
			return timeline, fmt.Errorf("switchyard exited\n%s", benchkit.Tail(gw.logPath, 20))
		}
		obs, err := fetchRollout(client, gw.adminAddr, name)
		if err != nil {
			lastErr = err
		} else if n := len(timeline); n == 0 || timeline[n-1].phase != obs.phase || timeline[n-1].step != obs.step ||
			timeline[n-1].weight != obs.weight {
			timeline = append(timeline, obs)
			if obs.phase == v1alpha1.RolloutPromoted || obs.phase == v1alpha1.RolloutAborted {
				return timeline, nil
			}
		}
		time.Sleep(pollEvery)
	}
	if len(timeline) == 0 && lastErr != nil {
		return nil, fmt.Errorf("GET /api/v1/rollouts never answered usefully: %w", lastErr)
	}
	return timeline, nil
}

// fetchRollout reads one rollout's state from GET /api/v1/rollouts.
func fetchRollout(client *http.Client, adminAddr, name string) (observation, error) {
	resp, err := client.Get("http://" + adminAddr + "/api/v1/rollouts")
	if err != nil {
		return observation{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return observation{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return observation{}, fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	obs, err := findRollout(body, name)
	obs.at = time.Now()
	return obs, err
}

// findRollout picks the named rollout out of the answer of GET /api/v1/rollouts.
func findRollout(body []byte, name string) (observation, error) {
	var list struct {
		Rollouts []admin.RolloutView `json:"rollouts"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return observation{}, fmt.Errorf("decode rollouts: %w", err)
	}
	for _, v := range list.Rollouts {
		if v.Namespace == namespace && v.Name == name {
			return observation{phase: v1alpha1.RolloutPhase(v.Phase), step: int(v.CurrentStep),
				weight: int(v.CanaryWeight), message: v.Message}, nil
		}
	}
	return observation{}, fmt.Errorf("rollout %q is not listed", name)
}

// summarise attributes each response to the step in force when its request was
// sent, and counts the canary's answers.
func summarise(timeline []observation, results []result, serving time.Time, canaryName string) *rolloutRun {
	run := &rolloutRun{}
	if len(timeline) == 0 {
		return run
	}
	last := timeline[len(timeline)-1]
	runEnd := serving.Add(span(results))
	if len(results) > 0 {
		runEnd = results[0].Sent.Add(span(results))
	}
	run.final, run.message = last.phase, last.message
	if last.phase == v1alpha1.RolloutPromoted || last.phase == v1alpha1.RolloutAborted {
		run.elapsed = last.at.Sub(serving)
	}
	for i, obs := range timeline {
		if obs.phase != v1alpha1.RolloutProgressing && obs.phase != v1alpha1.RolloutPaused {
			continue
		}
		// The last observation's step lasts to the end of the run; every request
		// sent after it counts for it.
		end, countUntil := runEnd, runEnd.Add(time.Hour)
		if i+1 < len(timeline) {
			end, countUntil = timeline[i+1].at, timeline[i+1].at
		}
		s := stepShare{step: obs.step, weight: obs.weight, held: end.Sub(obs.at)}
		countCanary(&s, results, obs.at, countUntil, canaryName)
		run.steps = append(run.steps, s)
	}
	if run.elapsed > 0 {
		run.after = stepShare{weight: -1}
		countCanary(&run.after, results, last.at, runEnd.Add(time.Hour), canaryName)
	}
	return run
}

// countCanary adds the answered requests sent in [from, to) to s.
func countCanary(s *stepShare, results []result, from, to time.Time, canaryName string) {
	for _, res := range results {
		if res.Status == 0 || res.Sent.Before(from) || !res.Sent.Before(to) {
			continue
		}
		s.total++
		if res.Backend == canaryName {
			s.canary++
		}
	}
}
