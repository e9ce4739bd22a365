package kube

import (
	"context"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"
)

// changeLog records the changes a Source reports.
type changeLog struct {
	mu      sync.Mutex
	changes []Change
}

func (c *changeLog) add(ch Change) {
	c.mu.Lock()
	c.changes = append(c.changes, ch)
	c.mu.Unlock()
}

// count returns how many changes of the kind were reported.
func (c *changeLog) count(kind Kind) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ch := range c.changes {
		if ch.Kind == kind {
			n++
		}
	}
	return n
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSourceWatchesListenerSets checks that ListenerSets reach the translator input,
// that spec changes are reported, and that status-only updates (such as this
// controller's own status writes) are not.
func TestSourceWatchesListenerSets(t *testing.T) {
	ls := &gwv1.ListenerSet{
		ObjectMeta: metav1.ObjectMeta{Name: "ls", Namespace: "team", Generation: 1},
		Spec: gwv1.ListenerSetSpec{
			ParentRef: gwv1.ParentGatewayReference{Name: "gw"},
			Listeners: []gwv1.ListenerEntry{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}},
		},
	}
	gwClient := gwfake.NewClientset(ls)
	log := &changeLog{}
	src, err := NewSource(kubefake.NewClientset(), gwClient, SourceOptions{OnChange: log.add})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		cancel()
		src.Shutdown()
	}()
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if in := src.Input(); len(in.ListenerSets) != 1 || in.ListenerSets[0].Name != "ls" {
		t.Fatalf("Input().ListenerSets = %v, want the ListenerSet team/ls", in.ListenerSets)
	}
	key := types.NamespacedName{Namespace: "team", Name: "ls"}
	if src.ListenerSet(key) == nil {
		t.Fatal("ListenerSet(team/ls) = nil")
	}
	if log.count(KindListenerSet) != 0 {
		t.Fatal("objects of the initial list were reported as changes")
	}

	sets := gwClient.GatewayV1().ListenerSets("team")
	withStatus := src.ListenerSet(key).DeepCopy()
	withStatus.Status.Conditions = []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue,
		Reason: "Accepted", LastTransitionTime: metav1.Now()}}
	if _, err := sets.UpdateStatus(ctx, withStatus, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the status update to reach the cache", func() bool {
		cached := src.ListenerSet(key)
		return cached != nil && len(cached.Status.Conditions) == 1
	})

	changed := src.ListenerSet(key).DeepCopy()
	changed.Generation = 2
	changed.Spec.Listeners[0].Port = 8080
	if _, err := sets.Update(ctx, changed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the spec change to be reported", func() bool { return log.count(KindListenerSet) > 0 })
	if n := log.count(KindListenerSet); n != 1 {
		t.Errorf("got %d ListenerSet changes, want 1: the status-only update must not count", n)
	}
}
