// Package standalone runs a gateway from manifest files with no Kubernetes cluster:
// it loads the files, translates them exactly as the controller would, applies the
// snapshot to an in-process data plane, and reloads on every edit (or SIGHUP) while
// keeping the last good configuration when an edit is invalid. It also drives the
// Rollouts of the files, measuring their canaries' traffic itself, and keeps their
// state in memory or, with a state directory, in files that survive restarts.
package standalone

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/controller/rollout"
	"github.com/switchyard-dev/switchyard/controller/source/files"
	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/dataplane"
	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

// Options configure a Runner.
type Options struct {
	// Logger receives the runner's logs; nil means slog.Default().
	Logger *slog.Logger
	// StateDir keeps each Rollout's state in a file, so that rollouts carry on
	// where they were after a restart. Empty keeps the state in memory only: a
	// restart starts every rollout again from its first step.
	StateDir string
	// Outcome returns the cumulative totals of the requests sent to a backend, for
	// the analysis of canaries. Nil counts nothing, so that rollouts with an
	// analysis wait at their first step until an operator promotes them.
	Outcome func(backend string) outcome.Totals
	// RolloutInterval is how often rollouts are looked at; zero means
	// rollout.DefaultInterval.
	RolloutInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Runner owns one standalone gateway: its data plane, its view of the files, and
// the driver of its Rollouts.
type Runner struct {
	path   string
	engine *dataplane.Engine
	logger *slog.Logger
	now    func() time.Time
	store  *stateStore
	driver *rollout.Driver
	// translate is translate.Translate; tests wrap it.
	translate func(*translate.Input) *translate.Output

	// applyMu serialises translations and applies, so that an older translation
	// never lands after a newer one.
	applyMu sync.Mutex

	mu          sync.Mutex
	status      *StatusReport
	lastError   string
	lastErrorAt time.Time
	rejected    string
	// input is the serving configuration as loaded (with the generations the
	// runner gave its Rollouts), re-translated when a rollout moves.
	input *translate.Input
	// results are the serving translation's Rollout results.
	results map[types.NamespacedName]translate.RolloutResult
}

// New returns a Runner for the manifests at path. It fails only when the state
// directory cannot be used.
func New(path string, engine *dataplane.Engine, opts Options) (*Runner, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Outcome == nil {
		opts.Outcome = func(string) outcome.Totals { return outcome.Totals{} }
	}
	store, warnings, err := openStateStore(opts.StateDir)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		opts.Logger.Warn("ignoring a rollout state file; its rollout starts again from its first step", "error", w)
	}
	r := &Runner{path: path, engine: engine, logger: opts.Logger, now: opts.Now, store: store,
		translate: translate.Translate}
	r.driver, err = rollout.NewDriver(rollout.DriverOptions{
		Rollouts: r.rollouts,
		Results:  r.rolloutResults,
		Outcome:  opts.Outcome,
		Store:    store,
		Now:      opts.Now,
		Interval: opts.RolloutInterval,
		OnChange: r.reapply,
		Logger:   opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files once and applies them. On any error the serving
// configuration stays in place and the error is recorded for the admin API.
func (r *Runner) Reload() error {
	in, err := files.Load(r.path)
	return r.apply(in, err)
}

// Start loads the files once and then reloads whenever they change, and drives the
// Rollouts, until ctx is done. The watch baseline is taken before the first load, so
// no edit is missed. The error is the first load's; the runner keeps watching either
// way, so a broken start can be fixed by editing the files.
func (r *Runner) Start(ctx context.Context, interval time.Duration) error {
	w := files.NewWatcher(r.path)
	err := r.Reload()
	go w.Run(ctx, interval, func(in *translate.Input, err error) {
		_ = r.apply(in, err)
	})
	go r.driver.Run(ctx)
	return err
}

// apply translates and applies newly loaded files.
func (r *Runner) apply(in *translate.Input, loadErr error) error {
	if loadErr != nil {
		return r.reject("", fmt.Errorf("loading %s: %w", r.path, loadErr))
	}
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	r.numberGenerations(in)
	return r.translateAndApply(in, true)
}

// reapply translates the serving configuration again with the Rollouts' current
// statuses: the rollout driver calls it when a weight or phase changed.
func (r *Runner) reapply() {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	r.mu.Lock()
	in := r.input
	r.mu.Unlock()
	if in != nil {
		_ = r.translateAndApply(in, false)
	}
}

// numberGenerations gives each loaded Rollout the generation of its spec and a UID,
// which an API server would: a changed spec gets a new generation and restarts the
// rollout, and a Rollout removed and added back is a new object.
func (r *Runner) numberGenerations(in *translate.Input) {
	for _, ro := range in.Rollouts {
		key := types.NamespacedName{Namespace: ro.Namespace, Name: ro.Name}
		gen, uid, err := r.store.generation(key, ro.Spec)
		if err != nil {
			r.logger.Error("storing a rollout's generation", "rollout", key, "error", err)
		}
		if gen > 0 {
			ro.Generation, ro.UID = gen, uid
		}
	}
}

// translateAndApply translates in, with each Rollout carrying its stored status, and
// applies the result. in itself is never modified, since it is kept for reapply.
func (r *Runner) translateAndApply(in *translate.Input, fromFiles bool) error {
	statuses := r.store.statuses()
	tin := *in
	tin.Rollouts = make([]*v1alpha1.Rollout, len(in.Rollouts))
	for i, ro := range in.Rollouts {
		c := ro.DeepCopy()
		c.Status = statuses[types.NamespacedName{Namespace: ro.Namespace, Name: ro.Name}]
		tin.Rollouts[i] = c
	}
	tin.Options.Standalone = true
	tin.Options.Now = r.now().UTC().Truncate(time.Second)
	out := r.translate(&tin)
	report := NewStatusReport(out)
	if err := r.engine.Apply(out.Snapshot); err != nil {
		return r.reject(out.Snapshot.Version, err)
	}
	r.mu.Lock()
	r.status, r.input, r.results = report, in, out.Rollouts
	r.mu.Unlock()
	r.forgetRemovedRollouts(in)
	if !fromFiles {
		r.logger.Info("configuration applied for a rollout", "version", out.Snapshot.Version)
		return nil
	}
	r.logger.Info("configuration applied", "version", out.Snapshot.Version,
		"listeners", len(out.Snapshot.Listeners), "backends", len(out.Snapshot.Backends))
	for _, p := range report.Problems {
		r.logger.Warn("object status", "kind", p.Kind, "object", p.Name, "condition", p.Condition,
			"reason", p.Reason, "message", p.Message)
	}
	return nil
}

// forgetRemovedRollouts drops the state of Rollouts the serving configuration no
// longer has.
func (r *Runner) forgetRemovedRollouts(in *translate.Input) {
	keep := make(map[types.NamespacedName]bool, len(in.Rollouts))
	for _, ro := range in.Rollouts {
		keep[types.NamespacedName{Namespace: ro.Namespace, Name: ro.Name}] = true
	}
	if err := r.store.prune(keep); err != nil {
		r.logger.Error("removing the state of removed rollouts", "error", err)
	}
}

func (r *Runner) reject(version string, err error) error {
	r.mu.Lock()
	r.lastError = err.Error()
	r.lastErrorAt = r.now()
	r.rejected = version
	r.mu.Unlock()
	r.logger.Error("configuration rejected; the last good configuration stays in effect", "error", err)
	return err
}

// rollouts returns the serving configuration's Rollouts, for the driver.
func (r *Runner) rollouts() []*v1alpha1.Rollout {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.input == nil {
		return nil
	}
	return r.input.Rollouts
}

// rolloutResults returns the serving translation's Rollout results, for the driver.
func (r *Runner) rolloutResults() map[types.NamespacedName]translate.RolloutResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.results
}

// ListRollouts implements admin.Rollouts.
func (r *Runner) ListRollouts() []admin.RolloutView { return r.driver.ListRollouts() }

// ActRollout implements admin.Rollouts.
func (r *Runner) ActRollout(ctx context.Context, namespace, name, action string, full bool) (admin.RolloutView, error) {
	return r.driver.ActRollout(ctx, namespace, name, action, full)
}

// Ready implements admin.State: the engine serves a configuration, and the status
// of the objects it was translated from is published. translateAndApply records the
// status only once the engine has taken the configuration, so the engine's own
// readiness comes a moment early: a client that found the gateway ready could read
// an empty /api/v1/status.
func (r *Runner) Ready() bool {
	if !r.engine.Ready() {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status != nil
}

// Config implements admin.State.
func (r *Runner) Config() admin.ConfigView {
	snap, applied := r.engine.Snapshot()
	r.mu.Lock()
	defer r.mu.Unlock()
	view := admin.ConfigView{
		AppliedAt:       applied,
		Snapshot:        snap,
		LastError:       r.lastError,
		LastErrorAt:     r.lastErrorAt,
		RejectedVersion: r.rejected,
	}
	if snap != nil {
		view.Version = snap.Version
	}
	return view
}

// Status implements admin.State: the status of every object, and bind failures.
func (r *Runner) Status() any {
	r.mu.Lock()
	report := r.status
	r.mu.Unlock()
	if report == nil {
		return &StatusReport{}
	}
	out := *report.withRolloutStatuses(r.store.statuses())
	for name, err := range r.engine.BindErrors() {
		out.BindErrors = append(out.BindErrors, BindError{Listener: name, Error: err.Error()})
	}
	sort.Slice(out.BindErrors, func(i, j int) bool { return out.BindErrors[i].Listener < out.BindErrors[j].Listener })
	return &out
}
