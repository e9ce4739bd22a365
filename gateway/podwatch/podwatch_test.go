package podwatch

import (
	"context"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/switchyard-dev/switchyard/gateway/mesh"
)

// The fake clientset does not apply field selectors, so the watcher sees every
// Pod of the fake cluster, other nodes' included: that it still serves only its own
// node's Pods is part of what these tests check. The informer against a real API
// server (field selector and all) is tested in e2e/podwatch.

func pod(ns, name, node, ip string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "/" + name)},
		Spec:       corev1.PodSpec{NodeName: node, ServiceAccountName: "sa-" + name},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func startWatcher(t *testing.T, client *fake.Clientset) *Watcher {
	t.Helper()
	w, err := New(Options{Client: client, Node: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	syncCtx, syncCancel := context.WithTimeout(ctx, 10*time.Second)
	defer syncCancel()
	if !w.WaitForSync(syncCtx) {
		t.Fatal("the informer did not sync")
	}
	return w
}

// eventually polls cond for up to five seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func lookup(w *Watcher, ip string) (mesh.Caller, bool) {
	return w.Lookup(netip.MustParseAddr(ip))
}

func TestWatcherMapsTheNodesPodsOnly(t *testing.T) {
	owned := func(kind, name string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			yes := true
			p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: name, Controller: &yes, APIVersion: "apps/v1"}}
		}
	}
	client := fake.NewClientset(
		pod("shop", "web-7d9f-abcde", "node-a", "10.244.1.2", owned("ReplicaSet", "web-7d9f"), func(p *corev1.Pod) {
			p.Labels = map[string]string{labelTemplateHash: "7d9f", "unrelated": "x"}
		}),
		pod("shop", "db-0", "node-a", "10.244.1.3", owned("StatefulSet", "db")),
		pod("shop", "tool", "node-a", "10.244.1.4", func(p *corev1.Pod) { p.Labels = map[string]string{labelApp: "toolbox"} }),
		pod("shop", "elsewhere", "node-b", "10.244.2.2"),
		pod("kube-system", "proxy", "node-a", "10.244.1.1", func(p *corev1.Pod) { p.Spec.HostNetwork = true }),
		pod("shop", "done", "node-a", "10.244.1.5", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
	)
	w := startWatcher(t, client)
	cases := []struct {
		ip       string
		workload string
		ok       bool
	}{
		{"10.244.1.2", "web", true},
		{"10.244.1.3", "db", true},
		{"10.244.1.4", "toolbox", true},
		{"10.244.2.2", "", false},
		{"10.244.1.1", "", false},
		{"10.244.1.5", "", false},
		{"10.244.1.99", "", false},
	}
	for _, c := range cases {
		got, ok := lookup(w, c.ip)
		if ok != c.ok || got.Workload != c.workload {
			t.Errorf("%s: got %+v, %v; want workload %q, %v", c.ip, got, ok, c.workload, c.ok)
		}
	}
	if got, _ := lookup(w, "10.244.1.2"); got.Namespace != "shop" || got.Name != "web-7d9f-abcde" || got.ServiceAccount != "sa-web-7d9f-abcde" {
		t.Errorf("caller %+v", got)
	}
	if w.Len() != 3 {
		t.Errorf("table holds %d addresses, want 3", w.Len())
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = lookup(w, "10.244.1.2") }); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
}

func TestWatcherFollowsPodChanges(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	w := startWatcher(t, client)
	pods := client.CoreV1().Pods("shop")

	// A Pod gets its address after it is created, and a second one (dual stack).
	p, err := pods.Create(ctx, pod("shop", "a", "node-a", ""), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.PodIP, p.Status.PodIPs = "10.244.1.7", []corev1.PodIP{{IP: "10.244.1.7"}, {IP: "fd00::7"}}
	if _, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both addresses map to the Pod", func() bool {
		_, v4 := lookup(w, "10.244.1.7")
		_, v6 := lookup(w, "fd00::7")
		return v4 && v6
	})

	// Its address goes to a new Pod before the old Pod's deletion arrives: the
	// deletion must not take the new Pod's address out.
	if _, err := pods.Create(ctx, pod("shop", "b", "node-a", "10.244.1.7"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new Pod holds the address", func() bool {
		c, _ := lookup(w, "10.244.1.7")
		return c.Name == "b"
	})
	if err := pods.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the old Pod's other address is gone", func() bool {
		_, ok := lookup(w, "fd00::7")
		return !ok
	})
	if c, ok := lookup(w, "10.244.1.7"); !ok || c.Name != "b" {
		t.Fatalf("after the old Pod's deletion the address maps to %+v, %v; want Pod b", c, ok)
	}

	// A Pod that finishes leaves the table.
	b, err := pods.Get(ctx, "b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b.Status.Phase = corev1.PodFailed
	if _, err := pods.UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the finished Pod leaves the table", func() bool { return w.Len() == 0 })
}

func TestWorkloadOf(t *testing.T) {
	yes := true
	controlled := func(kind, name string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{Kind: kind, Name: name, Controller: &yes}}
	}
	cases := []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{"deployment", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "api-5c8-x", OwnerReferences: controlled("ReplicaSet", "api-5c8"),
			Labels: map[string]string{labelTemplateHash: "5c8"}}}, "api"},
		{"bare replicaset", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "rs-x", OwnerReferences: controlled("ReplicaSet", "rs")}}, "rs"},
		{"hash not a suffix", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", OwnerReferences: controlled("ReplicaSet", "rs"),
			Labels: map[string]string{labelTemplateHash: "zzz"}}}, "rs"},
		{"daemonset", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "d-x", OwnerReferences: controlled("DaemonSet", "agent")}}, "agent"},
		{"non-controller owner", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p",
			OwnerReferences: []metav1.OwnerReference{{Kind: "ConfigMap", Name: "cm"}}, Labels: map[string]string{labelName: "named"}}}, "named"},
		{"app label", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{labelApp: "legacy"}}}, "legacy"},
		{"name label first", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{labelApp: "a", labelName: "n"}}}, "n"},
		{"bare pod", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "lonely"}}, "lonely"},
	}
	for _, c := range cases {
		if got := workloadOf(&c.pod); got != c.want {
			t.Errorf("%s: workload %q, want %q", c.name, got, c.want)
		}
	}
}

func TestNewNeedsClientAndNode(t *testing.T) {
	if _, err := New(Options{Node: "n"}); err == nil {
		t.Error("no client accepted")
	}
	if _, err := New(Options{Client: fake.NewClientset()}); err == nil {
		t.Error("no node accepted")
	}
}

// TestReusedAddressStaysWithTheNewPod replays the watch's events of an address the
// node passed from a finishing Pod to a new one, the old Pod's late updates
// arriving after the new Pod's first: the new Pod keeps the address throughout.
func TestReusedAddressStaysWithTheNewPod(t *testing.T) {
	w, err := New(Options{Client: fake.NewClientset(), Node: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	older := func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(time.Unix(1000, 0)) }
	newer := func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(time.Unix(2000, 0)) }
	deleting := func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Unix(3000, 0)} }
	finished := func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }
	holder := func() string {
		c, ok := lookup(w, "10.0.0.5")
		if !ok {
			return ""
		}
		return c.Name
	}
	w.upsert(pod("ns", "old", "node-a", "10.0.0.5", older))
	w.upsert(pod("ns", "new", "node-a", "10.0.0.5", newer))
	if got := holder(); got != "new" {
		t.Fatalf("holder %q after the new Pod's first update, want new", got)
	}
	for _, late := range []*corev1.Pod{
		pod("ns", "old", "node-a", "10.0.0.5", older),
		pod("ns", "old", "node-a", "10.0.0.5", older, deleting),
		pod("ns", "old", "node-a", "10.0.0.5", older, deleting, finished),
	} {
		w.upsert(late)
		if got := holder(); got != "new" {
			t.Fatalf("holder %q after a late update of the old Pod, want new", got)
		}
	}
	w.remove(pod("ns", "old", "node-a", "10.0.0.5", older))
	if got := holder(); got != "new" {
		t.Errorf("holder %q after the old Pod was deleted, want new", got)
	}
	w.remove(pod("ns", "new", "node-a", "10.0.0.5", newer))
	if got := holder(); got != "" || w.Len() != 0 || len(w.claims) != 0 {
		t.Errorf("holder %q, %d addresses, %d claimed after both Pods went", got, w.Len(), len(w.claims))
	}
}
