package distribute

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// maxNodeNameLength matches the longest Kubernetes object name; maxVersionLength is far
// above any content hash and bounds what a replica can make the server remember, and
// maxInstanceLength is far above a random id.
const (
	maxNodeNameLength = 253
	maxVersionLength  = 256
	maxInstanceLength = 64
)

var (
	errSuperseded  = errors.New("the replica opened a newer stream, or the server is closing")
	heartbeatFrame = appendFrame(nil, FrameHeartbeat, nil)
)

// parseStreamParams reads and checks a stream request's query. It returns the HTTP
// status to answer with when the parameters cannot be served.
func parseStreamParams(q url.Values) (StreamParams, int, error) {
	p := StreamParams{Node: q.Get("node"), Role: q.Get("role"), Have: q.Get("have"),
		Delta: q.Get("delta") == "1", Base: q.Get("base"), Instance: q.Get("instance")}
	switch {
	case p.Node == "":
		return p, http.StatusBadRequest, errors.New("missing node parameter")
	case len(p.Node) > maxNodeNameLength:
		return p, http.StatusBadRequest, fmt.Errorf("node name is longer than %d bytes", maxNodeNameLength)
	case !ValidRole(p.Role):
		return p, http.StatusBadRequest, fmt.Errorf("unknown role %q (want %q or %q)", p.Role, RoleEdge, RoleNode)
	case len(p.Have) > maxVersionLength:
		return p, http.StatusBadRequest, fmt.Errorf("have parameter is longer than %d bytes", maxVersionLength)
	case len(p.Base) > maxVersionLength:
		return p, http.StatusBadRequest, fmt.Errorf("base parameter is longer than %d bytes", maxVersionLength)
	case len(p.Instance) > maxInstanceLength:
		return p, http.StatusBadRequest, fmt.Errorf("instance parameter is longer than %d bytes", maxInstanceLength)
	}
	schema, err := strconv.Atoi(q.Get("schema"))
	if err != nil {
		return p, http.StatusBadRequest, fmt.Errorf("schema parameter %q is not a number", q.Get("schema"))
	}
	p.Schema = schema
	oldest := max(config.SchemaVersion-1, 1)
	switch {
	case schema > config.SchemaVersion:
		return p, http.StatusBadRequest, fmt.Errorf("replica schema %d is newer than this controller's schema %d: upgrade the controller first", schema, config.SchemaVersion)
	case schema < oldest:
		return p, http.StatusUpgradeRequired, fmt.Errorf("replica schema %d is too old: this controller serves schemas %d and %d; upgrade the gateway", schema, oldest, config.SchemaVersion)
	}
	return p, 0, nil
}

// serveStream answers GET /v1/snapshots: it registers the replica and pushes snapshots
// until the replica goes away, falls silent, is superseded, or the server closes.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		httpError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	id, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	p, code, err := parseStreamParams(r.URL.Query())
	if err != nil {
		s.logger.Warn("refused a replica stream", "remote", r.RemoteAddr, "node", p.Node, "error", err)
		if code == http.StatusUpgradeRequired {
			w.Header().Set("Upgrade", fmt.Sprintf("switchyard-config/%d", config.SchemaVersion))
		}
		httpError(w, code, err.Error())
		return
	}
	rep, code, err := s.register(p, id, r.RemoteAddr)
	if err != nil {
		s.logger.Warn("refused a replica stream", "remote", r.RemoteAddr, "node", p.Node, "role", p.Role,
			"instance", p.Instance, "identity", id.Name, "error", err)
		httpError(w, code, err.Error())
		return
	}
	// What the replica has (recorded as sent by register) and the lines it holds are
	// settled before it learns that its stream is open: as soon as it has the
	// answer's head it may ack the version it has, and a snapshot may be published
	// that it should get as a delta against those lines.
	var base *SnapshotLines
	if p.Delta && p.Base != "" {
		base = s.heldBase(rep, p.Base)
	}
	h := w.Header()
	h.Set("Content-Type", ContentTypeFrames)
	h.Set("Cache-Control", "no-store")
	h.Set(HeaderStream, rep.stream)
	h.Set(HeaderHeartbeatMs, strconv.FormatInt(s.opts.HeartbeatInterval.Milliseconds(), 10))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	s.logger.Info("replica connected", "node", p.Node, "role", p.Role, "instance", p.Instance, "schema", p.Schema,
		"identity", id.Name, "remote", r.RemoteAddr, "have", p.Have, "delta", p.Delta)
	err = rc.Flush()
	if err == nil {
		err = s.pump(r.Context(), w, rc, rep, p, base)
	}
	s.unregister(rep)
	s.logger.Info("replica disconnected", "node", p.Node, "role", p.Role, "instance", p.Instance,
		"remote", r.RemoteAddr, "reason", err)
}

// register adds a connected replica, ending any older stream of the same node, role and
// instance: that is the same replica reconnecting, so the old connection is dead or
// about to be. It refuses, with the status to answer, while the server closes or when
// the open stream it would replace authenticated as another identity, so that one
// client cannot take over, or keep evicting, another's stream.
func (s *Server) register(p StreamParams, id Identity, remote string) (*replica, int, error) {
	var idBytes [16]byte
	_, _ = rand.Read(idBytes[:])
	now := time.Now()
	rep := &replica{
		key:      replicaKey{node: p.Node, role: p.Role, instance: p.Instance},
		stream:   hex.EncodeToString(idBytes[:]),
		identity: id.Name,
		schema:   p.Schema,
		stop:     make(chan struct{}),
		status: ReplicaStatus{
			Node: p.Node, Role: p.Role, Instance: p.Instance, Identity: id.Name, RemoteAddr: remote,
			SchemaVersion: p.Schema, Connected: true, ConnectedSince: now, SentVersion: p.Have,
		},
		lastHeard: now,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, http.StatusServiceUnavailable, errors.New("the controller is shutting down; reconnect shortly")
	}
	if old := s.replicas[rep.key]; old != nil {
		sameIdentity := old.identity == id.Name
		if !sameIdentity && old.status.Connected {
			return nil, http.StatusConflict, fmt.Errorf("node %q role %q instance %q already has an open stream of another identity; "+
				"give each replica its own node name or instance", p.Node, p.Role, p.Instance)
		}
		old.halt()
		if sameIdentity {
			// Keep what the replica last reported until it acks on the new stream.
			// Its last outcome reports stay too, keyed by node, role and instance.
			rep.status.AckedVersion = old.status.AckedVersion
			rep.status.RejectedVersion = old.status.RejectedVersion
			rep.status.AckError = old.status.AckError
			rep.status.LastAck = old.status.LastAck
		} else {
			// Another client's outcome reports are no base for this one's.
			s.outcomes.forget(rep.key)
			s.edges.forget(rep.key)
		}
	}
	s.forgetLocked(now)
	s.replicas[rep.key] = rep
	s.streams[rep.stream] = rep
	return rep, 0, nil
}

// unregister marks the replica disconnected, unless a newer stream replaced it.
func (s *Server) unregister(rep *replica) {
	rep.halt()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.streams, rep.stream)
	if s.replicas[rep.key] == rep {
		rep.status.Connected = false
		rep.status.DisconnectedAt = time.Now()
	}
}

// pump sends the replica the newest view whenever it changes, and heartbeats between.
// A replica busy receiving one snapshot gets only the newest one after it. base is
// the lines the replica holds, when they are the server's (see heldBase), or nil.
func (s *Server) pump(ctx context.Context, w http.ResponseWriter, rc *http.ResponseController, rep *replica, p StreamParams,
	base *SnapshotLines) error {
	hb := s.opts.HeartbeatInterval
	ticker := time.NewTicker(hb)
	defer ticker.Stop()
	sender := &viewSender{s: s, w: w, rc: rc, rep: rep, sent: p.Have, delta: p.Delta, base: base}
	for {
		gen, changed := s.latest()
		if gen != nil {
			if err := sender.send(gen); err != nil {
				return err
			}
		}
		select {
		case <-changed:
		case <-ticker.C:
			if silent := s.silence(rep); silent > missedHeartbeats*hb {
				return fmt.Errorf("no ack or keepalive for %s", silent.Round(time.Millisecond))
			}
			if err := s.write(w, rc, rep, heartbeatFrame, nil); err != nil {
				return fmt.Errorf("sending heartbeat: %w", err)
			}
		case <-rep.stop:
			return errSuperseded
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// heldBase returns the lines of the newest snapshot for rep when their digest is the
// one the replica says it holds, so that a replica that reconnects, or a controller that
// restarts, can go on with deltas; otherwise nil, and the replica's first snapshot on
// this stream is sent whole.
func (s *Server) heldBase(rep *replica, digest string) *SnapshotLines {
	gen, _ := s.latest()
	if gen == nil {
		return nil
	}
	v := s.views.viewOf(gen, viewKey{role: rep.key.role, schema: rep.schema})
	if v.err != nil {
		return nil
	}
	lines, _, err := v.encoded()
	if err != nil || lines.Digest() != digest {
		return nil
	}
	return lines
}

// viewSender sends one replica its view of each generation, unless the replica has it.
type viewSender struct {
	s       *Server
	w       http.ResponseWriter
	rc      *http.ResponseController
	rep     *replica
	sent    string // version of the replica's view it has, or was last sent
	lastErr string // the last preparation error logged, to log each only once
	// delta says the replica takes delta frames, and base is what it holds to apply
	// them to: the lines last sent on this stream (frames arrive in order, and the
	// replica keeps the lines of every frame it reads, whether or not they apply), or
	// those it declared holding when it connected. Nil sends the next snapshot whole.
	delta bool
	base  *SnapshotLines
}

// send writes gen's view if it differs from what the replica has. An error preparing
// the view is recorded and logged, and the stream goes on with the next generation; an
// error writing it ends the stream.
func (vs *viewSender) send(gen *generation) error {
	rep := vs.rep
	v := vs.s.views.viewOf(gen, viewKey{role: rep.key.role, schema: rep.schema})
	if v.err == nil && v.version == vs.sent {
		return nil
	}
	frame, lines, err := vs.frameOf(v)
	if err != nil {
		if err.Error() != vs.lastErr {
			vs.s.logger.Error("cannot prepare the snapshot for a replica", "node", rep.key.node, "role", rep.key.role,
				"schema", rep.schema, "snapshot", gen.snap.Version, "error", err)
			vs.lastErr = err.Error()
		}
		vs.s.update(rep, func(st *ReplicaStatus) { st.SendError = err.Error() })
		return nil
	}
	isDelta := FrameType(frame[0]) == FrameDelta
	record := func(st *ReplicaStatus) {
		st.SentVersion = v.version
		st.SendError = ""
		if isDelta {
			st.DeltasSent++
		}
	}
	if err := vs.s.write(vs.w, vs.rc, rep, frame, record); err != nil {
		return fmt.Errorf("sending snapshot %s: %w", v.version, err)
	}
	vs.sent, vs.lastErr = v.version, ""
	if vs.delta {
		vs.base = lines
	}
	return nil
}

// frameOf returns the frame that brings the replica to v: a delta from its base when
// it takes deltas, holds a base, and the delta is the smaller frame; otherwise the whole
// snapshot. It also returns v's lines, the replica's next base.
func (vs *viewSender) frameOf(v *view) ([]byte, *SnapshotLines, error) {
	if v.err != nil {
		return nil, nil, v.err
	}
	lines, full, err := v.encoded()
	if err != nil || !vs.delta || vs.base == nil {
		return full, lines, err
	}
	delta, err := v.deltaFrom(vs.base)
	if err != nil {
		// The whole snapshot still brings the replica to v.
		vs.s.logger.Warn("cannot compute a delta; sending the whole snapshot", "node", vs.rep.key.node,
			"role", vs.rep.key.role, "snapshot", v.version, "error", err)
		return full, lines, nil
	}
	if len(delta) < len(full) {
		return delta, lines, nil
	}
	return full, lines, nil
}

// minWriteThroughput is the slowest a replica may read a large frame: the write
// deadline grows with the frame at this rate.
const minWriteThroughput = 256 << 10 // bytes per second

// write sends one frame with a deadline, so that a replica that stopped reading
// cannot hold its stream open forever. The frame is counted, and record (if any)
// applied to the replica's status, before the frame is written: a replica may read it
// and ack before the write returns, and its status must never show an ack of a
// version it was not yet shown to have been sent. A failed write ends the stream.
func (s *Server) write(w http.ResponseWriter, rc *http.ResponseController, rep *replica, frame []byte,
	record func(*ReplicaStatus)) error {
	s.update(rep, func(st *ReplicaStatus) {
		st.BytesSent += int64(len(frame))
		if record != nil {
			record(st)
		}
	})
	timeout := missedHeartbeats*s.opts.HeartbeatInterval + time.Duration(len(frame))*time.Second/minWriteThroughput
	deadline := time.Now().Add(timeout)
	if err := rc.SetWriteDeadline(deadline); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := w.Write(frame); err != nil {
		return err
	}
	if err := rc.Flush(); err != nil {
		return err
	}
	// Clear the deadline: an HTTP/2 stream is reset when it passes, written to or not.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

func (s *Server) update(rep *replica, f func(*ReplicaStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&rep.status)
}

func (s *Server) silence(rep *replica) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Since(rep.lastHeard)
}

// serveAck answers POST /v1/acks: it records what a replica runs.
func (s *Server) serveAck(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	id, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(10 * time.Second))
	var ack Ack
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxAckBytes)).Decode(&ack); err != nil {
		httpError(w, http.StatusBadRequest, "bad ack: "+err.Error())
		return
	}
	if len(ack.Outcomes) > MaxAcceptedOutcomes {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("bad ack: it reports %d backends, at most %d are taken", len(ack.Outcomes), MaxAcceptedOutcomes))
		return
	}
	if len(ack.Edges) > MaxAcceptedEdges {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("bad ack: it reports %d edges, at most %d are taken", len(ack.Edges), MaxAcceptedEdges))
		return
	}
	s.mu.Lock()
	rep := s.streams[ack.Stream]
	switch {
	case rep == nil:
		s.mu.Unlock()
		httpError(w, http.StatusNotFound, "unknown stream: reconnect")
		return
	case rep.identity != id.Name:
		s.mu.Unlock()
		httpError(w, http.StatusForbidden, "the stream belongs to another identity")
		return
	}
	now := time.Now()
	rep.lastHeard = now
	st := &rep.status
	newRejection := ack.Rejected != "" && truncate(ack.Rejected, maxVersionLength) != st.RejectedVersion
	st.LastAck = now
	st.AckedVersion = truncate(ack.Applied, maxVersionLength)
	st.RejectedVersion = truncate(ack.Rejected, maxVersionLength)
	st.AckError = truncate(ack.Error, MaxAckErrorBytes)
	ackErr := st.AckError
	peers := s.streamsOfRoleLocked(rep.key.role)
	s.mu.Unlock()
	s.addReports(rep.key, &ack, now)
	if newRejection {
		s.logger.Warn("replica rejected a snapshot", "node", rep.key.node, "role", rep.key.role,
			"version", ack.Rejected, "error", ackErr)
	}
	w.Header().Set(HeaderReplicas, strconv.Itoa(peers))
	w.WriteHeader(http.StatusNoContent)
}

// streamsOfRoleLocked counts the open streams of replicas with the role.
func (s *Server) streamsOfRoleLocked(role string) int {
	n := 0
	for _, r := range s.streams {
		if r.key.role == role {
			n++
		}
	}
	return n
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
