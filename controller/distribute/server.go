package distribute

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// Defaults of Options.
const (
	// DefaultHeartbeatInterval paces heartbeats and keepalive acks; three missed ones
	// (15 s) end a stream on either side.
	DefaultHeartbeatInterval = 5 * time.Second
	// DefaultForgetAfter is how long Replicas keeps listing a disconnected replica.
	DefaultForgetAfter = 15 * time.Minute
)

// missedHeartbeats is how many heartbeat intervals of silence end a stream.
const missedHeartbeats = 3

// Options configure a Server.
type Options struct {
	// Authenticator checks every request's bearer token. Required.
	Authenticator Authenticator
	// Logger receives connection and error events; nil logs nowhere.
	Logger *slog.Logger
	// HeartbeatInterval is how often the server sends heartbeats and how often
	// replicas send keepalive acks; zero means DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// ForgetAfter is how long a disconnected replica stays in Replicas; zero means
	// DefaultForgetAfter.
	ForgetAfter time.Duration
}

// ReplicaStatus is what the server knows about one replica, identified by node, role
// and instance.
type ReplicaStatus struct {
	// Node and Role are what the replica said it is.
	Node string
	Role string
	// Instance is the random id the replica process sent to tell itself apart from
	// others with the same node and role; empty for replicas too old to send one.
	Instance string
	// Identity is the user its token authenticated as.
	Identity string
	// RemoteAddr is the address of its current or last connection.
	RemoteAddr string
	// SchemaVersion is the config schema the replica speaks, and is sent in.
	SchemaVersion int
	// Connected reports whether its stream is open.
	Connected bool
	// ConnectedSince is when its current or last stream opened.
	ConnectedSince time.Time
	// DisconnectedAt is when its last stream closed; zero while connected.
	DisconnectedAt time.Time
	// SentVersion is the version of the last snapshot written to its stream (or,
	// right after it connects, the version it said it already runs). It is recorded
	// as the write begins, so it is never behind AckedVersion.
	SentVersion string
	// AckedVersion is the version the replica last reported running.
	AckedVersion string
	// RejectedVersion and AckError are the newest version the replica failed to apply
	// and why; empty when it applied everything since it last failed.
	RejectedVersion string
	AckError        string
	// LastAck is when the replica last acked (keepalives included).
	LastAck time.Time
	// BytesSent counts the bytes of the frames written on the current or last
	// stream, each counted as its write begins.
	BytesSent int64
	// DeltasSent counts the snapshots sent on the current or last stream as delta
	// frames rather than whole.
	DeltasSent int
	// SendError is why the server could not prepare the replica's view of the newest
	// snapshot, if it could not (for example a failed schema conversion).
	SendError string
}

// Server pushes published snapshots to replica streams. Its methods are safe for
// concurrent use.
type Server struct {
	opts   Options
	logger *slog.Logger
	views  viewCache

	mu       sync.Mutex
	gen      *generation   // newest published snapshot; nil before the first
	changed  chan struct{} // closed and replaced on every publish
	closed   bool
	replicas map[replicaKey]*replica
	streams  map[string]*replica // connected replicas by stream id

	// outcomes adds up the request outcomes the replicas report in their acks.
	outcomes *fleetOutcomes
	// edges adds up the service graph's edges the node replicas report.
	edges *fleetEdges
}

// replicaKey identifies a replica: a new stream with the same key replaces the old one.
type replicaKey struct{ node, role, instance string }

// replica is one replica's entry; the fields after stop are guarded by Server.mu.
type replica struct {
	key      replicaKey
	stream   string
	identity string
	schema   int
	stop     chan struct{} // closed to end the stream
	stopOnce sync.Once

	status    ReplicaStatus
	lastHeard time.Time // last ack, or the stream's start
}

func (r *replica) halt() { r.stopOnce.Do(func() { close(r.stop) }) }

// NewServer returns a Server with nothing published yet; replicas that connect before
// the first Publish wait for it.
func NewServer(opts Options) (*Server, error) {
	if opts.Authenticator == nil {
		return nil, errors.New("distribute: an Authenticator is required")
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if opts.ForgetAfter <= 0 {
		opts.ForgetAfter = DefaultForgetAfter
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		opts:     opts,
		logger:   logger,
		views:    viewCache{newest: map[viewKey]cachedView{}},
		changed:  make(chan struct{}),
		replicas: map[replicaKey]*replica{},
		streams:  map[string]*replica{},
		outcomes: newFleetOutcomes(),
		edges:    newFleetEdges(),
	}, nil
}

// Publish makes snap the configuration every replica converges to. It returns at
// once: each replica's stream computes and sends its view, and a replica still busy
// with an older snapshot gets only the newest one when it is ready. A snapshot with the
// Version already published is ignored. snap must not be modified afterwards.
func (s *Server) Publish(snap *config.Snapshot) {
	if snap == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.gen; cur != nil && (cur.snap == snap || snap.Version != "" && snap.Version == cur.snap.Version) {
		return
	}
	var seq uint64 = 1
	if s.gen != nil {
		seq = s.gen.seq + 1
	}
	s.gen = &generation{seq: seq, snap: snap, views: map[viewKey]*view{}}
	close(s.changed)
	s.changed = make(chan struct{})
}

// Version returns the Version of the newest published snapshot, or "".
func (s *Server) Version() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == nil {
		return ""
	}
	return s.gen.snap.Version
}

// latest returns the newest generation and the channel closed by the next publish.
func (s *Server) latest() (*generation, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen, s.changed
}

// Replicas returns the status of every connected replica and of those disconnected
// within ForgetAfter, sorted by node, role and instance.
func (s *Server) Replicas() []ReplicaStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetLocked(time.Now())
	out := make([]ReplicaStatus, 0, len(s.replicas))
	for _, r := range s.replicas {
		out = append(out, r.status)
	}
	slices.SortFunc(out, func(a, b ReplicaStatus) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.Role, b.Role), cmp.Compare(a.Instance, b.Instance))
	})
	return out
}

// forgetLocked drops replicas disconnected for longer than ForgetAfter, with their
// last outcome reports; the fleet totals keep what they reported.
func (s *Server) forgetLocked(now time.Time) {
	for k, r := range s.replicas {
		if !r.status.Connected && now.Sub(r.status.DisconnectedAt) > s.opts.ForgetAfter {
			delete(s.replicas, k)
			s.outcomes.forget(k)
			s.edges.forget(k)
		}
	}
}

// Close ends every stream and refuses new ones. Replicas keep serving what they have
// and reconnect to the next controller.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, r := range s.streams {
		r.halt()
	}
}

// Handler returns the HTTP handler of the protocol. It must be served over TLS, as
// Serve does; tokens and private keys cross it.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(PathSnapshots, s.serveStream)
	mux.HandleFunc(PathAcks, s.serveAck)
	return mux
}

// Serve serves the protocol on ln over TLS until ctx ends, then closes the Server
// (ending every stream) and shuts the HTTP server down. tlsConfig must carry the
// server certificate (see LoadServerTLS); versions below TLS 1.2 are refused.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	if tlsConfig == nil || len(tlsConfig.Certificates) == 0 && tlsConfig.GetCertificate == nil && tlsConfig.GetConfigForClient == nil {
		return errors.New("distribute: Serve needs a TLS config with a server certificate")
	}
	cfg := tlsConfig.Clone()
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	hb := s.opts.HeartbeatInterval
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         cfg,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
		// HTTP/2 pings find a dead connection even between acks.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 2 * hb, PingTimeout: hb},
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	s.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
