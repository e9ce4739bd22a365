// Package manager is the controller's main loop: on every coalesced change it reads the
// cluster's objects, places Gateways on the edge tier, translates (the same pure
// translator the standalone gateway uses), publishes the snapshot to the gateway fleet
// when its content changed, and, while this controller leads, writes status.
//
// Every controller replica translates and publishes, so that gateways connected to a
// follower stay current; only the leader writes to the API server (status and managed
// Services), so two controllers never fight over an object.
package manager

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchyard-dev/switchyard/controller/standalone"
	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

// Options wire a Manager to its parts. Input and Publish are required.
type Options struct {
	// Input returns the current objects from the informers' caches.
	Input func() *translate.Input
	// ControllerName is the GatewayClass controllerName served; empty means
	// translate.ControllerName.
	ControllerName string
	// Mesh and ClusterDomain are translate.Options.Mesh and ClusterDomain: whether
	// snapshots carry the east-west mesh for node replicas, and the cluster's DNS
	// suffix.
	Mesh          bool
	ClusterDomain string
	// Place fills in the placement options of in (addresses or container ports of
	// each Gateway) before translation. leading says whether this replica may write to
	// the API server (managed Services). Nil leaves placement to the Gateways' own
	// spec.addresses.
	Place func(ctx context.Context, in *translate.Input, leading bool)
	// WriteStatus writes the translation's status to the API server. It is called only
	// while leading, from RunStatusWriter's goroutine, with the latest translation.
	WriteStatus func(ctx context.Context, out *translate.Output)
	// Publish hands a snapshot whose content changed to the gateway fleet.
	Publish func(*config.Snapshot)
	// Leading reports whether this replica holds the leader Lease; nil means always.
	Leading func() bool
	// Now is the clock for condition timestamps; nil means time.Now.
	Now func() time.Time
	// Logger receives translation errors and summaries; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the manager's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Manager runs translations. Its methods are safe for concurrent use; Sync calls are
// serialised.
type Manager struct {
	opts    Options
	metrics *metrics

	syncMu sync.Mutex

	// statusWanted holds at most one signal that pendingStatus has a newer output to
	// write; the status worker always writes the latest one, so a slow API server
	// delays status, never snapshots.
	statusWanted  chan struct{}
	pendingStatus *translate.Output

	mu          sync.Mutex
	snapshot    *config.Snapshot
	publishedAt time.Time
	// latest is the newest translation; the admin API's status report is built from
	// it on request rather than on every translation.
	latest *translate.Output
}

// New returns a Manager. It does nothing until Sync is called.
func New(opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Leading == nil {
		opts.Leading = func() bool { return true }
	}
	if opts.ControllerName == "" {
		opts.ControllerName = translate.ControllerName
	}
	return &Manager{opts: opts, metrics: newMetrics(opts.Registerer), statusWanted: make(chan struct{}, 1)}
}

// RunStatusWriter writes the latest translation's status whenever there is a new one,
// until ctx is done. Status writes are kept off the translation path so that a slow
// API server never delays a snapshot.
func (m *Manager) RunStatusWriter(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.statusWanted:
		}
		m.mu.Lock()
		out := m.pendingStatus
		m.pendingStatus = nil
		m.mu.Unlock()
		if out != nil && m.opts.WriteStatus != nil && m.opts.Leading() {
			m.opts.WriteStatus(ctx, out)
		}
	}
}

// Sync translates the current objects once, publishes the snapshot if its content
// changed, and when leading queues the status for RunStatusWriter.
func (m *Manager) Sync(ctx context.Context) {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	start := time.Now()
	in := m.opts.Input()
	in.Options.ControllerName = m.opts.ControllerName
	in.Options.Mesh, in.Options.ClusterDomain = m.opts.Mesh, m.opts.ClusterDomain
	in.Options.Now = m.opts.Now()
	leading := m.opts.Leading()
	if m.opts.Place != nil {
		m.opts.Place(ctx, in, leading)
	}
	out := translate.Translate(in)
	m.metrics.translations.Inc()
	m.metrics.translateSeconds.Observe(time.Since(start).Seconds())

	m.mu.Lock()
	changed := m.snapshot == nil || m.snapshot.Version != out.Snapshot.Version
	if changed {
		m.snapshot, m.publishedAt = out.Snapshot, time.Now()
	}
	m.latest = out
	if leading {
		m.pendingStatus = out
	}
	m.mu.Unlock()
	if changed {
		m.opts.Publish(out.Snapshot)
		m.metrics.publishes.Inc()
		m.opts.Logger.Info("published snapshot", "version", out.Snapshot.Version,
			"listeners", len(out.Snapshot.Listeners), "backends", len(out.Snapshot.Backends),
			"translation", time.Since(start).Round(time.Microsecond))
	}
	if leading {
		select {
		case m.statusWanted <- struct{}{}:
		default:
		}
	}
}

// Ready reports whether a snapshot has been published.
func (m *Manager) Ready() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snapshot != nil
}

// Snapshot returns the latest published snapshot, nil before the first.
func (m *Manager) Snapshot() *config.Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snapshot
}

// Config is the admin API's view of the published snapshot.
func (m *Manager) Config() admin.ConfigView {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := admin.ConfigView{Snapshot: m.snapshot, AppliedAt: m.publishedAt}
	if m.snapshot != nil {
		v.Version = m.snapshot.Version
	}
	return v
}

// RolloutResults returns what the latest translation found of each Rollout, nil
// before the first. Outputs are never modified once made, so the map is shared.
func (m *Manager) RolloutResults() map[types.NamespacedName]translate.RolloutResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.latest == nil {
		return nil
	}
	return m.latest.Rollouts
}

// Status is the admin API's view of every object's status.
func (m *Manager) Status() any {
	m.mu.Lock()
	out := m.latest
	m.mu.Unlock()
	if out == nil {
		return nil
	}
	// Outputs are never modified once made, so the report is built outside the lock.
	return standalone.NewStatusReport(out)
}

type metrics struct {
	translations     prometheus.Counter
	publishes        prometheus.Counter
	translateSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		translations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_controller_translations_total",
			Help: "Translations of the cluster's objects into a snapshot.",
		}),
		publishes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_controller_snapshots_published_total",
			Help: "Snapshots whose content changed and were sent to the gateway fleet.",
		}),
		translateSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchyard_controller_translation_seconds",
			Help:    "Time from reading the caches to a translated snapshot, placement included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.translations, m.publishes, m.translateSeconds)
	}
	return m
}
