package distribute

import (
	"io"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// rawFrame is one snapshot or delta frame read from a stream.
type rawFrame struct {
	typ     FrameType
	payload []byte
}

// nextDataFrame returns the next snapshot or delta frame, skipping heartbeats.
func nextDataFrame(t *testing.T, body io.Reader) rawFrame {
	t.Helper()
	ch := make(chan rawFrame, 1)
	errc := make(chan error, 1)
	go func() {
		for {
			typ, payload, err := ReadFrame(body, DefaultMaxFrameBytes)
			if err != nil {
				errc <- err
				return
			}
			if typ == FrameSnapshot || typ == FrameDelta {
				ch <- rawFrame{typ, payload}
				return
			}
		}
	}()
	select {
	case f := <-ch:
		return f
	case err := <-errc:
		t.Fatalf("stream: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no frame within 10s")
	}
	return rawFrame{}
}

// A replica that asks for deltas gets the second snapshot as a delta it can rebuild;
// one that does not ask (an older agent) gets whole snapshots only.
func TestStreamSendsDeltasOnlyToReplicasThatAskForThem(t *testing.T) {
	ts := startServer(t, Options{})
	first := largeSnapshot(1000, 500, 4, "v1")
	ts.Publish(first)
	old := ts.openStream(t, StreamParams{Node: "old", Role: RoleEdge, Schema: config.SchemaVersion}, testToken)
	fresh := ts.openStream(t, StreamParams{Node: "new", Role: RoleEdge, Schema: config.SchemaVersion, Delta: true}, testToken)
	fOld, fNew := nextDataFrame(t, old.Body), nextDataFrame(t, fresh.Body)
	if fOld.typ != FrameSnapshot || fNew.typ != FrameSnapshot {
		t.Fatalf("first frames are types %d and %d, want whole snapshots", fOld.typ, fNew.typ)
	}
	held, err := ParseSnapshotLines(fNew.payload, DefaultMaxFrameBytes)
	mustNotErr(t, err)

	second := largeSnapshot(1000, 500, 4, "v2")
	second.Backends[17].Endpoints[1].Ready = false
	ts.Publish(second)
	fOld, fNew = nextDataFrame(t, old.Body), nextDataFrame(t, fresh.Body)
	if fOld.typ != FrameSnapshot {
		t.Errorf("the replica without delta=1 got frame type %d, want a whole snapshot", fOld.typ)
	}
	if fNew.typ != FrameDelta || len(fNew.payload)*10 > len(fOld.payload) {
		t.Fatalf("the delta replica got frame type %d of %d bytes; the whole snapshot is %d bytes",
			fNew.typ, len(fNew.payload), len(fOld.payload))
	}
	rebuilt, err := held.ApplyDelta(fNew.payload, DefaultMaxFrameBytes)
	mustNotErr(t, err)
	got, err := NewDecoder(DefaultMaxFrameBytes).DecodeLines(rebuilt)
	mustNotErr(t, err)
	if jsonOf(t, got) != jsonOf(t, second) {
		t.Error("the rebuilt snapshot differs from the published one")
	}
	if r, _ := replicaOf(ts.Server, "new", RoleEdge); r.DeltasSent != 1 {
		t.Errorf("DeltasSent = %d, want 1", r.DeltasSent)
	}
}

// A replica that reconnects declaring the lines it holds gets deltas against them at
// once, but only when they are the server's: any other base means a whole snapshot.
func TestStreamStartsFromTheDeclaredBaseOnlyWhenTheServerHasIt(t *testing.T) {
	ts := startServer(t, Options{})
	first := largeSnapshot(200, 100, 2, "v1")
	ts.Publish(first)
	held := linesOf(t, first)
	other := linesOf(t, largeSnapshot(200, 100, 2, "other"))
	good := ts.openStream(t, StreamParams{Node: "a", Role: RoleEdge, Schema: config.SchemaVersion, Have: "v1", Delta: true, Base: held.Digest()}, testToken)
	bad := ts.openStream(t, StreamParams{Node: "b", Role: RoleEdge, Schema: config.SchemaVersion, Have: "v1", Delta: true, Base: other.Digest()}, testToken)
	waitFor(t, "both streams", func() bool {
		_, a := replicaOf(ts.Server, "a", RoleEdge)
		_, b := replicaOf(ts.Server, "b", RoleEdge)
		return a && b
	})
	second := largeSnapshot(200, 100, 2, "v2")
	ts.Publish(second)
	if f := nextDataFrame(t, good.Body); f.typ != FrameDelta {
		t.Errorf("the replica holding the server's lines got frame type %d, want a delta", f.typ)
	} else if rebuilt, err := held.ApplyDelta(f.payload, DefaultMaxFrameBytes); err != nil || rebuilt.Digest() != linesOf(t, second).Digest() {
		t.Errorf("rebuilding from the delta: %v", err)
	}
	if f := nextDataFrame(t, bad.Body); f.typ != FrameSnapshot {
		t.Errorf("the replica holding other lines got frame type %d, want a whole snapshot", f.typ)
	}
}
