package distribute

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// The replica roles.
const (
	// RoleEdge is a north-south gateway replica: it serves the whole configuration.
	RoleEdge = "edge"
	// RoleNode is an east-west replica on one node. It serves the mesh (and the
	// backends), never the Gateways' listeners.
	RoleNode = "node"
)

// ValidRole reports whether role is one ForRole knows.
func ValidRole(role string) bool { return role == RoleEdge || role == RoleNode }

// ForRole returns the part of snap that a replica of the given role needs. The view has
// its own Version, a hash of its content, so that a change that does not touch a
// role's view (a route change, for a node replica) is not sent to that role. The view
// may share data with snap; both must be treated as read-only.
//
// The edge view is snap itself when snap has no mesh, so its Version is snap's and
// costs nothing to compute (snap is hashed only when its producer left Version empty);
// a snapshot with a mesh is sent to edge replicas without it, under a version of its
// own (the producer's EdgeVersion, else a hash), so that mesh churn (every Service's
// endpoints) never reaches them.
func ForRole(snap *config.Snapshot, role string) (*config.Snapshot, error) {
	if snap == nil {
		return nil, fmt.Errorf("no snapshot for role %q", role)
	}
	switch role {
	case RoleEdge:
		if snap.Version != "" && snap.Mesh == nil {
			return snap, nil
		}
		view := *snap
		view.Mesh = nil
		view.Version = snap.EdgeVersion
		if view.Version == "" {
			view.Version = contentVersion(&view)
		}
		return &view, nil
	case RoleNode:
		view := &config.Snapshot{SchemaVersion: snap.SchemaVersion, Backends: snap.Backends, Mesh: snap.Mesh}
		if snap.RoutesVersion != "" {
			// Keep the field's meaning, a hash of Listeners, for the listeners this
			// view has (none yet), so a data plane can still skip recompiling routes.
			view.RoutesVersion = hashJSON(view.Listeners)
		}
		view.Version = contentVersion(view)
		return view, nil
	default:
		return nil, fmt.Errorf("unknown role %q (want %q or %q)", role, RoleEdge, RoleNode)
	}
}

// contentVersion hashes a snapshot's content with its Version left out.
func contentVersion(s *config.Snapshot) string {
	c := *s
	c.Version = ""
	return hashJSON(&c)
}

// hashJSON is a short hash of v's JSON form, streamed into the hash so that a large
// configuration is never held twice in memory.
func hashJSON(v any) string {
	h := sha256.New()
	if err := json.NewEncoder(h).Encode(v); err != nil {
		// The IR is plain data and always marshals; hash the error text rather than
		// give two different snapshots the same version.
		h.Write([]byte(err.Error()))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// viewKey identifies what one kind of replica is sent.
type viewKey struct {
	role   string
	schema int
}

// view is one role's snapshot in one schema version, encoded once for every replica
// that needs it.
type view struct {
	version string
	snap    *config.Snapshot
	err     error

	encodeOnce sync.Once
	lines      *SnapshotLines
	frame      []byte // the complete snapshot frame, header included
	encodeErr  error

	deltaMu sync.Mutex
	deltas  map[lineSum][]byte // delta frames to this view, by the digest of their base
}

// maxCachedDeltas bounds how many bases a view keeps delta frames for. Replicas
// mostly hold one of the last few versions, so a handful serves a whole fleet.
const maxCachedDeltas = 8

// encoded returns the snapshot's lines and frame, encoding them on first use.
func (v *view) encoded() (*SnapshotLines, []byte, error) {
	v.encodeOnce.Do(func() {
		lines, err := encodeSnapshotLines(v.snap)
		if err != nil {
			v.encodeErr = err
			return
		}
		payload, _ := lines.Payload() // set by encodeSnapshotLines, never an error
		if uint64(len(payload)) > 1<<32-1 {
			v.encodeErr = fmt.Errorf("%w: snapshot %s is %d bytes compressed", ErrFrameTooLarge, v.version, len(payload))
			return
		}
		v.lines = lines
		v.frame = appendFrame(make([]byte, 0, FrameHeaderSize+len(payload)), FrameSnapshot, payload)
	})
	return v.lines, v.frame, v.encodeErr
}

// deltaFrom returns the delta frame that rebuilds v from base, computing it once per
// base for every replica that holds base. The view must be encoded.
func (v *view) deltaFrom(base *SnapshotLines) ([]byte, error) {
	v.deltaMu.Lock()
	defer v.deltaMu.Unlock()
	if f, ok := v.deltas[base.digest]; ok {
		return f, nil
	}
	payload, err := EncodeDelta(base, v.lines)
	if err != nil {
		return nil, fmt.Errorf("encoding the delta to snapshot %s: %w", v.version, err)
	}
	if uint64(len(payload)) > 1<<32-1 {
		return nil, fmt.Errorf("%w: delta to snapshot %s is %d bytes compressed", ErrFrameTooLarge, v.version, len(payload))
	}
	frame := appendFrame(make([]byte, 0, FrameHeaderSize+len(payload)), FrameDelta, payload)
	if v.deltas == nil || len(v.deltas) >= maxCachedDeltas {
		v.deltas = map[lineSum][]byte{}
	}
	v.deltas[base.digest] = frame
	return frame, nil
}

// buildView computes the view of snap for key.
func buildView(snap *config.Snapshot, key viewKey) *view {
	s, err := ForRole(snap, key.role)
	if err == nil && key.schema != s.SchemaVersion {
		s, err = config.Downgrade(s, key.schema)
	}
	if err != nil {
		return &view{err: err}
	}
	return &view{version: s.Version, snap: s}
}

// generation is one published snapshot and the views computed from it so far.
type generation struct {
	seq  uint64
	snap *config.Snapshot

	mu    sync.Mutex
	views map[viewKey]*view
}

// viewCache remembers the newest view of each key, so that a generation whose view is
// unchanged for a role reuses the previous generation's encoding instead of
// compressing the same content again.
type viewCache struct {
	mu     sync.Mutex
	newest map[viewKey]cachedView
}

type cachedView struct {
	seq uint64
	v   *view
}

// viewOf returns gen's view for key, computing it once per generation.
func (c *viewCache) viewOf(gen *generation, key viewKey) *view {
	gen.mu.Lock()
	defer gen.mu.Unlock()
	if v, ok := gen.views[key]; ok {
		return v
	}
	v := buildView(gen.snap, key)
	c.mu.Lock()
	prev, ok := c.newest[key]
	switch {
	case ok && v.err == nil && prev.v.err == nil && prev.v.version == v.version:
		v = prev.v
	case !ok || gen.seq >= prev.seq:
		c.newest[key] = cachedView{seq: gen.seq, v: v}
	}
	c.mu.Unlock()
	gen.views[key] = v
	return v
}
