package distribute

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

func edgeParams(node string) StreamParams {
	return StreamParams{Node: node, Role: RoleEdge, Schema: config.SchemaVersion}
}

func TestStreamRefusesBadRequestsWithClearErrors(t *testing.T) {
	ts := startServer(t, Options{})
	cases := []struct {
		name   string
		params StreamParams
		token  string
		code   int
		want   string
	}{
		{"no token", edgeParams("a"), "", http.StatusUnauthorized, "missing bearer token"},
		{"wrong token", edgeParams("a"), "wrong", http.StatusUnauthorized, "token rejected"},
		{"no node", StreamParams{Role: RoleEdge, Schema: config.SchemaVersion}, testToken, http.StatusBadRequest, "missing node"},
		{"bad role", StreamParams{Node: "a", Role: "mesh", Schema: config.SchemaVersion}, testToken, http.StatusBadRequest, "unknown role"},
		{"schema too new", StreamParams{Node: "a", Role: RoleEdge, Schema: config.SchemaVersion + 1}, testToken,
			http.StatusBadRequest, "upgrade the controller first"},
		{"schema too old", StreamParams{Node: "a", Role: RoleEdge, Schema: config.SchemaVersion - 2}, testToken,
			http.StatusUpgradeRequired, "upgrade the gateway"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := ts.openStream(t, c.params, c.token)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.code || !strings.Contains(string(body), c.want) {
				t.Errorf("got %d %q, want %d with %q", resp.StatusCode, body, c.code, c.want)
			}
		})
	}
	if n := len(ts.Replicas()); n != 0 {
		t.Errorf("refused streams left %d replicas", n)
	}
}

func TestStreamPushesSnapshotsAndRecordsAcks(t *testing.T) {
	ts := startServer(t, Options{})
	resp := ts.openStream(t, edgeParams("gw-1"), testToken)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ContentTypeFrames {
		t.Fatalf("got %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	stream := resp.Header.Get(HeaderStream)
	ch := frames(resp.Body)

	v1 := snapshotWith("/a", "127.0.0.1:1")
	ts.Publish(v1)
	if got := nextSnapshot(t, ch); got.Version != v1.Version || got.RoutesVersion != v1.RoutesVersion {
		t.Fatalf("got version %s, want %s", got.Version, v1.Version)
	}
	if code := ts.ack(t, testToken, Ack{Stream: stream, Applied: v1.Version}); code != http.StatusNoContent {
		t.Fatalf("ack answered %d", code)
	}
	r, ok := replicaOf(ts.Server, "gw-1", RoleEdge)
	if !ok || !r.Connected || r.SentVersion != v1.Version || r.AckedVersion != v1.Version ||
		r.Identity != SharedTokenIdentity || r.SchemaVersion != config.SchemaVersion || r.BytesSent == 0 ||
		r.LastAck.IsZero() || r.ConnectedSince.IsZero() || !strings.HasPrefix(r.RemoteAddr, "127.0.0.1:") {
		t.Fatalf("replica status %+v", r)
	}

	v2 := snapshotWith("/b", "127.0.0.1:1")
	ts.Publish(v2)
	ts.Publish(v2) // republishing the same version sends nothing more
	if got := nextSnapshot(t, ch); got.Version != v2.Version {
		t.Fatalf("got version %s, want %s", got.Version, v2.Version)
	}
	code := ts.ack(t, testToken, Ack{Stream: stream, Applied: v1.Version, Rejected: v2.Version, Error: "bind: address in use"})
	if code != http.StatusNoContent {
		t.Fatalf("ack answered %d", code)
	}
	r, _ = replicaOf(ts.Server, "gw-1", RoleEdge)
	if r.AckedVersion != v1.Version || r.RejectedVersion != v2.Version || r.AckError != "bind: address in use" {
		t.Errorf("after a rejection: %+v", r)
	}
}

func TestStreamSkipsVersionsTheReplicaHas(t *testing.T) {
	ts := startServer(t, Options{HeartbeatInterval: 50 * time.Millisecond})
	v1 := snapshotWith("/a", "127.0.0.1:1")
	ts.Publish(v1)
	p := edgeParams("gw-1")
	p.Have = v1.Version
	resp := ts.openStream(t, p, testToken)
	stream := resp.Header.Get(HeaderStream)
	// The replica may ack the version it has as soon as its stream is open; the
	// version shows as sent by then.
	if code := ts.ack(t, testToken, Ack{Stream: stream, Applied: v1.Version}); code != http.StatusNoContent {
		t.Fatalf("ack answered %d", code)
	}
	if r, _ := replicaOf(ts.Server, "gw-1", RoleEdge); r.SentVersion != v1.Version || r.AckedVersion != v1.Version {
		t.Errorf("sent %q and acked %q right after connecting with %s", r.SentVersion, r.AckedVersion, v1.Version)
	}
	ts.keepAlive(t, stream, 10*time.Millisecond)
	ch := frames(resp.Body)
	expectNoSnapshot(t, ch, 3)
	v2 := snapshotWith("/b", "127.0.0.1:1")
	ts.Publish(v2)
	if got := nextSnapshot(t, ch); got.Version != v2.Version {
		t.Errorf("got %s, want %s", got.Version, v2.Version)
	}
}

// expectNoSnapshot reads n heartbeats and fails if a snapshot comes first.
func expectNoSnapshot(t *testing.T, ch <-chan frame, n int) {
	t.Helper()
	for n > 0 {
		select {
		case f := <-ch:
			if f.err != nil {
				t.Fatalf("stream: %v", f.err)
			}
			if f.typ == FrameSnapshot {
				t.Fatalf("unexpected snapshot %s", f.snap.Version)
			}
			n--
		case <-time.After(5 * time.Second):
			t.Fatal("no heartbeat within 5s")
		}
	}
}

func TestNodeReplicasGetBackendsAndNoRouteOnlyChanges(t *testing.T) {
	ts := startServer(t, Options{HeartbeatInterval: 50 * time.Millisecond})
	resp := ts.openStream(t, StreamParams{Node: "node-1", Role: RoleNode, Schema: config.SchemaVersion}, testToken)
	ts.keepAlive(t, resp.Header.Get(HeaderStream), 10*time.Millisecond)
	ch := frames(resp.Body)

	ts.Publish(snapshotWith("/a", "127.0.0.1:1"))
	first := nextSnapshot(t, ch)
	if len(first.Listeners) != 0 || len(first.Backends) != 1 {
		t.Fatalf("node view has %d listeners and %d backends", len(first.Listeners), len(first.Backends))
	}
	routeOnly := snapshotWith("/b", "127.0.0.1:1")
	ts.Publish(routeOnly)
	expectNoSnapshot(t, ch, 3)
	r, _ := replicaOf(ts.Server, "node-1", RoleNode)
	if r.SentVersion != first.Version {
		t.Errorf("sent version %s after a route-only change, want %s", r.SentVersion, first.Version)
	}

	ts.Publish(snapshotWith("/b", "127.0.0.1:2"))
	second := nextSnapshot(t, ch)
	if second.Version == first.Version || second.Backends[0].Endpoints[0].Address != "127.0.0.1:2" {
		t.Errorf("backend change: got %+v", second)
	}
}

func TestOlderSchemaReplicaGetsADowngradedSnapshot(t *testing.T) {
	ts := startServer(t, Options{})
	old := config.SchemaVersion - 1
	resp := ts.openStream(t, StreamParams{Node: "old", Role: RoleEdge, Schema: old}, testToken)
	ch := frames(resp.Body)
	snap := snapshotWith("/a", "127.0.0.1:1")
	// Schema 4 added the mesh, which a schema 3 replica does not know.
	snap.Mesh = &config.Mesh{Services: []config.MeshService{{Namespace: "ns", Name: "svc"}}}
	ts.Publish(snap)
	got := nextSnapshot(t, ch)
	if got.SchemaVersion != old || got.Version != snap.Version || got.Mesh != nil || len(got.Backends) != len(snap.Backends) {
		t.Errorf("got schema %d version %s with %d backends, mesh %v", got.SchemaVersion, got.Version, len(got.Backends), got.Mesh)
	}
	if r, _ := replicaOf(ts.Server, "old", RoleEdge); r.SchemaVersion != old {
		t.Errorf("replica schema %d, want %d", r.SchemaVersion, old)
	}
}

func TestAcksAreCheckedAgainstTheStream(t *testing.T) {
	ts := startServer(t, Options{Authenticator: tokensFor(map[string]string{"a": "alice", "b": "bob"})})
	resp := ts.openStream(t, edgeParams("gw-1"), "a")
	stream := resp.Header.Get(HeaderStream)
	if code := ts.ack(t, "b", Ack{Stream: stream}); code != http.StatusForbidden {
		t.Errorf("ack by another identity: %d, want 403", code)
	}
	if code := ts.ack(t, "a", Ack{Stream: "nope"}); code != http.StatusNotFound {
		t.Errorf("ack of an unknown stream: %d, want 404", code)
	}
	if code := ts.ack(t, "x", Ack{Stream: stream}); code != http.StatusUnauthorized {
		t.Errorf("ack with a bad token: %d, want 401", code)
	}
	if code := ts.ack(t, "a", Ack{Stream: stream, Applied: "v"}); code != http.StatusNoContent {
		t.Errorf("good ack: %d", code)
	}
}

// tokensFor authenticates each token as the user the map gives.
type tokensFor map[string]string

func (m tokensFor) Authenticate(_ context.Context, token string) (Identity, error) {
	if u, ok := m[token]; ok {
		return Identity{Name: u}, nil
	}
	return Identity{}, errTest
}

func TestSilentReplicaIsDisconnected(t *testing.T) {
	hb := 30 * time.Millisecond
	ts := startServer(t, Options{HeartbeatInterval: hb})
	start := time.Now()
	resp := ts.openStream(t, edgeParams("gw-1"), testToken)
	if got := resp.Header.Get(HeaderHeartbeatMs); got != "30" {
		t.Errorf("heartbeat header %q", got)
	}
	_, _ = io.Copy(io.Discard, resp.Body) // returns when the server ends the stream
	if took := time.Since(start); took < missedHeartbeats*hb {
		t.Errorf("stream ended after %s, before %d heartbeats", took, missedHeartbeats)
	}
	waitFor(t, "the replica to show disconnected", func() bool {
		r, ok := replicaOf(ts.Server, "gw-1", RoleEdge)
		return ok && !r.Connected && !r.DisconnectedAt.IsZero()
	})
}

func TestNewStreamSupersedesTheOldOne(t *testing.T) {
	ts := startServer(t, Options{})
	first := ts.openStream(t, edgeParams("gw-1"), testToken)
	second := ts.openStream(t, edgeParams("gw-1"), testToken)
	_, _ = io.Copy(io.Discard, first.Body)
	if code := ts.ack(t, testToken, Ack{Stream: first.Header.Get(HeaderStream)}); code != http.StatusNotFound {
		t.Errorf("ack on the superseded stream: %d, want 404", code)
	}
	reps := ts.Replicas()
	if len(reps) != 1 || !reps[0].Connected {
		t.Errorf("replicas %+v, want one connected", reps)
	}
	if code := ts.ack(t, testToken, Ack{Stream: second.Header.Get(HeaderStream)}); code != http.StatusNoContent {
		t.Errorf("ack on the new stream: %d", code)
	}
}

// bigSnapshot is a snapshot of about n bytes that compresses poorly, so a few of them
// fill the connection's buffers.
func bigSnapshot(t *testing.T, i, n int) *config.Snapshot {
	noise := make([]byte, n/2)
	_, _ = rand.Read(noise)
	s := snapshotWith("/a", "127.0.0.1:1")
	s.Backends[0].Endpoints[0].Zone = hex.EncodeToString(noise)
	s.Version = fmtVersion(i)
	return s
}

func TestSlowReplicaSkipsIntermediateVersions(t *testing.T) {
	ts := startServer(t, Options{})
	resp := ts.openStream(t, edgeParams("slow"), testToken)
	// Nothing reads the stream until every version is published, so the server's
	// writes block once the connection's buffers are full.
	const versions = 12
	for i := 1; i <= versions; i++ {
		ts.Publish(bigSnapshot(t, i, 512<<10))
		time.Sleep(20 * time.Millisecond)
	}
	ch := frames(resp.Body)
	var got []string
	for len(got) == 0 || got[len(got)-1] != fmtVersion(versions) {
		got = append(got, nextSnapshot(t, ch).Version)
	}
	t.Logf("received %v", got)
	if len(got) >= versions {
		t.Errorf("received every version %v; a slow replica should skip stale ones", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Errorf("versions out of order: %v", got)
		}
	}
}

func TestCloseEndsStreamsAndRefusesNewOnes(t *testing.T) {
	ts := startServer(t, Options{})
	resp := ts.openStream(t, edgeParams("gw-1"), testToken)
	ts.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	again := ts.openStream(t, edgeParams("gw-1"), testToken)
	if again.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("stream after Close: %d, want 503", again.StatusCode)
	}
}

func TestNewServerNeedsAnAuthenticator(t *testing.T) {
	if _, err := NewServer(Options{}); err == nil {
		t.Error("want an error")
	}
}
