package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/controller/distribute"
)

func TestReplicasSharingANodeKeepTheirStreams(t *testing.T) {
	pki := newTestPKI(t)
	var serverLogs syncBuffer
	// The heartbeat is short, to exercise many keepalives, but not so short that a
	// loaded machine's scheduling pauses (three missed heartbeats end a stream) count
	// as churn.
	c := startController(t, pki, "127.0.0.1:0", distribute.Options{
		HeartbeatInterval: 300 * time.Millisecond, Logger: newLogger(&serverLogs)})
	c.Publish(smallSnapshot("v0", "/a", "127.0.0.1:1"))
	recs := []*recorder{{}, {}}
	var agents []*Agent
	for _, rec := range recs {
		// Same node and role, as two Pods of one Deployment on one node would be.
		a, _ := runAgent(t, baseOptions(t, pki, c, rec, testToken))
		agents = append(agents, a)
	}
	for i, a := range agents {
		waitFor(t, fmt.Sprintf("agent %d to apply v0", i), a.Ready)
	}
	if agents[0].Status().Instance == agents[1].Status().Instance {
		t.Fatalf("both agents drew instance %q", agents[0].Status().Instance)
	}

	// For two seconds, both keep their one stream and get every push.
	last := ""
	for i := 1; i <= 10; i++ {
		last = fmt.Sprintf("v%d", i)
		c.Publish(smallSnapshot(last, fmt.Sprintf("/p%d", i), "127.0.0.1:1"))
		time.Sleep(200 * time.Millisecond)
	}
	for i, rec := range recs {
		waitWithin(t, 2*time.Second, fmt.Sprintf("agent %d to apply %s", i, last), func() bool {
			s := rec.last()
			return s != nil && s.Version == last
		})
	}
	if opened := strings.Count(serverLogs.String(), "replica connected"); opened != 2 {
		t.Errorf("the controller saw %d streams open, want 2 (one per replica, no churn)", opened)
	}
	reps := c.Replicas()
	if len(reps) != 2 || !reps[0].Connected || !reps[1].Connected || reps[0].Instance == reps[1].Instance {
		t.Errorf("replicas %+v, want two connected with distinct instances", reps)
	}
	// Each learns from its acks that two replicas of its role are connected, which
	// global rate limits divide by while Redis is down.
	for i, a := range agents {
		waitWithin(t, 2*time.Second, fmt.Sprintf("agent %d to learn the fleet size", i), func() bool { return a.Replicas() == 2 })
	}
}

func TestStreamThatFailsAtOnceBacksOffAndDropsTheHeldLines(t *testing.T) {
	pki := newTestPKI(t)
	var mu sync.Mutex
	var opens []time.Time
	var bases []string
	// A controller that accepts every stream and then sends a delta frame that cannot
	// be read, so that every stream fails right after it opens.
	failing := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != distribute.PathSnapshots {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		mu.Lock()
		opens = append(opens, time.Now())
		bases = append(bases, r.URL.Query().Get("base"))
		mu.Unlock()
		w.Header().Set(distribute.HeaderStream, "s")
		w.Header().Set(distribute.HeaderHeartbeatMs, "1000")
		w.WriteHeader(http.StatusOK)
		_ = distribute.WriteFrame(w, distribute.FrameDelta, []byte("not gzip"))
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	addr := serveTLS(t, pki, failing)
	opts := baseOptions(t, pki, &controller{addr: addr}, &recorder{}, testToken)
	opts.MinBackoff, opts.MaxBackoff = 20*time.Millisecond, 400*time.Millisecond
	saved, err := distribute.EncodeSnapshot(smallSnapshot("v1", "/a", "127.0.0.1:1"))
	must(t, err)
	must(t, os.WriteFile(opts.StatePath, saved, 0o600))
	a, _ := runAgent(t, opts)
	waitFor(t, "seven streams", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(opens) >= 7
	})

	mu.Lock()
	defer mu.Unlock()
	// Windows double from 20 ms; each wait is drawn from the upper half of its
	// window, so the sixth wait is at least 160 ms. Reset after every stream, each
	// wait would be at most 20 ms.
	if gap := opens[6].Sub(opens[5]); gap < 150*time.Millisecond {
		t.Errorf("the seventh stream opened %s after the sixth; the backoff was reset by streams that failed at once", gap)
	}
	if bases[0] == "" {
		t.Errorf("the first stream declared no base, though the agent loaded a saved snapshot")
	}
	for i, b := range bases[1:] {
		if b != "" {
			t.Errorf("stream %d declared base %q after a delta failed; want none, to get the whole snapshot", i+2, b)
		}
	}
	if !a.Ready() {
		t.Error("the saved snapshot stopped serving")
	}
}

var errTokenRejected = errors.New("token rejected")

// rotatingAuth accepts the tokens in valid, all as one identity; tests change the set.
type rotatingAuth struct {
	mu    sync.Mutex
	valid map[string]bool
}

func (r *rotatingAuth) Authenticate(_ context.Context, token string) (distribute.Identity, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.valid[token] {
		return distribute.Identity{}, errTokenRejected
	}
	return distribute.Identity{Name: "gateway"}, nil
}

func (r *rotatingAuth) set(tokens ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.valid = map[string]bool{}
	for _, tok := range tokens {
		r.valid[tok] = true
	}
}

func TestAcksUseTheRotatedToken(t *testing.T) {
	pki := newTestPKI(t)
	auth := &rotatingAuth{}
	auth.set("old")
	hb := 50 * time.Millisecond
	c := startController(t, pki, "127.0.0.1:0", distribute.Options{Authenticator: auth, HeartbeatInterval: hb})
	c.Publish(smallSnapshot("v1", "/a", "127.0.0.1:1"))
	opts := baseOptions(t, pki, c, &recorder{}, "old")
	a, _ := runAgent(t, opts)
	waitFor(t, "the agent to apply v1", a.Ready)
	before, _ := c.replica("gw-1", distribute.RoleEdge)

	// The token rotates and the old one expires while the stream stays open.
	auth.set("old", "new")
	must(t, os.WriteFile(opts.TokenFile, []byte("new\n"), 0o600))
	auth.set("new")
	c.Publish(smallSnapshot("v2", "/b", "127.0.0.1:1"))
	waitFor(t, "the ack of v2", func() bool {
		r, _ := c.replica("gw-1", distribute.RoleEdge)
		return r.AckedVersion == "v2"
	})
	// Acks with the expired token would be refused and the controller would end the
	// stream after three silent heartbeat intervals.
	time.Sleep(6 * hb)
	after, _ := c.replica("gw-1", distribute.RoleEdge)
	if !after.Connected || !after.ConnectedSince.Equal(before.ConnectedSince) || !after.LastAck.After(before.LastAck) {
		t.Errorf("replica before %+v, after %+v; want the same stream, still acked", before, after)
	}
}

func TestInstanceIsSentWithTheStream(t *testing.T) {
	pki := newTestPKI(t)
	c := startController(t, pki, "127.0.0.1:0", distribute.Options{})
	c.Publish(smallSnapshot("v1", "/a", "127.0.0.1:1"))
	a, _ := runAgent(t, baseOptions(t, pki, c, &recorder{}, testToken))
	waitFor(t, "the agent to apply v1", a.Ready)
	r, ok := c.replica("gw-1", distribute.RoleEdge)
	if !ok || r.Instance == "" || r.Instance != a.Status().Instance {
		t.Errorf("replica %+v, agent instance %q", r, a.Status().Instance)
	}
}
