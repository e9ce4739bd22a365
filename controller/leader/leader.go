// Package leader elects one controller replica to write to the API server, with a
// coordination.k8s.io/v1 Lease and client-go's leader election. Every replica keeps
// translating and serving its gateways; only the leader writes status, so replicas
// never fight over an object.
package leader

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Defaults give failover well under 10 s when a leader dies without releasing the
// Lease. A follower sees the dead leader's last renewal up to 2.2 retry periods late
// (client-go jitters retries by up to 1.2 periods), waits a lease duration from then,
// and notices the expiry up to 2.2 periods later: at worst 6 s + 4.4 × 0.5 s = 8.2 s.
// A leader that stops gracefully releases the Lease, and a follower takes it at its
// next retry, within about a second.
const (
	DefaultLeaseDuration = 6 * time.Second
	DefaultRenewDeadline = 4 * time.Second
	DefaultRetryPeriod   = 500 * time.Millisecond
)

// Options configure an Elector. Client, Namespace and Name are required.
type Options struct {
	// Client reaches the API server that holds the Lease.
	Client kubernetes.Interface
	// Namespace and Name name the Lease; it is created when missing.
	Namespace string
	Name      string
	// Identity tells replicas apart in the Lease's holderIdentity; empty means the
	// host name plus a random suffix, so that a restarted replica is a new candidate.
	Identity string
	// LeaseDuration is how long followers wait after the last renewal they saw before
	// taking the Lease over. The Lease records it in whole seconds. Zero means
	// DefaultLeaseDuration.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps retrying a failed renewal before it
	// steps down; it must be shorter than LeaseDuration, so that the leader stops
	// before anyone else can start. Zero means DefaultRenewDeadline.
	RenewDeadline time.Duration
	// RetryPeriod is how often candidates try to acquire, and the leader renews.
	// Zero means DefaultRetryPeriod.
	RetryPeriod time.Duration
	// OnStartedLeading runs when this replica becomes leader, with a context that is
	// cancelled when it stops leading. It may block until then or return early.
	OnStartedLeading func(ctx context.Context)
	// OnStoppedLeading runs when this replica stops leading, whether by losing the
	// Lease or because Run's context ended. It is not called if this replica never
	// led in that round.
	OnStoppedLeading func()
	// Logger receives leadership changes; nil means slog.Default().
	Logger *slog.Logger
}

// Elector campaigns for the Lease. IsLeader and Identity are safe for concurrent use.
type Elector struct {
	opts    Options
	current atomic.Pointer[round]
}

// New checks the options and fills in defaults.
func New(opts Options) (*Elector, error) {
	if opts.Client == nil || opts.Namespace == "" || opts.Name == "" {
		return nil, errors.New("leader: Client, Namespace and Name are required")
	}
	if opts.LeaseDuration == 0 {
		opts.LeaseDuration = DefaultLeaseDuration
	}
	if opts.RenewDeadline == 0 {
		opts.RenewDeadline = DefaultRenewDeadline
	}
	if opts.RetryPeriod == 0 {
		opts.RetryPeriod = DefaultRetryPeriod
	}
	if opts.LeaseDuration < time.Second {
		return nil, fmt.Errorf("leader: LeaseDuration %v is below one second, the Lease's resolution", opts.LeaseDuration)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Identity == "" {
		id, err := defaultIdentity()
		if err != nil {
			return nil, err
		}
		opts.Identity = id
	}
	e := &Elector{opts: opts}
	// Validate the timing now rather than at the first Run.
	if _, err := e.newLeaderElector(); err != nil {
		return nil, err
	}
	e.current.Store(nil)
	return e, nil
}

// Run campaigns until ctx is done, which makes a leader release the Lease at once so
// another replica takes over without waiting for it to expire. A replica that loses
// the Lease (for example because the API server was unreachable for RenewDeadline)
// campaigns again. Run returns the first error that stops it, or nil when ctx ends;
// it must not be called twice at the same time.
func (e *Elector) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		le, err := e.newLeaderElector()
		if err != nil {
			return err
		}
		le.Run(ctx)
		if ctx.Err() != nil {
			break
		}
		e.opts.Logger.Warn("lost the leader Lease; campaigning again", "lease", e.opts.Namespace+"/"+e.opts.Name, "identity", e.opts.Identity)
		select {
		case <-ctx.Done():
		case <-time.After(e.opts.RetryPeriod):
		}
	}
	return nil
}

// IsLeader reports whether this replica leads now.
func (e *Elector) IsLeader() bool {
	r := e.current.Load()
	return r != nil && r.leading()
}

// Identity is this replica's holderIdentity in the Lease.
func (e *Elector) Identity() string { return e.opts.Identity }

// round is one campaign: from the start of an acquisition until client-go's elector
// returns. Its state decides IsLeader, and keeps the callbacks paired even when
// client-go stops a round before its OnStartedLeading goroutine has run.
type round struct {
	mu      sync.Mutex
	ctx     context.Context // the leadership context, once leading started
	stopped bool
}

func (r *round) leading() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ctx != nil && r.ctx.Err() == nil && !r.stopped
}

// start records that leadership began with ctx; it reports false when the round
// already ended, and then the leader callbacks must not run.
func (r *round) start(ctx context.Context) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || ctx.Err() != nil {
		return false
	}
	r.ctx = ctx
	return true
}

// stop ends the round and reports whether it had started leading.
func (r *round) stop() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	return r.ctx != nil
}

// newLeaderElector builds one round of the election: client-go's elector keeps
// state from its first acquisition, so each round gets a fresh one.
func (e *Elector) newLeaderElector() (*leaderelection.LeaderElector, error) {
	r := &round{}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: e.opts.Namespace, Name: e.opts.Name},
		Client:     e.opts.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.opts.Identity},
	}
	lease := e.opts.Namespace + "/" + e.opts.Name
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   e.opts.LeaseDuration,
		RenewDeadline:   e.opts.RenewDeadline,
		RetryPeriod:     e.opts.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            e.opts.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				if !r.start(ctx) {
					return
				}
				e.opts.Logger.Info("became leader", "lease", lease, "identity", e.opts.Identity)
				if e.opts.OnStartedLeading != nil {
					e.opts.OnStartedLeading(ctx)
				}
			},
			OnStoppedLeading: func() {
				if !r.stop() {
					return
				}
				e.opts.Logger.Info("stopped leading", "lease", lease, "identity", e.opts.Identity)
				if e.opts.OnStoppedLeading != nil {
					e.opts.OnStoppedLeading()
				}
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("leader: %w", err)
	}
	e.current.Store(r)
	return le, nil
}

// Run campaigns with opts until ctx is done; see Elector.Run.
func Run(ctx context.Context, opts Options) error {
	e, err := New(opts)
	if err != nil {
		return err
	}
	return e.Run(ctx)
}

func defaultIdentity() (string, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "switchyard"
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return "", fmt.Errorf("leader: making an identity: %w", err)
	}
	return host + "_" + hex.EncodeToString(suffix), nil
}
