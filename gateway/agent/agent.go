// Package agent is a gateway replica's side of configuration distribution: it keeps a
// stream open to the controller (package controller/distribute), applies every
// snapshot the controller pushes, acknowledges each one, and keeps the last good
// snapshot on disk so that a replica restarted while the controller is away still
// serves traffic.
//
// A replica is ready once it has applied a snapshot, from the controller or from disk.
// A snapshot that fails to apply is reported to the controller and not persisted; the
// previous one keeps serving. The agent reconnects forever, with capped, jittered
// exponential backoff that starts over only after a stream proved itself, and reads its
// token file again on every attempt and before every ack, since projected
// ServiceAccount tokens rotate. Each Agent sends a random instance id with its stream,
// so that replicas sharing a node name and role do not replace each other's streams.
//
// Given a source of request outcomes (Options.Outcomes), the acks also report the
// replica's per-backend totals as they change, for the controller to add up across
// the fleet (see the package documentation of controller/distribute), and likewise
// the totals per service graph edge (Options.Edges).
package agent

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/controller/distribute"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/outcome"
)

// Defaults of Options.
const (
	// DefaultMinBackoff is the first wait after a failed connection attempt.
	DefaultMinBackoff = 500 * time.Millisecond
	// DefaultMaxBackoff caps the wait between attempts.
	DefaultMaxBackoff = 30 * time.Second
)

// stableStreamAfter is how long a stream must last, if no snapshot applied on it, for
// the next reconnection to start again from MinBackoff: a stream that the controller
// accepts but that fails right away must not be retried at the shortest interval.
const stableStreamAfter = 10 * time.Second

// Options configure an Agent.
type Options struct {
	// ControllerURL is the controller's distribution endpoint, "https://host:port".
	// A bare "host:port" means HTTPS.
	ControllerURL string
	// Node names this replica to the controller; Role is its role, "edge" or "node".
	Node string
	Role string
	// TokenFile holds the bearer token (for example a projected ServiceAccount
	// token). It is read again on every connection attempt and before every ack.
	// Empty sends no token.
	TokenFile string
	// CAFile is the PEM bundle that verifies the controller's certificate, read again
	// on every connection attempt. Empty uses the system roots. Ignored when TLSConfig
	// is set.
	CAFile string
	// TLSConfig, when set, is used as is (TLS 1.2 at least) instead of CAFile.
	TLSConfig *tls.Config
	// StatePath is where the last applied snapshot is kept (mode 0600: it holds
	// private keys). Empty keeps nothing.
	StatePath string
	// SchemaVersion is the config schema this replica speaks; zero means
	// config.SchemaVersion. Tests set it to act as an older or newer replica.
	SchemaVersion int
	// Apply makes a snapshot take effect, or says why it cannot. Required. It is
	// never called concurrently.
	Apply func(*config.Snapshot) error
	// Logger receives connection and apply events; nil logs nowhere.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between connection attempts; zero
	// means DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// MaxFrameBytes bounds one snapshot, compressed and decompressed; zero means
	// distribute.DefaultMaxFrameBytes.
	MaxFrameBytes int64
	// Outcomes, when set, returns this replica's cumulative request outcomes per
	// backend (dataplane.Engine.BackendOutcomes), which the acks report to the
	// controller as they change. The totals must belong to this Agent's process:
	// an Agent reports as a new instance, whose totals the controller counts in
	// full. It is called from the ack loop, once per ack.
	Outcomes func() map[string]outcome.Totals
	// Edges, when set, returns this replica's cumulative request outcomes per edge of
	// the service graph, caller -> callee, which a node replica records for the
	// requests it forwards. The acks report them as Outcomes are, under the same
	// conditions. Nil reports none.
	Edges func() map[outcome.EdgeKey]outcome.Totals
}

// Source says where the running snapshot came from.
type Source string

// The sources of a running snapshot.
const (
	// SourceNone means no snapshot runs yet.
	SourceNone Source = ""
	// SourceController means the snapshot came over the stream.
	SourceController Source = "controller"
	// SourcePersisted means the snapshot was loaded from StatePath at start.
	SourcePersisted Source = "persisted"
)

// Status is a point-in-time view of the agent.
type Status struct {
	// ControllerURL is the controller the agent talks to.
	ControllerURL string
	// Instance is the random id this agent sends with every stream, which tells it
	// apart from other replicas with the same node and role.
	Instance string
	// Connected reports whether a stream to the controller is open.
	Connected bool
	// Ready reports whether a snapshot has been applied.
	Ready bool
	// Version is the version of the running snapshot, and Source where it came from.
	Version string
	Source  Source
	// LastApplied is when the running snapshot was applied.
	LastApplied time.Time
	// RejectedVersion is the newest snapshot that failed to apply since the last
	// successful apply, if any.
	RejectedVersion string
	// LastError is the most recent problem: a failed connection, apply, or
	// persistence. It is cleared when a stream opens.
	LastError string
	// PersistedVersion is the version of the snapshot saved at StatePath.
	PersistedVersion string
}

// Agent keeps a replica's configuration in step with the controller.
type Agent struct {
	opts     Options
	logger   *slog.Logger
	base     *url.URL
	schema   int
	maxFrame int64
	// instance is drawn once per Agent and sent with every stream, so the controller
	// tells a reconnection of this agent, which replaces its old stream, from another
	// replica on the same node and role, which must not.
	instance string
	running  atomic.Bool
	// decoder is used only by Run's goroutine; it keeps the last snapshot's parts so
	// that unchanged ones are not decoded again.
	decoder *distribute.Decoder
	// replicas is how many replicas of this role the controller last said have a
	// stream open; zero until it first says.
	replicas atomic.Int64

	mu sync.Mutex
	// lines is the last snapshot received (or loaded from disk) in wire form, which
	// delta frames are applied to; nil when there is none.
	lines         *distribute.SnapshotLines
	status        Status
	appliedSchema int
	rejectedErr   string
}

// Replicas returns how many replicas of this agent's role the controller last
// reported connected, itself included; one before the first report. While the
// controller is unreachable the last report stands, which is what global rate limits
// falling back to local enforcement should divide by: the fleet rarely changes size
// during a controller outage.
func (a *Agent) Replicas() int {
	if n := a.replicas.Load(); n > 0 {
		return int(n)
	}
	return 1
}

// New checks opts and returns an Agent; Run starts it.
func New(opts Options) (*Agent, error) {
	if opts.Apply == nil {
		return nil, errors.New("agent: Apply is required")
	}
	if opts.Node == "" {
		return nil, errors.New("agent: Node is required")
	}
	if !distribute.ValidRole(opts.Role) {
		return nil, fmt.Errorf("agent: unknown role %q (want %q or %q)", opts.Role, distribute.RoleEdge, distribute.RoleNode)
	}
	base, err := parseControllerURL(opts.ControllerURL)
	if err != nil {
		return nil, err
	}
	if opts.StatePath != "" {
		if fi, err := os.Stat(filepath.Dir(opts.StatePath)); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("agent: the directory of StatePath %s does not exist", opts.StatePath)
		}
	}
	if opts.SchemaVersion == 0 {
		opts.SchemaVersion = config.SchemaVersion
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.MinBackoff)
	if opts.MaxFrameBytes <= 0 {
		opts.MaxFrameBytes = distribute.DefaultMaxFrameBytes
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var idBytes [8]byte
	_, _ = rand.Read(idBytes[:])
	instance := hex.EncodeToString(idBytes[:])
	return &Agent{
		opts:     opts,
		logger:   logger.With("controller", base.String(), "node", opts.Node, "role", opts.Role, "instance", instance),
		base:     base,
		schema:   opts.SchemaVersion,
		maxFrame: opts.MaxFrameBytes,
		instance: instance,
		decoder:  distribute.NewDecoder(opts.MaxFrameBytes),
		status:   Status{ControllerURL: base.String(), Instance: instance},
	}, nil
}

func parseControllerURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("agent: ControllerURL is required")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		// "host:port" parses as a scheme and an opaque part, or fails; retry as HTTPS.
		u, err = url.Parse("https://" + raw)
	}
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("agent: controller URL %q is not https://host:port", raw)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("agent: controller URL %q must use https", raw)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// Ready reports whether a snapshot has been applied, from the controller or from disk.
func (a *Agent) Ready() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status.Version != ""
}

// Status returns the agent's current status.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.status
	st.Ready = st.Version != ""
	return st
}

// Run applies the persisted snapshot, if there is one, then keeps a stream to the
// controller open until ctx ends, reconnecting as often as it takes. It returns nil
// when ctx ends, after the newest applied snapshot is saved.
func (a *Agent) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("agent: Run is already running")
	}
	defer a.running.Store(false)
	p := newPersister(a.opts.StatePath, a.persisted)
	a.loadPersisted()
	persistDone := make(chan struct{})
	go func() { defer close(persistDone); p.run(ctx) }()
	defer func() {
		<-persistDone
		// A snapshot applied while ctx ended may have been queued after the
		// persister's last flush; the session is over, so nothing queues after this.
		p.flush()
	}()

	bo := backoff{min: a.opts.MinBackoff, max: a.opts.MaxBackoff}
	for {
		proven, err := a.session(ctx, p)
		if ctx.Err() != nil {
			return nil
		}
		if proven {
			bo.reset()
		}
		wait := bo.next()
		a.sessionFailed(err, wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// sessionFailed records and logs why the last session ended.
func (a *Agent) sessionFailed(err error, wait time.Duration) {
	if err == nil {
		err = errors.New("stream ended")
	}
	a.setError(err)
	var se *statusError
	switch {
	case errors.As(err, &se) && se.code == 401:
		a.logger.Error("controller rejected this replica's token; check the token file and the controller's allowed users",
			"error", err, "retryIn", wait.Round(time.Millisecond))
	case errors.As(err, &se):
		a.logger.Error("controller refused the stream", "error", err, "retryIn", wait.Round(time.Millisecond))
	default:
		a.logger.Warn("no stream to the controller", "error", err, "retryIn", wait.Round(time.Millisecond))
	}
}

func (a *Agent) setError(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status.LastError = err.Error()
}

func (a *Agent) setConnected(v bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status.Connected = v
	if v {
		a.status.LastError = ""
	}
}

// apply runs Apply, turning a panic into an error so that one bad snapshot cannot
// take the replica down, and records the outcome.
func (a *Agent) apply(snap *config.Snapshot, src Source) (err error) {
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("apply panicked: %v", r)
			}
		}()
		err = a.opts.Apply(snap)
	}()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.status.RejectedVersion = snap.Version
		a.rejectedErr = err.Error()
		a.status.LastError = fmt.Sprintf("snapshot %s: %v", snap.Version, err)
		return err
	}
	a.status.Version = snap.Version
	a.status.Source = src
	a.status.LastApplied = time.Now()
	a.status.RejectedVersion = ""
	a.rejectedErr = ""
	a.appliedSchema = snap.SchemaVersion
	return nil
}

// currentAck describes what this replica runs, for the controller.
func (a *Agent) currentAck(stream string) distribute.Ack {
	a.mu.Lock()
	defer a.mu.Unlock()
	errText := a.rejectedErr
	if len(errText) > distribute.MaxAckErrorBytes {
		errText = errText[:distribute.MaxAckErrorBytes]
	}
	return distribute.Ack{Stream: stream, Applied: a.status.Version, Rejected: a.status.RejectedVersion, Error: errText}
}

// have is the version to tell the controller this replica already runs: only one in
// the replica's own schema, so that a replica upgraded from an older schema is sent
// the current shape.
func (a *Agent) have() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.appliedSchema != a.schema {
		return ""
	}
	return a.status.Version
}

func (a *Agent) appliedVersion() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status.Version
}

// persisted records the outcome of saving a snapshot.
func (a *Agent) persisted(version string, err error) {
	if err != nil {
		a.logger.Error("could not save the snapshot", "path", a.opts.StatePath, "version", version, "error", err)
		a.setError(fmt.Errorf("saving snapshot %s: %w", version, err))
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status.PersistedVersion = version
}

// held returns the lines delta frames apply to, or nil.
func (a *Agent) held() *distribute.SnapshotLines {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lines
}

// heldDigest is the digest of the held lines, offered to the controller as a base.
func (a *Agent) heldDigest() string {
	if l := a.held(); l != nil {
		return l.Digest()
	}
	return ""
}

func (a *Agent) setHeld(lines *distribute.SnapshotLines) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lines = lines
}
