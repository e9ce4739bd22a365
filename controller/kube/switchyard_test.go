package kube

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// These tests drive the Source's handling of Switchyard's own kinds against client-go's
// fake dynamic client; e2e/cluster runs the same against a real API server.

func toUnstructured(t *testing.T, obj runtime.Object, kind string) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(v1alpha1.GroupVersion.String())
	u.SetKind(kind)
	return u
}

func testPolicy() *v1alpha1.TrafficPolicy {
	return &v1alpha1.TrafficPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "tp", Namespace: "team", Generation: 1,
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}},
		Spec: v1alpha1.TrafficPolicySpec{TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{
			{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Kind: "Service", Name: "web"}}}},
	}
}

func testRollout() *v1alpha1.Rollout {
	return &v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Name: "ro", Namespace: "team", Generation: 1},
		Spec: v1alpha1.RolloutSpec{
			TargetRef: gwv1.LocalPolicyTargetReferenceWithSectionName{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{
				Group: gwv1.GroupName, Kind: "HTTPRoute", Name: "web"}},
			Stable: v1alpha1.RolloutBackend{Name: "web-v1", Port: 80},
			Canary: v1alpha1.RolloutBackend{Name: "web-v2", Port: 80},
			Steps:  []v1alpha1.RolloutStep{{Weight: 10}, {Weight: 100}},
		},
	}
}

// startWithDynamic starts a Source over fake clients whose dynamic client holds objs.
func startWithDynamic(t *testing.T, client dynamic.Interface, opts SourceOptions) *Source {
	t.Helper()
	opts.Dynamic = client
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	src, err := NewSource(kubefake.NewClientset(), gwfake.NewClientset(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(func() { cancel(); src.Shutdown() })
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return src
}

// TestSourceWatchesSwitchyardKinds checks that TrafficPolicies and Rollouts reach the
// translator input as typed objects without managedFields, and which of their changes
// are reported: spec changes and deletions, and of a Rollout's status only what
// translation reads.
func TestSourceWatchesSwitchyardKinds(t *testing.T) {
	client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(),
		toUnstructured(t, testPolicy(), "TrafficPolicy"), toUnstructured(t, testRollout(), "Rollout"))
	log := &changeLog{}
	src := startWithDynamic(t, client, SourceOptions{OnChange: log.add})
	in := src.Input()
	if len(in.TrafficPolicies) != 1 || len(in.Rollouts) != 1 {
		t.Fatalf("Input has %d TrafficPolicies and %d Rollouts, want 1 each", len(in.TrafficPolicies), len(in.Rollouts))
	}
	if p := in.TrafficPolicies[0]; p.Spec.TargetRefs[0].Name != "web" || p.ManagedFields != nil {
		t.Errorf("cached TrafficPolicy: targetRefs %v, managedFields %v; want web and none", p.Spec.TargetRefs, p.ManagedFields)
	}
	key := types.NamespacedName{Namespace: "team", Name: "ro"}
	if r := src.Rollout(key); r == nil || r.Spec.Canary.Name != "web-v2" || len(r.Spec.Steps) != 2 {
		t.Fatalf("Rollout(team/ro) = %+v", r)
	}
	if n := log.count(KindTrafficPolicy) + log.count(KindRollout); n != 0 {
		t.Fatalf("%d objects of the initial list were reported as changes", n)
	}

	rollouts := client.Resource(RolloutResource).Namespace("team")
	updateRollout := func(change func(*v1alpha1.Rollout)) {
		t.Helper()
		r := src.Rollout(key).DeepCopy()
		change(r)
		if _, err := rollouts.UpdateStatus(context.Background(), toUnstructured(t, r, "Rollout"), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	updateRollout(func(r *v1alpha1.Rollout) {
		r.Status.Conditions = []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted",
			LastTransitionTime: metav1.Now()}}
		r.Status.Message = "accepted"
	})
	waitFor(t, "the conditions to reach the cache", func() bool { return src.Rollout(key).Status.Message == "accepted" })
	updateRollout(func(r *v1alpha1.Rollout) { r.Status.Phase, r.Status.CanaryWeight = v1alpha1.RolloutProgressing, 10 })
	waitFor(t, "the weight change to be reported", func() bool { return log.count(KindRollout) > 0 })
	if n := log.count(KindRollout); n != 1 {
		t.Errorf("got %d Rollout changes, want 1: a status update of conditions and message only must not count", n)
	}

	policies := client.Resource(TrafficPolicyResource).Namespace("team")
	p := in.TrafficPolicies[0].DeepCopy()
	p.Status.Ancestors = []gwv1.PolicyAncestorStatus{{AncestorRef: gwv1.ParentReference{Name: "gw"}, ControllerName: "x.dev/c"}}
	if _, err := policies.UpdateStatus(context.Background(), toUnstructured(t, p, "TrafficPolicy"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the policy status to reach the cache", func() bool { return len(src.TrafficPolicies()[0].Status.Ancestors) == 1 })
	if err := policies.Delete(context.Background(), "tp", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deletion to be reported", func() bool { return log.count(KindTrafficPolicy) > 0 })
	if n := log.count(KindTrafficPolicy); n != 1 || len(src.Input().TrafficPolicies) != 0 {
		t.Errorf("got %d TrafficPolicy changes (want 1: the status-only update must not count), %d cached",
			n, len(src.Input().TrafficPolicies))
	}
}

// TestRolloutChanged lists which Rollout updates translation can see.
func TestRolloutChanged(t *testing.T) {
	base := testRollout()
	cases := []struct {
		name   string
		change func(*v1alpha1.Rollout)
		want   bool
	}{
		{"spec (generation)", func(r *v1alpha1.Rollout) { r.Generation++ }, true},
		{"phase", func(r *v1alpha1.Rollout) { r.Status.Phase = v1alpha1.RolloutAborted }, true},
		{"canary weight", func(r *v1alpha1.Rollout) { r.Status.CanaryWeight = 50 }, true},
		{"observed generation", func(r *v1alpha1.Rollout) { r.Status.ObservedGeneration = 1 }, true},
		{"labels", func(r *v1alpha1.Rollout) { r.Labels = map[string]string{"a": "b"} }, true},
		{"current step only", func(r *v1alpha1.Rollout) { r.Status.CurrentStep = 1 }, false},
		{"message only", func(r *v1alpha1.Rollout) { r.Status.Message = "waiting" }, false},
		{"step start only", func(r *v1alpha1.Rollout) { r.Status.StepStartedAt = &metav1.Time{Time: time.Unix(1, 0)} }, false},
		{"conditions only", func(r *v1alpha1.Rollout) {
			r.Status.Conditions = []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionFalse}}
		}, false},
		{"resourceVersion only", func(r *v1alpha1.Rollout) { r.ResourceVersion = "9" }, false},
	}
	for _, c := range cases {
		changed := base.DeepCopy()
		c.change(changed)
		if got := rolloutChanged(base, changed); got != c.want {
			t.Errorf("%s: rolloutChanged = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestSwitchyardKindsWithoutDynamicClientOrCRDs checks that a Source without a dynamic
// client, or on a cluster that does not serve the kinds, syncs and reads them as
// empty: the fake dynamic client here knows neither resource, so watching one would
// never sync.
func TestSwitchyardKindsWithoutDynamicClientOrCRDs(t *testing.T) {
	src := startWithDynamic(t, nil, SourceOptions{})
	if in := src.Input(); len(in.TrafficPolicies) != 0 || len(in.Rollouts) != 0 || src.Rollout(types.NamespacedName{Name: "x"}) != nil {
		t.Fatal("a Source without a dynamic client read Switchyard objects")
	}
	missing := map[Kind]bool{KindTrafficPolicy: true, KindRollout: true}
	src = startWithDynamic(t, dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()), SourceOptions{Missing: missing})
	if in := src.Input(); len(in.TrafficPolicies) != 0 || len(in.Rollouts) != 0 {
		t.Fatal("missing kinds were read")
	}
}

// TestTypedTransform checks the conversion of the dynamic informers' objects: typed
// objects pass, and an object that does not fit the schema stays unstructured and is
// skipped by the listers instead of stopping the informer.
func TestTypedTransform(t *testing.T) {
	transform := typedTransform(KindTrafficPolicy, func() any { return &v1alpha1.TrafficPolicy{} },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	typed := testPolicy()
	if got, err := transform(typed); err != nil || got != any(typed) || typed.ManagedFields != nil {
		t.Fatalf("a typed object: %v, %v; want it back without managedFields", got, err)
	}
	bad := toUnstructured(t, testPolicy(), "TrafficPolicy")
	if err := unstructured.SetNestedField(bad.Object, "not a list", "spec", "targetRefs"); err != nil {
		t.Fatal(err)
	}
	got, err := transform(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.(*unstructured.Unstructured); !ok {
		t.Fatalf("an object that does not convert became %T", got)
	}
	indexer := emptyIndexer()
	goodPolicy := testPolicy()
	goodPolicy.Name = "good"
	good, _ := transform(toUnstructured(t, goodPolicy, "TrafficPolicy"))
	for _, obj := range []any{got, good} {
		if err := indexer.Add(obj); err != nil {
			t.Fatal(err)
		}
	}
	if list := listTyped[v1alpha1.TrafficPolicy](indexer); len(list) != 1 || list[0].Name != "good" {
		t.Fatalf("listTyped = %v, want only the converted object", list)
	}
	if getTyped[v1alpha1.TrafficPolicy](indexer, types.NamespacedName{Namespace: "team", Name: "tp"}) != nil {
		t.Fatal("getTyped returned the object that did not convert")
	}
}

// TestMissingKindsAsksEachGroupVersion checks discovery of the optional kinds across
// the Gateway API's group and Switchyard's.
func TestMissingKindsAsksEachGroupVersion(t *testing.T) {
	d := kubefake.NewClientset().Discovery().(*fakediscovery.FakeDiscovery)
	d.Resources = []*metav1.APIResourceList{{GroupVersion: "gateway.networking.k8s.io/v1",
		APIResources: []metav1.APIResource{{Name: "gateways"}, {Name: "backendtlspolicies"}}}}
	missing, err := MissingKinds(d)
	if err != nil {
		t.Fatal(err)
	}
	want := map[Kind]bool{KindListenerSet: true, KindTrafficPolicy: true, KindRollout: true}
	if len(missing) != len(want) || !missing[KindListenerSet] || !missing[KindTrafficPolicy] || !missing[KindRollout] {
		t.Fatalf("missing %v, want %v", missing, want)
	}
	d.Resources = append(d.Resources, &metav1.APIResourceList{GroupVersion: "switchyard.dev/v1alpha1",
		APIResources: []metav1.APIResource{{Name: "trafficpolicies"}, {Name: "trafficpolicies/status"}, {Name: "rollouts"}}})
	if missing, err = MissingKinds(d); err != nil || len(missing) != 1 || !missing[KindListenerSet] {
		t.Fatalf("with Switchyard's CRDs: missing %v, %v; want only ListenerSet", missing, err)
	}
}
