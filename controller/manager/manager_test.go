package manager

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

// objects is a small mutable cluster for the manager to read.
type objects struct {
	mu    sync.Mutex
	ports []gwv1.PortNumber
}

func (o *objects) input() *translate.Input {
	o.mu.Lock()
	defer o.mu.Unlock()
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "default", Generation: 1},
		Spec: gwv1.GatewaySpec{GatewayClassName: "switchyard"}}
	for _, p := range o.ports {
		gw.Spec.Listeners = append(gw.Spec.Listeners, gwv1.Listener{Name: gwv1.SectionName(fmt.Sprintf("l%d", p)),
			Protocol: gwv1.HTTPProtocolType, Port: p})
	}
	return &translate.Input{
		GatewayClasses: []*gwv1.GatewayClass{{ObjectMeta: metav1.ObjectMeta{Name: "switchyard"},
			Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}}},
		Gateways: []*gwv1.Gateway{gw},
	}
}

func (o *objects) setPorts(p ...gwv1.PortNumber) {
	o.mu.Lock()
	o.ports = p
	o.mu.Unlock()
}

func TestSyncPublishesOnlyChangedSnapshots(t *testing.T) {
	o := &objects{ports: []gwv1.PortNumber{8080}}
	var published []*config.Snapshot
	clock := time.Unix(1000, 0)
	m := New(Options{Input: o.input, Publish: func(s *config.Snapshot) { published = append(published, s) },
		Now: func() time.Time { clock = clock.Add(time.Second); return clock }})
	if m.Ready() {
		t.Fatal("ready before the first translation")
	}
	m.Sync(context.Background())
	m.Sync(context.Background()) // a later clock alone changes no content
	if len(published) != 1 || !m.Ready() {
		t.Fatalf("published %d snapshots after two identical translations, want 1", len(published))
	}
	o.setPorts(8080, 9090)
	m.Sync(context.Background())
	if len(published) != 2 || len(published[1].Listeners) != 2 {
		t.Fatalf("after adding a listener: %d snapshots, want 2 with two listeners", len(published))
	}
	if got := m.Config().Version; got != published[1].Version {
		t.Errorf("admin view shows version %q, want %q", got, published[1].Version)
	}
}

func TestSyncPassesTheMeshOptions(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	input := func() *translate.Input { return &translate.Input{Services: []*corev1.Service{svc}} }
	for _, mesh := range []bool{false, true} {
		var published *config.Snapshot
		m := New(Options{Input: input, Mesh: mesh, ClusterDomain: "corp.example",
			Publish: func(s *config.Snapshot) { published = s }})
		m.Sync(context.Background())
		if published == nil || (published.Mesh != nil) != mesh {
			t.Fatalf("Mesh %v: published %+v, want a mesh exactly when it is on", mesh, published)
		}
		if mesh && (published.Mesh.ClusterDomain != "corp.example" || len(published.Mesh.Services) != 1) {
			t.Errorf("the mesh is %+v, want Service default/web in corp.example", published.Mesh)
		}
	}
}

func TestStatusIsWrittenOnlyWhileLeadingAndLatestWins(t *testing.T) {
	o := &objects{ports: []gwv1.PortNumber{8080}}
	var mu sync.Mutex
	leading := false
	var written []*translate.Output
	m := New(Options{Input: o.input, Publish: func(*config.Snapshot) {},
		Leading: func() bool { mu.Lock(); defer mu.Unlock(); return leading },
		WriteStatus: func(_ context.Context, out *translate.Output) {
			mu.Lock()
			written = append(written, out)
			mu.Unlock()
		}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.RunStatusWriter(ctx)
	m.Sync(ctx)
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	if len(written) != 0 {
		t.Fatalf("a follower wrote status %d times", len(written))
	}
	leading = true
	mu.Unlock()
	o.setPorts(8080, 9090)
	m.Sync(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(written)
		var last *translate.Output
		if n > 0 {
			last = written[n-1]
		}
		mu.Unlock()
		if n > 0 {
			if got := len(last.Snapshot.Listeners); got != 2 {
				t.Fatalf("status written for a snapshot with %d listeners, want the latest (2)", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the leader never wrote status")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The rollout driver reads each Rollout's translation result from the manager.
func TestRolloutResultsFollowTheLatestTranslation(t *testing.T) {
	o := &objects{ports: []gwv1.PortNumber{8080}}
	withRollout := func() *translate.Input {
		in := o.input()
		in.Rollouts = []*v1alpha1.Rollout{{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "default", Generation: 1},
			Spec: v1alpha1.RolloutSpec{
				TargetRef: gwv1.LocalPolicyTargetReferenceWithSectionName{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{
					Group: gwv1.GroupName, Kind: "HTTPRoute", Name: "absent"}},
				Stable: v1alpha1.RolloutBackend{Name: "a", Port: 80}, Canary: v1alpha1.RolloutBackend{Name: "b", Port: 80},
				Steps: []v1alpha1.RolloutStep{{Weight: 100}}}}}
		return in
	}
	m := New(Options{Input: withRollout, Publish: func(*config.Snapshot) {}})
	if got := m.RolloutResults(); got != nil {
		t.Fatalf("results before the first translation: %v", got)
	}
	m.Sync(context.Background())
	res, ok := m.RolloutResults()[types.NamespacedName{Namespace: "default", Name: "r"}]
	if !ok || res.Accepted.Type != "Accepted" || res.Accepted.Status != metav1.ConditionFalse {
		t.Errorf("result of a Rollout whose route is absent: %+v, %v; want Accepted=False", res, ok)
	}
}
