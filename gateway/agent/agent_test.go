package agent

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/controller/distribute"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

func TestPushAndAckRoundTrip(t *testing.T) {
	pki := newTestPKI(t)
	c := startController(t, pki, "127.0.0.1:0", distribute.Options{})
	rec := &recorder{}
	a, _ := runAgent(t, baseOptions(t, pki, c, rec, testToken))

	v1 := smallSnapshot("v1", "/a", "127.0.0.1:1")
	c.Publish(v1)
	waitFor(t, "the controller to see v1 acked", func() bool {
		r, ok := c.replica("gw-1", distribute.RoleEdge)
		return ok && r.AckedVersion == "v1"
	})
	if got := rec.last(); !reflect.DeepEqual(got, v1) {
		t.Errorf("applied %+v, want %+v", got, v1)
	}
	r, _ := c.replica("gw-1", distribute.RoleEdge)
	if !r.Connected || r.SentVersion != "v1" || r.Identity != distribute.SharedTokenIdentity ||
		r.SchemaVersion != config.SchemaVersion || r.BytesSent == 0 || r.LastAck.IsZero() {
		t.Errorf("replica status %+v", r)
	}
	st := a.Status()
	if !st.Connected || !st.Ready || st.Version != "v1" || st.Source != SourceController || st.LastApplied.IsZero() ||
		st.ControllerURL != c.url() {
		t.Errorf("agent status %+v", st)
	}

	c.Publish(smallSnapshot("v2", "/b", "127.0.0.1:1"))
	waitFor(t, "v2 acked", func() bool {
		r, _ := c.replica("gw-1", distribute.RoleEdge)
		return r.AckedVersion == "v2"
	})
	if got := rec.versions(); !slices.Equal(got, []string{"v1", "v2"}) {
		t.Errorf("applied %v", got)
	}
}

func TestNodeReplicaGetsBackendsOnlyAndNoRouteOnlyChanges(t *testing.T) {
	pki := newTestPKI(t)
	c := startController(t, pki, "127.0.0.1:0", distribute.Options{})
	edge, node := &recorder{}, &recorder{}
	runAgent(t, baseOptions(t, pki, c, edge, testToken))
	nodeOpts := baseOptions(t, pki, c, node, testToken)
	nodeOpts.Node, nodeOpts.Role = "worker-1", distribute.RoleNode
	runAgent(t, nodeOpts)

	c.Publish(smallSnapshot("v1", "/a", "127.0.0.1:1"))
	waitFor(t, "both replicas to apply v1", func() bool { return edge.last() != nil && node.last() != nil })
	if got := node.last(); len(got.Listeners) != 0 || len(got.Backends) != 1 {
		t.Fatalf("node replica got %d listeners, %d backends", len(got.Listeners), len(got.Backends))
	}

	// A route-only change reaches the edge replica; the node replica's view is the same.
	c.Publish(smallSnapshot("v2", "/b", "127.0.0.1:1"))
	waitFor(t, "the edge replica to apply v2", func() bool { return edge.last().Version == "v2" })
	// The edge replica got v2 through the same server; had the node view changed, its
	// stream would have been written in the same pass.
	time.Sleep(50 * time.Millisecond)
	if n := len(node.versions()); n != 1 {
		t.Errorf("node replica applied %d snapshots after a route-only change, want 1", n)
	}

	c.Publish(smallSnapshot("v3", "/b", "127.0.0.1:2"))
	waitFor(t, "the node replica to apply the backend change", func() bool { return len(node.versions()) == 2 })
	if got := node.last().Backends[0].Endpoints[0].Address; got != "127.0.0.1:2" {
		t.Errorf("node replica endpoint %s", got)
	}
	waitFor(t, "the controller to see the node replica's version", func() bool {
		r, _ := c.replica("worker-1", distribute.RoleNode)
		return r.AckedVersion == node.last().Version
	})
}

// countingAuth counts authentication attempts.
type countingAuth struct {
	distribute.Authenticator
	n atomic.Int32
}

func (c *countingAuth) Authenticate(ctx context.Context, token string) (distribute.Identity, error) {
	c.n.Add(1)
	return c.Authenticator.Authenticate(ctx, token)
}

func TestBadTokenIsRefusedAndRetriedUntilFixed(t *testing.T) {
	pki := newTestPKI(t)
	auth := &countingAuth{Authenticator: distribute.SharedToken(testToken)}
	c := startController(t, pki, "127.0.0.1:0", distribute.Options{Authenticator: auth})
	c.Publish(smallSnapshot("v1", "/a", "127.0.0.1:1"))
	rec := &recorder{}
	var logs syncBuffer
	opts := baseOptions(t, pki, c, rec, "wrong")
	opts.Logger = newLogger(&logs)
	a, _ := runAgent(t, opts)

	waitFor(t, "three refused attempts", func() bool { return auth.n.Load() >= 3 })
	st := a.Status()
	if st.Ready || st.Connected || !strings.Contains(st.LastError, "401") || !strings.Contains(st.LastError, "token rejected") {
		t.Errorf("status after refusals %+v", st)
	}
	if !strings.Contains(logs.String(), "rejected this replica's token") {
		t.Errorf("log does not explain the refusal:\n%s", logs.String())
	}

	// The token file is read again on every attempt: fixing it is enough.
	must(t, os.WriteFile(opts.TokenFile, []byte(testToken), 0o600))
	waitFor(t, "the agent to apply v1 with the new token", a.Ready)
}

func TestOlderSchemaReplicaGetsDowngradedSnapshot(t *testing.T) {
	pki := newTestPKI(t)
	c := startController(t, pki, "127.0.0.1:0", distribute.Options{})
	rec := &recorder{}
	opts := baseOptions(t, pki, c, rec, testToken)
	opts.SchemaVersion = config.SchemaVersion - 1
	runAgent(t, opts)
	published := smallSnapshot("v1", "/a", "127.0.0.1:1")
	want, err := config.Downgrade(published, config.SchemaVersion-1)
	must(t, err)
	c.Publish(published)
	waitFor(t, "v1 applied", func() bool { return rec.last() != nil })
	got := rec.last()
	// What each step changes is tested in package config; here the replica gets the
	// snapshot in its own schema, under the same version.
	if got.SchemaVersion != config.SchemaVersion-1 || got.RoutesVersion != want.RoutesVersion || got.Version != "v1" {
		t.Errorf("got schema %d routesVersion %q version %q", got.SchemaVersion, got.RoutesVersion, got.Version)
	}
	r, _ := c.replica("gw-1", distribute.RoleEdge)
	if r.SchemaVersion != config.SchemaVersion-1 {
		t.Errorf("controller sees schema %d", r.SchemaVersion)
	}
}

func TestUnservableSchemaIsAClearErrorNotACrash(t *testing.T) {
	pki := newTestPKI(t)
	c := startController(t, pki, "127.0.0.1:0", distribute.Options{})
	c.Publish(smallSnapshot("v1", "/a", "127.0.0.1:1"))
	cases := []struct {
		schema int
		want   string
	}{
		{config.SchemaVersion + 1, fmt.Sprintf("HTTP 400 Bad Request: replica schema %d is newer than this controller's schema %d: upgrade the controller first", config.SchemaVersion+1, config.SchemaVersion)},
		{config.SchemaVersion - 2, fmt.Sprintf("HTTP 426 Upgrade Required: replica schema %d is too old", config.SchemaVersion-2)},
	}
	for _, tc := range cases {
		a, err := New(baseOptions(t, pki, c, &recorder{}, testToken))
		must(t, err)
		a.schema = tc.schema // Options cannot say 0, which means the default
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		waitFor(t, "the refusal", func() bool { return a.Status().LastError != "" })
		st := a.Status()
		cancel()
		must(t, <-done)
		if !strings.Contains(st.LastError, tc.want) || st.Ready {
			t.Errorf("schema %d: status %+v, want error containing %q", tc.schema, st, tc.want)
		}
	}
}

func TestPersistedSnapshotServesWhileControllerIsDown(t *testing.T) {
	pki := newTestPKI(t)
	c := startController(t, pki, "127.0.0.1:0", distribute.Options{})
	rec := &recorder{}
	opts := baseOptions(t, pki, c, rec, testToken)
	a, stop := runAgent(t, opts)
	v1 := smallSnapshot("v1", "/a", "127.0.0.1:1")
	c.Publish(v1)
	waitFor(t, "v1 saved", func() bool { return a.Status().PersistedVersion == "v1" })
	fi, err := os.Stat(opts.StatePath)
	must(t, err)
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("state file mode %o, want 600", mode)
	}
	stop()
	c.stop()

	// A new replica process, and no controller.
	rec2 := &recorder{}
	opts2 := opts
	opts2.Apply = rec2.apply
	a2, _ := runAgent(t, opts2)
	waitFor(t, "the saved snapshot to be served", a2.Ready)
	st := a2.Status()
	if st.Version != "v1" || st.Source != SourcePersisted || st.Connected {
		t.Errorf("status %+v", st)
	}
	if got := rec2.last(); !reflect.DeepEqual(got, v1) {
		t.Errorf("applied %+v, want %+v", got, v1)
	}
	waitFor(t, "a failed connection attempt", func() bool { return a2.Status().LastError != "" })
	if !a2.Ready() {
		t.Error("a failed connection made the replica unready")
	}
}

func TestReplicaWithNoSnapshotIsNotReady(t *testing.T) {
	pki := newTestPKI(t)
	down := startController(t, pki, "127.0.0.1:0", distribute.Options{})
	down.stop()
	opts := baseOptions(t, pki, nil, &recorder{}, testToken)
	opts.ControllerURL = down.url()
	a, _ := runAgent(t, opts)
	waitFor(t, "a failed connection attempt", func() bool { return a.Status().LastError != "" })
	if a.Ready() || a.Status().Ready {
		t.Error("ready with no snapshot")
	}
}

func TestCorruptStateFileIsReportedAndIgnored(t *testing.T) {
	pki := newTestPKI(t)
	c := startController(t, pki, "127.0.0.1:0", distribute.Options{})
	rec := &recorder{}
	opts := baseOptions(t, pki, c, rec, testToken)
	must(t, os.WriteFile(opts.StatePath, []byte("\x1f\x8b garbage"), 0o600))
	var logs syncBuffer
	opts.Logger = newLogger(&logs)
	a, _ := runAgent(t, opts)
	waitFor(t, "the corrupt file to be reported", func() bool { return strings.Contains(logs.String(), "corrupt") })
	if len(rec.versions()) != 0 {
		t.Error("a corrupt file was applied")
	}
	c.Publish(smallSnapshot("v1", "/a", "127.0.0.1:1"))
	waitFor(t, "v1 from the controller", a.Ready)
	waitFor(t, "v1 saved over the corrupt file", func() bool { return a.Status().PersistedVersion == "v1" })
}

func TestApplyErrorIsAckedAndNotPersisted(t *testing.T) {
	pki := newTestPKI(t)
	c := startController(t, pki, "127.0.0.1:0", distribute.Options{})
	rec := &recorder{fail: map[string]error{"bad": errBadSnapshot}}
	opts := baseOptions(t, pki, c, rec, testToken)
	a, _ := runAgent(t, opts)
	c.Publish(smallSnapshot("v1", "/a", "127.0.0.1:1"))
	waitFor(t, "v1 saved", func() bool { return a.Status().PersistedVersion == "v1" })

	c.Publish(smallSnapshot("bad", "/b", "127.0.0.1:1"))
	// A stream that restarts meanwhile reports v1 as sent until "bad" goes out
	// again, so the wait is for the rejection of the version last sent.
	waitFor(t, "the rejection acked", func() bool {
		r, _ := c.replica("gw-1", distribute.RoleEdge)
		return r.RejectedVersion == "bad" && r.SentVersion == "bad"
	})
	r, _ := c.replica("gw-1", distribute.RoleEdge)
	if r.AckedVersion != "v1" || r.AckError != errBadSnapshot.Error() || r.SentVersion != "bad" {
		t.Errorf("replica status %+v", r)
	}
	st := a.Status()
	if st.Version != "v1" || st.RejectedVersion != "bad" || !strings.Contains(st.LastError, "address already in use") {
		t.Errorf("agent status %+v", st)
	}
	// Give a wrongful save every chance to happen, then check the file still holds v1.
	time.Sleep(50 * time.Millisecond)
	payload, err := os.ReadFile(opts.StatePath)
	must(t, err)
	saved, err := distribute.DecodeSnapshot(payload, distribute.DefaultMaxFrameBytes)
	must(t, err)
	if saved.Version != "v1" || a.Status().PersistedVersion != "v1" {
		t.Errorf("saved %s after a failed apply, want v1", saved.Version)
	}

	c.Publish(smallSnapshot("v3", "/c", "127.0.0.1:1"))
	waitFor(t, "v3 acked", func() bool {
		r, _ := c.replica("gw-1", distribute.RoleEdge)
		return r.AckedVersion == "v3" && r.RejectedVersion == "" && r.AckError == ""
	})
}

func TestAgentReconnectsAfterControllerRestart(t *testing.T) {
	pki := newTestPKI(t)
	c1 := startController(t, pki, "127.0.0.1:0", distribute.Options{})
	rec := &recorder{}
	a, _ := runAgent(t, baseOptions(t, pki, c1, rec, testToken))
	c1.Publish(smallSnapshot("v1", "/a", "127.0.0.1:1"))
	waitFor(t, "v1 applied", a.Ready)

	c1.stop()
	waitFor(t, "the agent to notice", func() bool { return !a.Status().Connected })
	c2 := startController(t, pki, c1.addr, distribute.Options{})
	c2.Publish(smallSnapshot("v2", "/b", "127.0.0.1:1"))
	waitFor(t, "the new controller to see v2 acked", func() bool {
		r, ok := c2.replica("gw-1", distribute.RoleEdge)
		return ok && r.Connected && r.AckedVersion == "v2"
	})
	if got := rec.versions(); !slices.Equal(got, []string{"v1", "v2"}) {
		t.Errorf("applied %v", got)
	}
}

func TestReconnectDoesNotResendTheRunningVersion(t *testing.T) {
	pki := newTestPKI(t)
	c1 := startController(t, pki, "127.0.0.1:0", distribute.Options{})
	rec := &recorder{}
	a, _ := runAgent(t, baseOptions(t, pki, c1, rec, testToken))
	c1.Publish(smallSnapshot("v1", "/a", "127.0.0.1:1"))
	waitFor(t, "v1 applied", a.Ready)
	c1.stop()
	c2 := startController(t, pki, c1.addr, distribute.Options{})
	c2.Publish(smallSnapshot("v1", "/a", "127.0.0.1:1"))
	waitFor(t, "the new controller to see v1 acked", func() bool {
		r, ok := c2.replica("gw-1", distribute.RoleEdge)
		return ok && r.AckedVersion == "v1" && r.SentVersion == "v1"
	})
	r, _ := c2.replica("gw-1", distribute.RoleEdge)
	if r.BytesSent != 0 {
		t.Errorf("the new controller sent %d bytes for a version the replica runs", r.BytesSent)
	}
	if n := len(rec.versions()); n != 1 {
		t.Errorf("applied %d times", n)
	}
}

func TestSlowReplicaSkipsIntermediateVersions(t *testing.T) {
	pki := newTestPKI(t)
	c := startController(t, pki, "127.0.0.1:0", distribute.Options{})
	rec := &recorder{gate: make(chan struct{}), entered: make(chan string, 16)}
	a, _ := runAgent(t, baseOptions(t, pki, c, rec, testToken))
	c.Publish(smallSnapshot("v1", "/a", "127.0.0.1:1"))
	if got := <-rec.entered; got != "v1" {
		t.Fatalf("first apply %s", got)
	}
	// While v1 applies, eight more versions arrive; the agent reads them all but
	// applies only the newest.
	for i := 2; i <= 9; i++ {
		c.Publish(smallSnapshot("v"+string(rune('0'+i)), "/a", "127.0.0.1:"+string(rune('0'+i))))
		time.Sleep(2 * time.Millisecond)
	}
	// The controller counts a frame as sent before writing it, so its SentVersion
	// says nothing of what the agent has read: wait until the agent's reader holds
	// v9, which it has then offered to the session, still busy with v1.
	waitFor(t, "the agent to read v9", func() bool {
		lines := a.held()
		if lines == nil {
			return false
		}
		snap, err := distribute.NewDecoder(distribute.DefaultMaxFrameBytes).DecodeLines(lines)
		return err == nil && snap.Version == "v9"
	})
	close(rec.gate)
	waitFor(t, "v9 applied", func() bool { l := rec.last(); return l != nil && l.Version == "v9" })
	if got := rec.versions(); !slices.Equal(got, []string{"v1", "v9"}) {
		t.Errorf("applied %v, want [v1 v9]", got)
	}
}

func TestAgentDropsASilentController(t *testing.T) {
	pki := newTestPKI(t)
	var streams atomic.Int32
	// A controller that opens streams and then says nothing, heartbeats included.
	silent := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != distribute.PathSnapshots {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		streams.Add(1)
		w.Header().Set(distribute.HeaderStream, "s")
		w.Header().Set(distribute.HeaderHeartbeatMs, "20")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	addr := serveTLS(t, pki, silent)
	var logs syncBuffer
	opts := baseOptions(t, pki, &controller{addr: addr}, &recorder{}, testToken)
	opts.Logger = newLogger(&logs)
	start := time.Now()
	runAgent(t, opts)
	waitFor(t, "a second stream", func() bool { return streams.Load() >= 2 })
	if took := time.Since(start); took < 3*20*time.Millisecond {
		t.Errorf("reconnected after %s, before three heartbeats were missed", took)
	}
	if !strings.Contains(logs.String(), "no data from the controller for 60ms") {
		t.Errorf("log does not say why the stream was dropped:\n%s", logs.String())
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	good := Options{ControllerURL: "https://127.0.0.1:1", Node: "n", Role: distribute.RoleEdge, Apply: (&recorder{}).apply}
	cases := map[string]func(*Options){
		"no apply":  func(o *Options) { o.Apply = nil },
		"no node":   func(o *Options) { o.Node = "" },
		"bad role":  func(o *Options) { o.Role = "mesh" },
		"no url":    func(o *Options) { o.ControllerURL = "" },
		"plaintext": func(o *Options) { o.ControllerURL = "http://127.0.0.1:1" },
		"state dir": func(o *Options) { o.StatePath = "/nonexistent-dir/state" },
	}
	for name, mutate := range cases {
		o := good
		mutate(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	o := good
	o.ControllerURL = "127.0.0.1:9443"
	a, err := New(o)
	if err != nil || a.base.String() != "https://127.0.0.1:9443" {
		t.Errorf("bare host:port: %v %v", a, err)
	}
}
