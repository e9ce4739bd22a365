// Package standalone runs a gateway from manifest files with no Kubernetes cluster:
// it loads the files, translates them exactly as the controller would, applies the
// snapshot to an in-process data plane, and reloads on every edit (or SIGHUP) while
// keeping the last good configuration when an edit is invalid.
package standalone

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/controller/source/files"
	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/dataplane"
)

// Runner owns one standalone gateway: its data plane and its view of the files.
type Runner struct {
	path   string
	engine *dataplane.Engine
	logger *slog.Logger
	now    func() time.Time

	mu          sync.Mutex
	status      *StatusReport
	lastError   string
	lastErrorAt time.Time
	rejected    string
}

// New returns a Runner for the manifests at path.
func New(path string, engine *dataplane.Engine, logger *slog.Logger) *Runner {
	if logger == nil {
		logger = slog.Default()
	}
	return &Runner{path: path, engine: engine, logger: logger, now: time.Now}
}

// Reload reads the files once and applies them. On any error the serving
// configuration stays in place and the error is recorded for the admin API.
func (r *Runner) Reload() error {
	in, err := files.Load(r.path)
	return r.apply(in, err)
}

// Start loads the files once and then reloads whenever they change, until ctx is
// done. The watch baseline is taken before the first load, so no edit is missed. The
// error is the first load's; the runner keeps watching either way, so a broken start
// can be fixed by editing the files.
func (r *Runner) Start(ctx context.Context, interval time.Duration) error {
	w := files.NewWatcher(r.path)
	err := r.Reload()
	go w.Run(ctx, interval, func(in *translate.Input, err error) {
		_ = r.apply(in, err)
	})
	return err
}

func (r *Runner) apply(in *translate.Input, loadErr error) error {
	if loadErr != nil {
		return r.reject("", fmt.Errorf("loading %s: %w", r.path, loadErr))
	}
	in.Options.Standalone = true
	in.Options.Now = r.now().UTC().Truncate(time.Second)
	out := translate.Translate(in)
	report := NewStatusReport(out)
	if err := r.engine.Apply(out.Snapshot); err != nil {
		return r.reject(out.Snapshot.Version, err)
	}
	r.mu.Lock()
	r.status = report
	r.mu.Unlock()
	r.logger.Info("configuration applied", "version", out.Snapshot.Version,
		"listeners", len(out.Snapshot.Listeners), "backends", len(out.Snapshot.Backends))
	for _, p := range report.Problems {
		r.logger.Warn("object status", "kind", p.Kind, "object", p.Name, "condition", p.Condition,
			"reason", p.Reason, "message", p.Message)
	}
	return nil
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

// Ready implements admin.State.
func (r *Runner) Ready() bool { return r.engine.Ready() }

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
	out := *report
	for name, err := range r.engine.BindErrors() {
		out.BindErrors = append(out.BindErrors, BindError{Listener: name, Error: err.Error()})
	}
	sort.Slice(out.BindErrors, func(i, j int) bool { return out.BindErrors[i].Listener < out.BindErrors[j].Listener })
	return &out
}
