package standalone

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/dataplane"
)

const rolloutDoc = `apiVersion: switchyard.dev/v1alpha1
kind: Rollout
metadata:
  name: reviews
  namespace: shop
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: reviews}
  stable: {name: reviews-v1, port: 9080}
  canary: {name: reviews-v2, port: 9080}
  steps: [{weight: 10, pause: 1m}, {weight: 50}, {weight: 100}]
`

var reviewsKey = types.NamespacedName{Namespace: "shop", Name: "reviews"}

// rig is a Runner over a folder of manifests, with a clock the test moves and a
// translation that records the Rollout statuses it is given.
type rig struct {
	t        *testing.T
	dir      string
	stateDir string
	mu       sync.Mutex
	now      time.Time
	seen     []v1alpha1.RolloutStatus
	runner   *Runner
}

func newRig(t *testing.T, stateDir string) *rig {
	dir := t.TempDir()
	g := &rig{t: t, dir: dir, stateDir: stateDir, now: time.Unix(1_700_000_000, 0)}
	g.write(rolloutDoc)
	g.start()
	return g
}

// start makes a new Runner over the same files and state, as a restart would.
func (g *rig) start() {
	logger := slog.New(slog.DiscardHandler)
	r, err := New(g.dir, dataplane.New(dataplane.Options{Logger: logger}), Options{
		Logger: logger, StateDir: g.stateDir,
		Now: func() time.Time { g.mu.Lock(); defer g.mu.Unlock(); return g.now },
	})
	if err != nil {
		g.t.Fatal(err)
	}
	r.translate = g.translate
	g.runner = r
	if err := r.Reload(); err != nil {
		g.t.Fatal(err)
	}
}

// translate is the real translation, plus the Rollout result that the translation
// of Rollouts gives an accepted Rollout; it records the status it was given.
func (g *rig) translate(in *translate.Input) *translate.Output {
	out := translate.Translate(in)
	out.Rollouts = map[types.NamespacedName]translate.RolloutResult{}
	for _, ro := range in.Rollouts {
		g.mu.Lock()
		g.seen = append(g.seen, *ro.Status.DeepCopy())
		g.mu.Unlock()
		out.Rollouts[types.NamespacedName{Namespace: ro.Namespace, Name: ro.Name}] = translate.RolloutResult{
			StableBackend: "shop/reviews-v1:9080", CanaryBackend: "shop/reviews-v2:9080", Rules: 1,
			Accepted: metav1.Condition{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted",
				ObservedGeneration: ro.Generation},
		}
	}
	return out
}

func (g *rig) write(content string) {
	if err := os.WriteFile(filepath.Join(g.dir, "rollout.yaml"), []byte(content), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

// tick moves the clock on and ticks the driver.
func (g *rig) tick(d time.Duration) {
	g.mu.Lock()
	g.now = g.now.Add(d)
	g.mu.Unlock()
	g.runner.driver.Tick(context.Background())
}

// lastSeen is the Rollout status the latest translation was given.
func (g *rig) lastSeen() v1alpha1.RolloutStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.seen) == 0 {
		g.t.Fatal("nothing was translated")
	}
	return g.seen[len(g.seen)-1]
}

func TestRunnerTranslatesWithTheDriversStatus(t *testing.T) {
	g := newRig(t, t.TempDir())
	if st := g.lastSeen(); st.Phase != "" {
		t.Fatalf("the first translation was given a status: %+v", st)
	}
	g.tick(0)
	if st := g.lastSeen(); st.Phase != v1alpha1.RolloutProgressing || st.CanaryWeight != 10 || st.ObservedGeneration != 1 {
		t.Fatalf("the start did not re-translate with the new status: %+v", st)
	}
	if loaded := g.runner.rollouts()[0]; loaded.Status.Phase != "" {
		t.Fatalf("the loaded Rollout was modified: %+v", loaded.Status)
	}
	g.tick(time.Minute)
	if st := g.lastSeen(); st.CanaryWeight != 50 {
		t.Fatalf("the next step was not translated: %+v", st)
	}
	var rollouts admin.Rollouts = g.runner
	view, err := rollouts.ActRollout(context.Background(), "shop", "reviews", "pause", false)
	if err != nil || view.Phase != "Paused" || g.lastSeen().Phase != v1alpha1.RolloutPaused {
		t.Fatalf("pause: %+v %v, translated %+v", view, err, g.lastSeen())
	}
	if _, err := rollouts.ActRollout(context.Background(), "shop", "nope", "pause", false); !errors.Is(err, admin.ErrNotFound) {
		t.Fatalf("an unknown rollout: %v", err)
	}
	report := g.runner.Status().(*StatusReport)
	if st, ok := report.Rollouts[reviewsKey.String()]; !ok || st.Phase != v1alpha1.RolloutPaused || len(st.Conditions) != 2 {
		t.Fatalf("status report: %+v", report.Rollouts)
	}
	if list := rollouts.ListRollouts(); len(list) != 1 || list[0].Phase != "Paused" || list[0].CurrentStep != 1 {
		t.Fatalf("list: %+v", list)
	}
}

func TestRunnerStateSurvivesRestartsAndEdits(t *testing.T) {
	stateDir := t.TempDir()
	g := newRig(t, stateDir)
	g.tick(0)
	g.tick(time.Minute)
	g.start()
	if st := g.lastSeen(); st.Phase != v1alpha1.RolloutProgressing || st.CurrentStep != 1 || st.CanaryWeight != 50 {
		t.Fatalf("the first translation after a restart was given %+v", st)
	}
	if gen := g.runner.rollouts()[0].Generation; gen != 1 {
		t.Fatalf("generation %d after a restart with the same spec", gen)
	}
	g.write(strings.Replace(rolloutDoc, "weight: 10,", "weight: 20,", 1))
	if err := g.runner.Reload(); err != nil {
		t.Fatal(err)
	}
	if gen := g.runner.rollouts()[0].Generation; gen != 2 {
		t.Fatalf("generation %d after a spec change, want 2", gen)
	}
	g.tick(time.Second)
	if st := g.lastSeen(); st.CurrentStep != 0 || st.CanaryWeight != 20 || st.ObservedGeneration != 2 {
		t.Fatalf("a spec change did not restart the rollout: %+v", st)
	}
	// Removing the Rollout removes its state: added again, it starts afresh.
	g.write("# nothing\n")
	if err := g.runner.Reload(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(stateDir); len(entries) != 0 {
		t.Fatalf("state left after the Rollout was removed: %v", entries)
	}
	g.write(rolloutDoc)
	if err := g.runner.Reload(); err != nil {
		t.Fatal(err)
	}
	if st, gen := g.lastSeen(), g.runner.rollouts()[0].Generation; st.Phase != "" || gen != 1 {
		t.Fatalf("a Rollout added again was given %+v at generation %d", st, gen)
	}
}

func TestRunnerWithoutStateDirForgetsOnRestart(t *testing.T) {
	g := newRig(t, "")
	g.tick(0)
	g.tick(time.Minute)
	g.start()
	if st := g.lastSeen(); st.Phase != "" {
		t.Fatalf("state kept without a state directory: %+v", st)
	}
}

// TestRunnerRolloutRemovedAndAddedBetweenTicks checks that a Rollout removed from
// the files and added back before the driver looks again starts afresh, in the
// driver as in translation: the added one is a new object at generation 1, like the
// removed one, and must not inherit the driver's memory of it.
func TestRunnerRolloutRemovedAndAddedBetweenTicks(t *testing.T) {
	g := newRig(t, t.TempDir())
	g.tick(0)
	g.tick(time.Minute)
	if st := g.lastSeen(); st.CurrentStep != 1 || st.ObservedGeneration != 1 {
		t.Fatalf("setup: %+v", st)
	}
	g.write("# nothing\n")
	if err := g.runner.Reload(); err != nil {
		t.Fatal(err)
	}
	g.write(rolloutDoc)
	if err := g.runner.Reload(); err != nil {
		t.Fatal(err)
	}
	g.tick(time.Second)
	if st := g.lastSeen(); st.Phase != v1alpha1.RolloutProgressing || st.CurrentStep != 0 || st.CanaryWeight != 10 {
		t.Fatalf("the Rollout added again was translated with %+v", st)
	}
	if list := g.runner.ListRollouts(); len(list) != 1 || list[0].CurrentStep != 0 || list[0].CanaryWeight != 10 {
		t.Fatalf("list: %+v", list)
	}
}
