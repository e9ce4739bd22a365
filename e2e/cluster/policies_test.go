package cluster_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/controller/kube"
	"github.com/switchyard-dev/switchyard/controller/status"
	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/e2e/cluster"
)

// The Source serves the status writer Switchyard's kinds and the rollout store its
// Rollouts.
var (
	_ status.SwitchyardObjects = (*kube.Source)(nil)
	_ status.RolloutCache      = (*kube.Source)(nil)
)

// policyEnv is one API server with the Gateway API and Switchyard CRDs, and a Source
// that watches Switchyard's kinds through the dynamic client.
type policyEnv struct {
	ctx     context.Context
	kube    kubernetes.Interface
	gw      gwclient.Interface
	dyn     dynamic.Interface
	source  *kube.Source
	changes *changeLog
	writer  *status.Writer
}

// TestSwitchyardKindsOnRealAPIServer runs the controller's handling of TrafficPolicies
// and Rollouts against a real kube-apiserver: the informers, translation's status
// written back, and the rollout driver's store.
func TestSwitchyardKindsOnRealAPIServer(t *testing.T) {
	c := cluster.Start(t)
	c.InstallGatewayAPI(t)
	c.InstallSwitchyardAPI(t)
	env := startPolicyEnv(t, c)
	t.Run("TrafficPolicyStatus", env.testTrafficPolicyStatus)
	t.Run("RolloutStore", env.testRolloutStore)
}

func startPolicyEnv(t *testing.T, c *cluster.Cluster) *policyEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	env := &policyEnv{ctx: ctx, kube: kubernetes.NewForConfigOrDie(c.Config), gw: gwclient.NewForConfigOrDie(c.Config),
		dyn: dynamic.NewForConfigOrDie(c.Config), changes: &changeLog{}}
	missing, err := kube.MissingKinds(env.gw.Discovery())
	if err != nil || len(missing) != 0 {
		t.Fatalf("with every CRD installed: missing %v, %v", missing, err)
	}
	env.source, err = kube.NewSource(env.kube, env.gw, kube.SourceOptions{OnChange: env.changes.add, Missing: missing, Dynamic: env.dyn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); env.source.Shutdown() })
	// Start runs the informers until its context ends, so it gets the test's.
	started := make(chan error, 1)
	go func() { started <- env.source.Start(ctx) }()
	select {
	case err := <-started:
		mustDo(t, "starting the Source", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the informer caches did not sync within 60s")
	}
	env.writer = status.NewWriter(env.gw, nil, status.WithDynamicClient(env.dyn))
	return env
}

// unstructuredOf converts a typed Switchyard object for the dynamic client.
func unstructuredOf(t *testing.T, obj runtime.Object, kind string) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind(kind))
	return u
}

func (e *policyEnv) readPolicy(t *testing.T, name string) *v1alpha1.TrafficPolicy {
	t.Helper()
	u, err := e.dyn.Resource(kube.TrafficPolicyResource).Namespace("default").Get(e.ctx, name, metav1.GetOptions{})
	mustDo(t, "get TrafficPolicy "+name, err)
	p := &v1alpha1.TrafficPolicy{}
	mustDo(t, "convert TrafficPolicy", runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, p))
	return p
}

func (e *policyEnv) readRollout(t *testing.T, name string) *v1alpha1.Rollout {
	t.Helper()
	u, err := e.dyn.Resource(kube.RolloutResource).Namespace("default").Get(e.ctx, name, metav1.GetOptions{})
	mustDo(t, "get Rollout "+name, err)
	r := &v1alpha1.Rollout{}
	mustDo(t, "convert Rollout", runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, r))
	return r
}

// translate translates the Source's current objects as the controller would.
func (e *policyEnv) translate(now time.Time) *translate.Output {
	in := e.source.Input()
	in.Options.Now = now
	return translate.Translate(in)
}

// waitUntil polls cond for up to 15 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countSince counts the notifications of one object after pos.
func (l *changeLog) countSince(pos int, kind kube.Kind, name string) int {
	n := 0
	for _, c := range l.since(pos) {
		if c.Kind == kind && c.Namespace == "default" && c.Name == name {
			n++
		}
	}
	return n
}

func trafficPolicy(name string, target gwv1.LocalPolicyTargetReference) *v1alpha1.TrafficPolicy {
	return &v1alpha1.TrafficPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1alpha1.TrafficPolicySpec{TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: target}}}}
}

// ourAncestors returns the policy's ancestor entries of this controller.
func ourAncestors(p *v1alpha1.TrafficPolicy) []gwv1.PolicyAncestorStatus {
	var out []gwv1.PolicyAncestorStatus
	for _, a := range p.Status.Ancestors {
		if a.ControllerName == translate.ControllerName {
			out = append(out, a)
		}
	}
	return out
}

// testTrafficPolicyStatus translates policies stored in the API server and writes
// their status as the controller does: Accepted=True on the Gateway a policy targets,
// Accepted=False with reason TargetNotFound for a policy whose target does not exist,
// other controllers' ancestors kept, nothing written when unchanged, and the writes
// cause no change notification while spec changes and deletions do.
func (e *policyEnv) testTrafficPolicyStatus(t *testing.T) {
	gw := e.gw.GatewayV1()
	_, err := gw.GatewayClasses().Create(e.ctx, gatewayClass("switchyard", translate.ControllerName), metav1.CreateOptions{})
	mustDo(t, "create GatewayClass", err)
	_, err = gw.Gateways("default").Create(e.ctx, gateway("gw", "switchyard"), metav1.CreateOptions{})
	mustDo(t, "create Gateway", err)
	_, err = e.kube.CoreV1().Services("default").Create(e.ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}, metav1.CreateOptions{})
	mustDo(t, "create Service", err)
	policies := e.dyn.Resource(kube.TrafficPolicyResource).Namespace("default")
	onGateway := trafficPolicy("on-gateway", gwv1.LocalPolicyTargetReference{Group: gwv1.GroupName, Kind: "Gateway", Name: "gw"})
	_, err = policies.Create(e.ctx, unstructuredOf(t, onGateway, "TrafficPolicy"), metav1.CreateOptions{})
	mustDo(t, "create TrafficPolicy on-gateway", err)
	absent := trafficPolicy("missing-target", gwv1.LocalPolicyTargetReference{Kind: "Service", Name: "absent"})
	_, err = policies.Create(e.ctx, unstructuredOf(t, absent, "TrafficPolicy"), metav1.CreateOptions{})
	mustDo(t, "create TrafficPolicy missing-target", err)
	// Another controller's ancestor entry, which the writer must keep.
	ns := gwv1.Namespace("default")
	foreign := gwv1.PolicyAncestorStatus{AncestorRef: gwv1.ParentReference{Namespace: &ns, Name: "theirs"}, ControllerName: otherController,
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: metav1.Now()}}}
	withForeign := e.readPolicy(t, "on-gateway")
	withForeign.Status.Ancestors = []gwv1.PolicyAncestorStatus{foreign}
	_, err = policies.UpdateStatus(e.ctx, unstructuredOf(t, withForeign, "TrafficPolicy"), metav1.UpdateOptions{})
	mustDo(t, "write the foreign ancestor", err)
	waitUntil(t, "both policies in the cache with the foreign ancestor", func() bool {
		for _, p := range e.source.TrafficPolicies() {
			if p.Name == "on-gateway" && len(p.Status.Ancestors) == 1 {
				return len(e.source.TrafficPolicies()) == 2
			}
		}
		return false
	})

	pos := e.changes.mark()
	out := e.translate(time.Now())
	got := e.writer.Apply(e.ctx, out, e.source)
	if got.Writes < 2 || got.Errors != 0 {
		t.Fatalf("Apply %+v; want both policies' status written, and the class's and Gateway's", got)
	}
	accepted := e.readPolicy(t, "on-gateway")
	ours := ourAncestors(accepted)
	if len(accepted.Status.Ancestors) != 2 || accepted.Status.Ancestors[0].ControllerName != otherController || len(ours) != 1 {
		t.Fatalf("on-gateway ancestors %+v; want the foreign entry and one of ours", accepted.Status.Ancestors)
	}
	if c := findCondition(ours[0].Conditions, "Accepted"); ours[0].AncestorRef.Name != "gw" || c == nil ||
		c.Status != metav1.ConditionTrue || c.ObservedGeneration != accepted.Generation {
		t.Errorf("our ancestor %+v; want Accepted=True on Gateway gw at generation %d", ours[0], accepted.Generation)
	}
	refused := ourAncestors(e.readPolicy(t, "missing-target"))
	if len(refused) != 1 {
		t.Fatalf("missing-target ancestors of ours %+v; want one saying why", refused)
	}
	if c := findCondition(refused[0].Conditions, "Accepted"); c == nil || c.Status != metav1.ConditionFalse ||
		c.Reason != string(gwv1.PolicyReasonTargetNotFound) {
		t.Errorf("missing-target Accepted = %+v; want False with reason TargetNotFound", c)
	}
	if again := e.writer.Apply(e.ctx, out, e.source); again.Writes != 0 || again.Conflicts != 0 {
		t.Errorf("Apply of the same translation again %+v; want no writes", again)
	}

	// A spec change notifies; it is delivered after the status writes' events, which
	// therefore must not have notified.
	changed := e.readPolicy(t, "on-gateway")
	changed.Spec.Timeout = &v1alpha1.TimeoutPolicy{Request: ptrTo(gwv1.Duration("5s"))}
	_, err = policies.Update(e.ctx, unstructuredOf(t, changed, "TrafficPolicy"), metav1.UpdateOptions{})
	mustDo(t, "change the policy's spec", err)
	e.changes.waitFor(t, pos, kube.KindTrafficPolicy, "default", "on-gateway")
	if n := e.changes.countSince(pos, kube.KindTrafficPolicy, "on-gateway") + e.changes.countSince(pos, kube.KindTrafficPolicy, "missing-target"); n != 1 {
		t.Errorf("%d TrafficPolicy notifications; want 1, for the spec change only", n)
	}
	pos = e.changes.mark()
	mustDo(t, "delete missing-target", policies.Delete(e.ctx, "missing-target", metav1.DeleteOptions{}))
	e.changes.waitFor(t, pos, kube.KindTrafficPolicy, "default", "missing-target")
}

func ptrTo[T any](v T) *T { return &v }

// testRolloutStore saves a Rollout's driver status through the store: the informer
// reads it back and reports it; the writer adds translation's Accepted condition
// without touching the driver's fields and without a notification; a status change
// that translation does not read is not reported; a Save over a stale cache retries
// its conflict and keeps the Accepted condition.
func (e *policyEnv) testRolloutStore(t *testing.T) {
	rollout := &v1alpha1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: "default"},
		Spec: v1alpha1.RolloutSpec{
			TargetRef: gwv1.LocalPolicyTargetReferenceWithSectionName{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{
				Group: gwv1.GroupName, Kind: "HTTPRoute", Name: "web"}},
			Stable: v1alpha1.RolloutBackend{Name: "web", Port: 80},
			Canary: v1alpha1.RolloutBackend{Name: "web-v2", Port: 80},
			Steps:  []v1alpha1.RolloutStep{{Weight: 10, Pause: ptrTo(gwv1.Duration("1m"))}, {Weight: 100}},
		}}
	_, err := e.dyn.Resource(kube.RolloutResource).Namespace("default").Create(e.ctx, unstructuredOf(t, rollout, "Rollout"), metav1.CreateOptions{})
	mustDo(t, "create Rollout", err)
	key := types.NamespacedName{Namespace: "default", Name: "reviews"}
	waitUntil(t, "the Rollout in the cache", func() bool { return e.source.Rollout(key) != nil })
	store := status.NewRolloutStore(e.dyn, e.source, nil)

	pos := e.changes.mark()
	started := metav1.NewTime(time.Now().Truncate(time.Second))
	driver := v1alpha1.RolloutStatus{Phase: v1alpha1.RolloutProgressing, CanaryWeight: 10, StepStartedAt: &started,
		Message: "step 1 of 2", ObservedGeneration: 1}
	mustDo(t, "Save", store.Save(e.ctx, key, driver))
	e.changes.waitFor(t, pos, kube.KindRollout, "default", "reviews")
	waitUntil(t, "the saved weight in the cache", func() bool { return e.source.Rollout(key).Status.CanaryWeight == 10 })
	if st, ok, err := store.Load(key); err != nil || !ok || st.Phase != v1alpha1.RolloutProgressing || !st.StepStartedAt.Equal(&started) {
		t.Fatalf("Load after Save: %+v, %v, %v", st, ok, err)
	}

	stale := e.source.Rollout(key).DeepCopy()
	pos = e.changes.mark()
	// The writer's input is the translation of everything, with a given result for
	// this Rollout, so that this test does not depend on how translation judges it.
	out := e.translate(time.Now())
	out.Rollouts = map[types.NamespacedName]translate.RolloutResult{key: {Accepted: metav1.Condition{
		Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", ObservedGeneration: 1, LastTransitionTime: metav1.Now()}}}
	if got := e.writer.Apply(e.ctx, out, e.source); got.Writes < 1 || got.Errors != 0 {
		t.Fatalf("writing the Accepted condition: %+v", got)
	}
	st := e.readRollout(t, "reviews").Status
	if c := findCondition(st.Conditions, "Accepted"); c == nil || c.Status != metav1.ConditionTrue || st.CanaryWeight != 10 || st.Message != "step 1 of 2" {
		t.Fatalf("status after the Accepted write %+v; want Accepted=True and the driver's fields", st)
	}
	driver.Message = "waiting for the pause"
	mustDo(t, "Save of the message", store.Save(e.ctx, key, driver))
	// A Save from a store whose cache is stale meets a conflict and retries.
	driver.CanaryWeight, driver.CurrentStep = 100, 1
	mustDo(t, "Save over a stale cache", status.NewRolloutStore(e.dyn, frozenRollouts{key: stale}, nil).Save(e.ctx, key, driver))
	e.changes.waitFor(t, pos, kube.KindRollout, "default", "reviews")
	waitUntil(t, "the final weight in the cache", func() bool { return e.source.Rollout(key).Status.CanaryWeight == 100 })
	if n := e.changes.countSince(pos, kube.KindRollout, "reviews"); n != 1 {
		t.Errorf("%d Rollout notifications; want 1: the condition and message writes must not notify", n)
	}
	st = e.readRollout(t, "reviews").Status
	if c := findCondition(st.Conditions, "Accepted"); c == nil || st.Message != "waiting for the pause" || st.CurrentStep != 1 {
		t.Errorf("status after the last Save %+v; want the Accepted condition kept and the driver's fields", st)
	}
}

// frozenRollouts is a cache that never catches up.
type frozenRollouts map[types.NamespacedName]*v1alpha1.Rollout

func (f frozenRollouts) Rollout(key types.NamespacedName) *v1alpha1.Rollout { return f[key] }
