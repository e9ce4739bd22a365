package rollout

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

const (
	stableBackend = "shop/reviews-v1:9080"
	canaryBackend = "shop/reviews-v2:9080"
)

var reviews = types.NamespacedName{Namespace: "shop", Name: "reviews"}

// world is what a Driver sees in these tests: Rollouts, translation results, a clock
// and a real outcome recorder per backend that the test feeds with requests.
type world struct {
	t        *testing.T
	mu       sync.Mutex
	now      time.Time
	rollouts []*v1alpha1.Rollout
	results  map[types.NamespacedName]translate.RolloutResult
	recorder map[string]*outcome.Recorder
	store    Store
	changes  int
	driver   *Driver
}

func newWorld(t *testing.T, ro *v1alpha1.Rollout) *world {
	w := &world{t: t, now: t0, rollouts: []*v1alpha1.Rollout{ro}, store: NewMemoryStore(),
		recorder: map[string]*outcome.Recorder{stableBackend: {}, canaryBackend: {}},
		results:  map[types.NamespacedName]translate.RolloutResult{reviews: accepted()}}
	w.restart()
	return w
}

// restart replaces the driver with a new one over the same store, as a process
// restart would.
func (w *world) restart() { w.restartWithWarmUp(0) }

// restartWithWarmUp is restart with a WarmUp, as a new leader's driver has.
func (w *world) restartWithWarmUp(warmUp time.Duration) {
	d, err := NewDriver(DriverOptions{
		WarmUp:   warmUp,
		Rollouts: func() []*v1alpha1.Rollout { w.mu.Lock(); defer w.mu.Unlock(); return w.rollouts },
		Results: func() map[types.NamespacedName]translate.RolloutResult {
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.results
		},
		Outcome:  func(b string) outcome.Totals { return w.recorder[b].Totals() },
		Store:    w.store,
		Now:      func() time.Time { w.mu.Lock(); defer w.mu.Unlock(); return w.now },
		OnChange: func() { w.mu.Lock(); w.changes++; w.mu.Unlock() },
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.driver = d
}

// send records n requests to backend, failed of them failing, each taking latency.
func (w *world) send(backend string, n, failed int, latency time.Duration) {
	for i := range n {
		w.recorder[backend].Record(latency, i < failed)
	}
}

// set changes what the driver sees.
func (w *world) set(change func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	change()
}

// tick moves the clock on by d and ticks the driver.
func (w *world) tick(d time.Duration) {
	w.mu.Lock()
	w.now = w.now.Add(d)
	w.mu.Unlock()
	w.driver.Tick(context.Background())
}

// status is the stored status of the reviews Rollout.
func (w *world) status() v1alpha1.RolloutStatus {
	w.t.Helper()
	st, ok, err := w.store.Load(reviews)
	if err != nil || !ok {
		w.t.Fatalf("no stored status: %v", err)
	}
	return st
}

func (w *world) view() admin.RolloutView {
	w.t.Helper()
	views := w.driver.ListRollouts()
	if len(views) != 1 {
		w.t.Fatalf("views: %+v", views)
	}
	return views[0]
}

func accepted() translate.RolloutResult {
	return translate.RolloutResult{StableBackend: stableBackend, CanaryBackend: canaryBackend, Rules: 1,
		Accepted: metav1.Condition{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", Message: "ok"}}
}

func duration(s string) *gwv1.Duration { d := gwv1.Duration(s); return &d }

func int32Ptr(v int32) *int32 { return &v }

// rollout is a Rollout with the given steps and analysis.
func rollout(analysis *v1alpha1.RolloutAnalysis, steps ...v1alpha1.RolloutStep) *v1alpha1.Rollout {
	ro := &v1alpha1.Rollout{Spec: v1alpha1.RolloutSpec{
		Stable: v1alpha1.RolloutBackend{Name: "reviews-v1", Port: 9080},
		Canary: v1alpha1.RolloutBackend{Name: "reviews-v2", Port: 9080},
		Steps:  steps, Analysis: analysis,
	}}
	ro.Namespace, ro.Name, ro.Generation = reviews.Namespace, reviews.Name, 1
	return ro
}

func step(weight int32, pause string) v1alpha1.RolloutStep {
	s := v1alpha1.RolloutStep{Weight: weight}
	if pause != "" {
		s.Pause = duration(pause)
	}
	return s
}

func strictAnalysis() *v1alpha1.RolloutAnalysis {
	return &v1alpha1.RolloutAnalysis{Interval: duration("30s"), MinRequests: int32Ptr(50),
		MaxErrorRate: "1%", MaxLatencyP99: duration("500ms")}
}

func condition(t *testing.T, st v1alpha1.RolloutStatus, kind string) metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(st.Conditions, kind)
	if c == nil {
		t.Fatalf("no %s condition in %+v", kind, st.Conditions)
	}
	return *c
}

func TestHealthyCanaryProgressesToPromoted(t *testing.T) {
	w := newWorld(t, rollout(strictAnalysis(), step(10, "1m"), step(50, "1m"), step(100, "")))
	w.tick(0)
	if st := w.status(); st.Phase != v1alpha1.RolloutProgressing || st.CanaryWeight != 10 || st.ObservedGeneration != 1 {
		t.Fatalf("start: %+v", st)
	}
	if w.changes != 1 {
		t.Fatalf("OnChange called %d times at the start, want 1", w.changes)
	}
	weights := []int32{10}
	for i := 0; i < 40 && w.status().Phase != v1alpha1.RolloutPromoted; i++ {
		w.send(canaryBackend, 100, 0, 10*time.Millisecond)
		w.tick(10 * time.Second)
		if cw := w.status().CanaryWeight; cw != weights[len(weights)-1] {
			weights = append(weights, cw)
		}
	}
	st := w.status()
	if st.Phase != v1alpha1.RolloutPromoted || st.CanaryWeight != 100 || st.CurrentStep != 2 {
		t.Fatalf("after healthy traffic: %+v", st)
	}
	if len(weights) != 3 || weights[1] != 50 || weights[2] != 100 {
		t.Errorf("weights went %v, want [10 50 100]", weights)
	}
	if elapsed := w.now.Sub(t0); elapsed < 2*time.Minute {
		t.Errorf("promoted after %v, before the pauses of two minutes were over", elapsed)
	}
	if !strings.Contains(st.Message, PromotedWarning) {
		t.Errorf("a promoted rollout's message does not warn about deletion: %q", st.Message)
	}
	if c := condition(t, st, ConditionReady); c.Status != metav1.ConditionTrue || c.Reason != "Promoted" {
		t.Errorf("Ready: %+v", c)
	}
	if c := condition(t, st, "Accepted"); c.Status != metav1.ConditionTrue || c.ObservedGeneration != 1 {
		t.Errorf("Accepted: %+v", c)
	}
	if w.changes != 4 {
		t.Errorf("OnChange called %d times, want one per weight and one for the promotion (4)", w.changes)
	}
	if v := w.view(); v.LastWindow == nil || v.LastWindow.Verdict != "passed" || v.LastWindow.Requests != 300 {
		t.Errorf("last window: %+v", v.LastWindow)
	}
}

func TestFailingCanaryAborts(t *testing.T) {
	w := newWorld(t, rollout(strictAnalysis(), step(10, "1m"), step(100, "")))
	w.tick(0)
	// Failures of the stable backend are not the canary's.
	for range 3 {
		w.send(stableBackend, 100, 100, time.Millisecond)
		w.send(canaryBackend, 100, 0, time.Millisecond)
		w.tick(10 * time.Second)
	}
	if st := w.status(); st.Phase != v1alpha1.RolloutProgressing {
		t.Fatalf("the stable backend's failures were held against the canary: %+v", st)
	}
	for i := 0; i < 10 && w.status().Phase == v1alpha1.RolloutProgressing; i++ {
		w.send(canaryBackend, 100, 3, time.Millisecond)
		w.tick(10 * time.Second)
	}
	st := w.status()
	if st.Phase != v1alpha1.RolloutAborted || st.CanaryWeight != 0 || !strings.Contains(st.Message, "error rate 3.00%") {
		t.Fatalf("after a 3%% error rate: %+v", st)
	}
	if c := condition(t, st, ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != "Aborted" || c.Message != st.Message {
		t.Errorf("Ready: %+v", c)
	}
	if v := w.view(); v.LastWindow == nil || v.LastWindow.Verdict != "breached" || v.LastWindow.Errors != 9 {
		t.Errorf("last window: %+v", v.LastWindow)
	}
	// An aborted rollout stays aborted.
	w.send(canaryBackend, 1000, 0, time.Millisecond)
	w.tick(time.Hour)
	if st := w.status(); st.Phase != v1alpha1.RolloutAborted {
		t.Fatalf("an aborted rollout moved: %+v", st)
	}
}

func TestSlowCanaryAborts(t *testing.T) {
	w := newWorld(t, rollout(strictAnalysis(), step(10, "1m"), step(100, "")))
	w.tick(0)
	w.send(canaryBackend, 100, 0, 2*time.Second)
	w.tick(30 * time.Second)
	w.send(canaryBackend, 100, 0, 2*time.Second)
	w.tick(30 * time.Second)
	if st := w.status(); st.Phase != v1alpha1.RolloutAborted || !strings.Contains(st.Message, "p99") {
		t.Fatalf("after slow canary requests: %+v", st)
	}
}

func TestTooFewRequestsWait(t *testing.T) {
	w := newWorld(t, rollout(strictAnalysis(), step(10, "1m"), step(100, "")))
	w.tick(0)
	for range 20 {
		// 40 failing requests a window: too few to judge, so neither pass nor abort.
		w.send(canaryBackend, 20, 20, time.Millisecond)
		w.tick(15 * time.Second)
	}
	st, v := w.status(), w.view()
	if st.Phase != v1alpha1.RolloutProgressing || st.CurrentStep != 0 {
		t.Fatalf("a thin window decided: %+v", st)
	}
	if v.Waiting != "analysis" || v.LastWindow == nil || v.LastWindow.Verdict != "too few requests" {
		t.Fatalf("view while waiting: %+v %+v", v, v.LastWindow)
	}
	if c := condition(t, st, ConditionReady); !strings.Contains(c.Message, "at least 50 canary requests") {
		t.Errorf("Ready message does not say what it waits for: %q", c.Message)
	}
	w.send(canaryBackend, 60, 0, time.Millisecond)
	w.tick(15 * time.Second)
	w.tick(15 * time.Second)
	if st := w.status(); st.CurrentStep != 1 {
		t.Fatalf("a full window did not let the step advance: %+v", st)
	}
}

func TestManualStepWaitsForPromote(t *testing.T) {
	w := newWorld(t, rollout(nil, step(10, "1m"), step(50, ""), step(100, "")))
	w.tick(0)
	if v := w.view(); v.Waiting != "pause" || !v.NextStepAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("view of a timed step: %+v", v)
	}
	w.tick(time.Minute)
	w.tick(240 * time.Hour)
	st := w.status()
	if st.CurrentStep != 1 || st.CanaryWeight != 50 || st.Phase != v1alpha1.RolloutProgressing {
		t.Fatalf("a step without pause moved on its own: %+v", st)
	}
	if v := w.view(); v.Waiting != "promote" || !v.NextStepAt.IsZero() {
		t.Fatalf("view of a manual step: %+v", v)
	}
	v, err := w.driver.ActRollout(context.Background(), "shop", "reviews", "promote", false)
	if err != nil || v.CurrentStep != 2 || v.CanaryWeight != 100 {
		t.Fatalf("promote: %+v %v", v, err)
	}
	// The last step completes the rollout.
	w.tick(time.Second)
	if st := w.status(); st.Phase != v1alpha1.RolloutPromoted {
		t.Fatalf("the last step did not complete the rollout: %+v", st)
	}
}

func TestDriverOperatorActions(t *testing.T) {
	w := newWorld(t, rollout(nil, step(10, "1m"), step(50, "1m"), step(90, "")))
	w.tick(0)
	act := func(action string, full bool) (admin.RolloutView, error) {
		return w.driver.ActRollout(context.Background(), "shop", "reviews", action, full)
	}
	if _, err := act("resume", false); !errors.Is(err, admin.ErrConflict) {
		t.Fatalf("resume of a progressing rollout: %v", err)
	}
	if v, err := act("pause", false); err != nil || v.Phase != "Paused" {
		t.Fatalf("pause: %+v %v", v, err)
	}
	w.tick(time.Hour)
	if st := w.status(); st.Phase != v1alpha1.RolloutPaused || st.CurrentStep != 0 {
		t.Fatalf("a paused rollout moved: %+v", st)
	}
	if v, err := act("resume", false); err != nil || v.Phase != "Progressing" || !v.StepStartedAt.Equal(w.now) {
		t.Fatalf("resume: %+v %v", v, err)
	}
	changes := w.changes
	if v, err := act("promote", true); err != nil || v.Phase != "Promoted" || v.CanaryWeight != 100 {
		t.Fatalf("full promote: %+v %v", v, err)
	}
	if w.changes != changes+1 {
		t.Errorf("a promote did not re-translate")
	}
	if _, err := act("abort", false); !errors.Is(err, admin.ErrConflict) {
		t.Fatalf("abort of a promoted rollout: %v", err)
	}
	if _, err := act("rewind", false); !errors.Is(err, admin.ErrInvalid) {
		t.Fatalf("unknown action: %v", err)
	}
	if _, err := w.driver.ActRollout(context.Background(), "shop", "ratings", "pause", false); !errors.Is(err, admin.ErrNotFound) {
		t.Fatalf("unknown rollout: %v", err)
	}
}

func TestAbortByOperator(t *testing.T) {
	w := newWorld(t, rollout(nil, step(10, "1m"), step(100, "")))
	w.tick(0)
	if v, err := w.driver.ActRollout(context.Background(), "shop", "reviews", "abort", false); err != nil ||
		v.Phase != "Aborted" || v.CanaryWeight != 0 || !strings.Contains(v.Message, "operator") {
		t.Fatalf("abort: %+v %v", v, err)
	}
	if _, err := w.driver.ActRollout(context.Background(), "shop", "reviews", "resume", false); !errors.Is(err, admin.ErrConflict) {
		t.Fatalf("resume of an aborted rollout: %v", err)
	}
}

func TestSpecChangeRestartsTheRollout(t *testing.T) {
	ro := rollout(nil, step(10, "1m"), step(50, ""), step(100, ""))
	w := newWorld(t, ro)
	w.tick(0)
	w.tick(time.Minute)
	if st := w.status(); st.CurrentStep != 1 {
		t.Fatalf("setup: %+v", st)
	}
	changed := ro.DeepCopy()
	changed.Generation = 2
	changed.Spec.Steps[0].Weight = 20
	w.set(func() { w.rollouts = []*v1alpha1.Rollout{changed} })
	w.tick(time.Second)
	st := w.status()
	if st.CurrentStep != 0 || st.CanaryWeight != 20 || st.ObservedGeneration != 2 || !st.StepStartedAt.Time.Equal(w.now) {
		t.Fatalf("after a spec change: %+v", st)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	w := newWorld(t, rollout(nil, step(10, "1m"), step(50, "10m"), step(100, "")))
	w.tick(0)
	w.tick(time.Minute)
	stepStart := w.now
	w.restart()
	w.tick(5 * time.Minute)
	if st := w.status(); st.CurrentStep != 1 || !st.StepStartedAt.Time.Equal(stepStart) {
		t.Fatalf("after a restart: %+v", st)
	}
	if v := w.view(); v.Phase != "Progressing" || v.CurrentStep != 1 || !v.NextStepAt.Equal(stepStart.Add(10*time.Minute)) {
		t.Fatalf("view after a restart: %+v", v)
	}
	w.tick(5 * time.Minute)
	if st := w.status(); st.CurrentStep != 2 {
		t.Fatalf("the restored pause did not end on time: %+v", st)
	}
}

func TestUnacceptedRolloutKeepsItsPlace(t *testing.T) {
	w := newWorld(t, rollout(nil, step(10, "1m"), step(50, "1m"), step(100, "")))
	w.tick(0)
	w.tick(time.Minute)
	w.set(func() {
		w.results = map[types.NamespacedName]translate.RolloutResult{reviews: {Accepted: metav1.Condition{
			Type: "Accepted", Status: metav1.ConditionFalse, Reason: "BackendNotFound", Message: "no Service reviews-v2"}}}
	})
	w.tick(time.Hour)
	st := w.status()
	if st.CurrentStep != 1 || st.Phase != v1alpha1.RolloutProgressing {
		t.Fatalf("an unaccepted rollout moved: %+v", st)
	}
	if c := condition(t, st, ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != "BackendNotFound" {
		t.Errorf("Ready: %+v", c)
	}
	if v := w.view(); v.Accepted || !strings.Contains(v.Message, "no Service reviews-v2") {
		t.Errorf("view: %+v", v)
	}
	if _, err := w.driver.ActRollout(context.Background(), "shop", "reviews", "promote", false); !errors.Is(err, admin.ErrConflict) {
		t.Fatalf("promote of an unaccepted rollout: %v", err)
	}
	w.set(func() { w.results = map[types.NamespacedName]translate.RolloutResult{reviews: accepted()} })
	w.tick(time.Second)
	if st := w.status(); st.CurrentStep != 2 || condition(t, st, ConditionReady).Status != metav1.ConditionTrue {
		t.Fatalf("once accepted again: %+v", st)
	}
}

// flakyStore fails the Saves it is told to.
type flakyStore struct {
	*MemoryStore
	failures int
}

func (f *flakyStore) Save(ctx context.Context, key types.NamespacedName, st v1alpha1.RolloutStatus) error {
	if f.failures > 0 {
		f.failures--
		return errors.New("disk full")
	}
	return f.MemoryStore.Save(ctx, key, st)
}

func TestFailedSaveIsRetried(t *testing.T) {
	w := newWorld(t, rollout(nil, step(10, "1m"), step(100, "")))
	store := &flakyStore{MemoryStore: NewMemoryStore(), failures: 1}
	w.store = store
	w.restart()
	w.tick(0)
	if _, ok, _ := store.Load(reviews); ok {
		t.Fatal("a failed Save stored something")
	}
	w.tick(time.Second)
	if st := w.status(); st.Phase != v1alpha1.RolloutProgressing || st.CanaryWeight != 10 {
		t.Fatalf("after the retry: %+v", st)
	}
	store.failures = 1
	if _, err := w.driver.ActRollout(context.Background(), "shop", "reviews", "pause", false); err == nil ||
		!strings.Contains(err.Error(), "could not be stored") {
		t.Fatalf("an action whose status was not stored: %v", err)
	}
	w.tick(time.Second)
	if st := w.status(); st.Phase != v1alpha1.RolloutPaused {
		t.Fatalf("the action was not stored at the next tick: %+v", st)
	}
}

func TestRolloutsWithoutResultsAreLeftAlone(t *testing.T) {
	w := newWorld(t, rollout(nil, step(10, "1m"), step(100, "")))
	w.set(func() { w.results = nil })
	w.tick(0)
	if _, ok, _ := w.store.Load(reviews); ok {
		t.Fatal("a rollout translation has not seen was started")
	}
	if v := w.view(); v.Accepted || !strings.Contains(v.Message, "not been translated") {
		t.Fatalf("view: %+v", v)
	}
}

func TestAcceptedRolloutWithAnUnusablePlanWaits(t *testing.T) {
	w := newWorld(t, rollout(&v1alpha1.RolloutAnalysis{MaxErrorRate: "lots"}, step(10, "1m"), step(100, "")))
	w.tick(0)
	st := w.status()
	if st.Phase != "" || st.CanaryWeight != 0 {
		t.Fatalf("a rollout with an unusable plan started: %+v", st)
	}
	if c := condition(t, st, ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != ReasonInvalid ||
		!strings.Contains(c.Message, "maxErrorRate") {
		t.Fatalf("Ready: %+v", c)
	}
	if w.changes != 0 {
		t.Errorf("OnChange called %d times for a rollout that did not move", w.changes)
	}
}

// TestRecreatedRolloutStartsAfresh checks that a Rollout deleted and created again
// under the same name between two ticks (a new object, whose status is empty) starts
// from its first step, rather than inheriting the state the driver kept of the old
// object: both are at generation 1, so only their UIDs tell them apart.
func TestRecreatedRolloutStartsAfresh(t *testing.T) {
	old := rollout(nil, step(10, "1m"), step(100, ""))
	old.UID = "first"
	w := newWorld(t, old)
	w.tick(0)
	if _, err := w.driver.ActRollout(context.Background(), "shop", "reviews", "abort", false); err != nil {
		t.Fatal(err)
	}
	again := rollout(nil, step(10, "1m"), step(100, ""))
	again.UID = "second"
	w.set(func() { w.rollouts = []*v1alpha1.Rollout{again} })
	// Deleting the object deleted its status with it.
	w.store.(*MemoryStore).Delete(reviews)
	w.tick(time.Second)
	st, ok, _ := w.store.Load(reviews)
	if !ok || st.Phase != v1alpha1.RolloutProgressing || st.CanaryWeight != 10 || st.CurrentStep != 0 {
		t.Fatalf("the new Rollout's status: %+v (stored %v)", st, ok)
	}
	if v := w.view(); v.Phase != "Progressing" {
		t.Fatalf("view of the new Rollout: %+v", v)
	}
}

// TestAnalysisAddsUpEveryCanaryBackend checks that the analysis counts the canary's
// requests under every name translation gives it, such as the variant a Gateway
// with a client certificate sends to.
func TestAnalysisAddsUpEveryCanaryBackend(t *testing.T) {
	const variant = canaryBackend + "#client=default/client"
	w := newWorld(t, rollout(strictAnalysis(), step(10, "1m"), step(100, "")))
	w.set(func() {
		res := accepted()
		res.CanaryBackends = []string{canaryBackend, variant}
		w.results = map[types.NamespacedName]translate.RolloutResult{reviews: res}
		w.recorder[variant] = &outcome.Recorder{}
	})
	w.tick(0)
	for range 2 {
		w.send(canaryBackend, 20, 0, time.Millisecond)
		w.send(variant, 40, 0, time.Millisecond)
		w.tick(30 * time.Second)
	}
	if v := w.view(); v.LastWindow == nil || v.LastWindow.Requests != 60 || v.LastWindow.Verdict != "passed" {
		t.Fatalf("last window: %+v", v.LastWindow)
	}
	// The step moved on, which starts a new window at the next tick.
	w.tick(time.Second)
	w.send(variant, 60, 30, time.Millisecond)
	w.tick(30 * time.Second)
	if st := w.status(); st.Phase != v1alpha1.RolloutAborted {
		t.Fatalf("failures through the variant did not abort the rollout: %+v", st)
	}
}

// TestWarmUpSkipsTheLifetimeTotalsOfANewLeader checks that a driver with a WarmUp
// opens no analysis window until it is over, so that the lifetime totals replicas
// report to a new leader are not judged as one window's traffic.
func TestWarmUpSkipsTheLifetimeTotalsOfANewLeader(t *testing.T) {
	w := newWorld(t, rollout(strictAnalysis(), step(10, "1m"), step(100, "")))
	w.restartWithWarmUp(40 * time.Second)
	w.tick(0)
	// The replicas' reports arrive during the warm-up: old failures, all at once.
	// Without the warm-up a window opened at the start would end (after its 30 s
	// interval) holding them.
	w.send(canaryBackend, 100, 100, time.Millisecond)
	w.tick(20 * time.Second)
	w.tick(15 * time.Second)
	if st := w.status(); st.Phase != v1alpha1.RolloutProgressing {
		t.Fatalf("old traffic reported during the warm-up was judged: %+v", st)
	}
	// After it, windows judge what happens from then on.
	w.tick(10 * time.Second)
	w.send(canaryBackend, 100, 50, time.Millisecond)
	w.tick(30 * time.Second)
	if st := w.status(); st.Phase != v1alpha1.RolloutAborted {
		t.Fatalf("a failing canary after the warm-up was not aborted: %+v", st)
	}
}
