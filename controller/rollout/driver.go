package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

// DefaultInterval is how often Run ticks unless told otherwise: often enough for
// short analysis intervals, and a tick costs little when nothing is due.
const DefaultInterval = time.Second

// DriverOptions connect a Driver to the Rollouts, translation and traffic it drives.
type DriverOptions struct {
	// Rollouts returns the Rollouts as they are now. The driver never modifies them.
	Rollouts func() []*v1alpha1.Rollout
	// Results returns the latest translation's results, by Rollout. A Rollout
	// translation has not seen yet is left alone until it has.
	Results func() map[types.NamespacedName]translate.RolloutResult
	// Outcome returns the cumulative totals of the requests sent to a backend (by
	// its IR name), over every replica that serves it.
	Outcome func(backend string) outcome.Totals
	// Store keeps the statuses. Required.
	Store Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Interval is how often Run ticks; zero means DefaultInterval.
	Interval time.Duration
	// OnChange is called, without the driver's lock, after a change that
	// translation must see (a weight, a phase or a restart): it re-translates.
	OnChange func()
	// Logger receives the driver's decisions; nil means slog.Default().
	Logger *slog.Logger
	// WarmUp is how long after the Driver is made no analysis window opens. A
	// controller that has just become leader hears each replica's lifetime totals
	// as new in its first reports; a window opened before they all arrived would
	// judge old traffic. Zero opens windows at once (standalone, whose totals are
	// its own from the start).
	WarmUp time.Duration
}

// Driver moves Rollouts through their steps: it starts them, measures the canary's
// traffic in analysis windows, applies the state machine, and writes each change of
// status to its Store. It is safe for concurrent use.
//
// After a rollout's first Load the Driver trusts its own copy of the status, since a
// store read back from an informer may lag behind the driver's own writes. A new
// Driver must therefore be made whenever something else may have written the
// statuses, such as at the start of each leadership term.
type Driver struct {
	opts DriverOptions
	// measureFrom is when analysis windows may first open (see WarmUp).
	measureFrom time.Time

	mu      sync.Mutex
	entries map[types.NamespacedName]*entry
}

// entry is what the driver holds of one rollout between ticks.
type entry struct {
	// uid is the UID of the Rollout object the entry describes. A Rollout deleted
	// and created again under the same name is another object, with a status of its
	// own, even when their generations agree.
	uid    types.UID
	status v1alpha1.RolloutStatus
	// dirty says that the status differs from the stored one: the last Save failed.
	dirty bool
	// judged says that the current step had a passing analysis window. It is not
	// stored: after a restart the step needs another passing window.
	judged bool
	// window is the analysis window under way.
	window window
	// last is the last window that ended.
	last *admin.RolloutWindow
}

// window is an analysis window: the canary's totals at its start.
type window struct {
	// backends names the canary's backends, joined, so that a window ends early
	// when they change.
	backends string
	start    time.Time
	totals   outcome.Totals
}

// NewDriver returns a Driver. Rollouts, Results, Outcome and Store are required.
func NewDriver(opts DriverOptions) (*Driver, error) {
	if opts.Rollouts == nil || opts.Results == nil || opts.Outcome == nil || opts.Store == nil {
		return nil, fmt.Errorf("rollout: a driver needs Rollouts, Results, Outcome and Store")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Driver{opts: opts, entries: map[types.NamespacedName]*entry{},
		measureFrom: opts.Now().Add(opts.WarmUp)}, nil
}

// Run ticks every Interval until ctx is done.
func (d *Driver) Run(ctx context.Context) {
	ticker := time.NewTicker(d.opts.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			d.Tick(ctx)
		}
	}
}

// Tick takes one look at every Rollout: it starts new ones and ones whose spec
// changed, judges analysis windows that ended, advances steps whose time has come,
// and saves what changed.
func (d *Driver) Tick(ctx context.Context) {
	rollouts, results := d.opts.Rollouts(), d.opts.Results()
	now := d.opts.Now()
	retranslate := false
	d.mu.Lock()
	seen := make(map[types.NamespacedName]bool, len(rollouts))
	for _, ro := range rollouts {
		key := types.NamespacedName{Namespace: ro.Namespace, Name: ro.Name}
		seen[key] = true
		res, ok := results[key]
		if !ok {
			continue
		}
		e, err := d.entry(ro)
		if err != nil {
			d.opts.Logger.Error("loading a rollout's status", "rollout", key, "error", err)
			continue
		}
		next := d.decide(ro, res, e, now)
		if d.commit(ctx, key, e, next) {
			retranslate = true
		}
	}
	for key := range d.entries {
		if !seen[key] {
			delete(d.entries, key)
		}
	}
	d.mu.Unlock()
	if retranslate && d.opts.OnChange != nil {
		d.opts.OnChange()
	}
}

// entry returns the driver's entry of a rollout, loading its status from the Store
// the first time, and again when the Rollout is another object than the entry's.
func (d *Driver) entry(ro *v1alpha1.Rollout) (*entry, error) {
	key := types.NamespacedName{Namespace: ro.Namespace, Name: ro.Name}
	if e, ok := d.entries[key]; ok && e.uid == ro.UID {
		return e, nil
	}
	status, _, err := d.opts.Store.Load(key)
	if err != nil {
		return nil, err
	}
	e := &entry{uid: ro.UID, status: status}
	d.entries[key] = e
	return e, nil
}

// decide computes a rollout's next status from its current one.
func (d *Driver) decide(ro *v1alpha1.Rollout, res translate.RolloutResult, e *entry, now time.Time) v1alpha1.RolloutStatus {
	plan, planErr := PlanOf(ro.Spec)
	if res.Accepted.Status != metav1.ConditionTrue || planErr != nil {
		// An unusable rollout keeps where it stood, so that fixing it resumes it
		// rather than starting again; only its conditions change.
		e.window = window{}
		return withConditions(e.status, ro.Generation, res.Accepted, notReady(res, planErr), now)
	}
	st, started := d.current(ro, plan, e, now)
	if started {
		d.opts.Logger.Info("rollout started", "rollout", keyOf(ro), "generation", ro.Generation,
			"weight", st.CanaryWeight)
	}
	before := st
	st = d.analyse(plan, st, e, canaryBackends(res), now)
	st = Advance(plan, st, now)
	if st.Step != before.Step || st.Phase != before.Phase {
		d.opts.Logger.Info("rollout moved", "rollout", keyOf(ro), "phase", st.Phase, "step", st.Step,
			"weight", st.CanaryWeight, "message", st.Message)
		e.window = window{}
	}
	e.judged = st.Judged
	return statusOf(plan, st, ro.Generation, res.Accepted, now, e.status.Conditions)
}

// current is the machine state a rollout is in: its stored state, or the first step
// when it has none or its spec changed since (started is then true).
func (d *Driver) current(ro *v1alpha1.Rollout, plan Plan, e *entry, now time.Time) (st State, started bool) {
	if stale(e.status, ro.Generation, plan) {
		e.judged, e.window, e.last = false, window{}, nil
		return Start(plan, now), true
	}
	return stateOf(e.status, e.judged, now), false
}

// analyse opens the canary's analysis window, or, once it has lasted the interval,
// judges it and opens the next. Rollouts that are not progressing measure nothing,
// so that a window never spans a pause.
func (d *Driver) analyse(plan Plan, st State, e *entry, backends []string, now time.Time) State {
	a := plan.Analysis
	if a == nil || st.Phase != Progressing || len(backends) == 0 || now.Before(d.measureFrom) {
		e.window = window{}
		return st
	}
	key := strings.Join(backends, "\n")
	if e.window.start.IsZero() || e.window.backends != key {
		e.window = window{backends: key, start: now, totals: d.outcomeOf(backends)}
		return st
	}
	if now.Sub(e.window.start) < a.Interval {
		return st
	}
	totals := d.outcomeOf(backends)
	diff := totals.Sub(e.window.totals)
	sample := Sample{Requests: diff.Requests, Errors: diff.Errors, P99: diff.Quantile(0.99)}
	judged := Judge(plan, st, sample)
	e.last = &admin.RolloutWindow{Start: e.window.start, End: now, Requests: sample.Requests,
		Errors: sample.Errors, P99Millis: float64(sample.P99) / float64(time.Millisecond), Verdict: verdict(judged, sample, a)}
	e.window = window{backends: key, start: now, totals: totals}
	return judged
}

// canaryBackends are the names of the backends whose outcomes are the canary's.
func canaryBackends(res translate.RolloutResult) []string {
	if len(res.CanaryBackends) > 0 {
		return res.CanaryBackends
	}
	if res.CanaryBackend != "" {
		return []string{res.CanaryBackend}
	}
	return nil
}

// outcomeOf adds up the outcomes of the backends.
func (d *Driver) outcomeOf(backends []string) outcome.Totals {
	var sum outcome.Totals
	for _, b := range backends {
		sum = sum.Add(d.opts.Outcome(b))
	}
	return sum
}

func verdict(st State, s Sample, a *Analysis) string {
	switch {
	case st.Phase == Aborted:
		return "breached"
	case s.Requests < max(a.MinRequests, 1):
		return "too few requests"
	}
	return "passed"
}

// commit stores a rollout's new status when it changed (or an earlier Save failed),
// and reports whether translation must see the change.
func (d *Driver) commit(ctx context.Context, key types.NamespacedName, e *entry, next v1alpha1.RolloutStatus) bool {
	if !e.dirty && equality.Semantic.DeepEqual(e.status, next) {
		return false
	}
	prev := e.status
	e.status = next
	if err := d.opts.Store.Save(ctx, key, next); err != nil {
		e.dirty = true
		d.opts.Logger.Error("saving a rollout's status; trying again at the next tick", "rollout", key, "error", err)
	} else {
		e.dirty = false
	}
	return prev.Phase != next.Phase || prev.CanaryWeight != next.CanaryWeight ||
		prev.ObservedGeneration != next.ObservedGeneration
}

func keyOf(ro *v1alpha1.Rollout) string { return ro.Namespace + "/" + ro.Name }
