package status

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/controller/translate"
)

// These tests drive the writes of Switchyard's own kinds against client-go's fake
// dynamic client; e2e/cluster runs them against a real API server.

// dynamicClient is a fake dynamic client holding objs (TrafficPolicies and Rollouts)
// that assigns and checks resourceVersions as the API server does, and counts the
// updates it receives.
type dynamicClient struct {
	*dynamicfake.FakeDynamicClient
	updates atomic.Int64
}

func newDynamicClient(t *testing.T, objs ...runtime.Object) *dynamicClient {
	t.Helper()
	var unstructuredObjs []runtime.Object
	for i, obj := range objs {
		kind := kindTrafficPolicy
		if _, ok := obj.(*v1alpha1.Rollout); ok {
			kind = kindRollout
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: m}
		u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind(kind))
		u.SetResourceVersion(strconv.Itoa(i + 1))
		unstructuredObjs = append(unstructuredObjs, u)
	}
	c := &dynamicClient{FakeDynamicClient: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), unstructuredObjs...)}
	last := int64(len(objs))
	c.PrependReactor("update", "*", func(action k8stesting.Action) (bool, runtime.Object, error) {
		c.updates.Add(1)
		u := action.(k8stesting.UpdateAction).GetObject().(*unstructured.Unstructured)
		stored, err := c.Tracker().Get(action.GetResource(), action.GetNamespace(), u.GetName())
		if err != nil {
			return true, nil, err
		}
		if stored.(*unstructured.Unstructured).GetResourceVersion() != u.GetResourceVersion() {
			return true, nil, apierrors.NewConflict(action.GetResource().GroupResource(), u.GetName(), errors.New("the object has been modified"))
		}
		u.SetResourceVersion(strconv.FormatInt(atomic.AddInt64(&last, 1), 10))
		return false, nil, nil
	})
	return c
}

func (c *dynamicClient) policy(t *testing.T, namespace, name string) *v1alpha1.TrafficPolicy {
	t.Helper()
	u, err := c.Resource(trafficPolicyResource).Namespace(namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := fromUnstructured[v1alpha1.TrafficPolicy](u)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (c *dynamicClient) rollout(t *testing.T, namespace, name string) *v1alpha1.Rollout {
	t.Helper()
	u, err := c.Resource(rolloutResource).Namespace(namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := fromUnstructured[v1alpha1.Rollout](u)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// objectsOf serves the given objects as an informer cache would.
func objectsOf(policies []*v1alpha1.TrafficPolicy, rollouts []*v1alpha1.Rollout) Objects {
	return InputObjects(&translate.Input{TrafficPolicies: policies, Rollouts: rollouts})
}

// The writer merges a TrafficPolicy's ancestors as a BackendTLSPolicy's: other
// controllers' entries stay, nothing is written when unchanged, and ours go when the
// policy falls out of the translation.
func TestApplyMergesTrafficPolicyAncestors(t *testing.T) {
	earlier := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	policy := &v1alpha1.TrafficPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Generation: 1},
		Status: gwv1.PolicyStatus{Ancestors: []gwv1.PolicyAncestorStatus{ancestor("other.example/controller", "theirs", metav1.ConditionTrue, earlier)}}}
	client := newDynamicClient(t, policy)
	w := NewWriter(newClient(t), quiet, WithDynamicClient(client))
	ctx := context.Background()
	key := types.NamespacedName{Namespace: "ns", Name: "p"}
	ours := func(at time.Time) *translate.Output {
		return &translate.Output{TrafficPolicies: map[types.NamespacedName]gwv1.PolicyStatus{
			key: {Ancestors: []gwv1.PolicyAncestorStatus{ancestor(translate.ControllerName, "gw", metav1.ConditionFalse, at)}}}}
	}
	live := func() Objects { return objectsOf([]*v1alpha1.TrafficPolicy{client.policy(t, "ns", "p")}, nil) }

	if got := w.Apply(ctx, ours(earlier), live()); got.Writes != 1 || got.Errors != 0 {
		t.Fatalf("first Apply %+v, want 1 write", got)
	}
	st := client.policy(t, "ns", "p").Status
	if len(st.Ancestors) != 2 || st.Ancestors[0].AncestorRef.Name != "theirs" || st.Ancestors[1].AncestorRef.Name != "gw" ||
		st.Ancestors[1].Conditions[0].Status != metav1.ConditionFalse {
		t.Fatalf("ancestors after the first write: %+v", st.Ancestors)
	}
	if got := w.Apply(ctx, ours(earlier.Add(time.Hour)), live()); got.Writes != 0 || got.Unchanged != 1 || client.updates.Load() != 1 {
		t.Errorf("an unchanged status: %+v, %d updates in all; want no write", got, client.updates.Load())
	}
	w.Apply(ctx, &translate.Output{}, live())
	if st := client.policy(t, "ns", "p").Status; len(st.Ancestors) != 1 || st.Ancestors[0].AncestorRef.Name != "theirs" {
		t.Errorf("ancestors after the policy fell out of the translation: %+v", st.Ancestors)
	}
}

func driverStatus() v1alpha1.RolloutStatus {
	return v1alpha1.RolloutStatus{Phase: v1alpha1.RolloutProgressing, CurrentStep: 1, CanaryWeight: 25,
		StepStartedAt: &t0, Message: "step 2 of 3", ObservedGeneration: 1,
		Conditions: []metav1.Condition{cond("Ready", true, "Progressing", t0)}}
}

func rolloutWith(st v1alpha1.RolloutStatus) *v1alpha1.Rollout {
	return &v1alpha1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "r", Generation: 1}, Status: st}
}

// The writer sets only a Rollout's Accepted condition: the driver's fields and
// conditions stay, and lastTransitionTime moves only when the status does.
func TestApplyWritesRolloutAcceptedCondition(t *testing.T) {
	client := newDynamicClient(t, rolloutWith(driverStatus()))
	w := NewWriter(newClient(t), quiet, WithDynamicClient(client))
	ctx := context.Background()
	key := types.NamespacedName{Namespace: "ns", Name: "r"}
	accepted := func(ok bool, at metav1.Time) *translate.Output {
		return &translate.Output{Rollouts: map[types.NamespacedName]translate.RolloutResult{
			key: {Accepted: cond(conditionAccepted, ok, "BackendNotFound", at), Rules: 1}}}
	}
	live := func() Objects { return objectsOf(nil, []*v1alpha1.Rollout{client.rollout(t, "ns", "r")}) }

	if got := w.Apply(ctx, accepted(false, t0), live()); got.Writes != 1 {
		t.Fatalf("first Apply %+v, want 1 write", got)
	}
	st := client.rollout(t, "ns", "r").Status
	want := driverStatus()
	want.Conditions = append(want.Conditions, cond(conditionAccepted, false, "BackendNotFound", t0))
	if !sameStatus(st, want) {
		t.Fatalf("status after the write:\n%+v\nwant\n%+v", st, want)
	}
	if got := w.Apply(ctx, accepted(false, t1), live()); got.Writes != 0 || got.Unchanged != 1 {
		t.Errorf("an unchanged condition: %+v; want no write", got)
	}
	w.Apply(ctx, accepted(true, t1), live())
	st = client.rollout(t, "ns", "r").Status
	if c := findCondition(st.Conditions, conditionAccepted); c == nil || c.Status != metav1.ConditionTrue || !c.LastTransitionTime.Equal(&t1) {
		t.Errorf("Accepted after it turned True: %+v", c)
	}
	if st.CanaryWeight != 25 || len(st.Conditions) != 2 {
		t.Errorf("the driver's status was not kept: %+v", st)
	}
	// A Rollout without a result (a translation that did not see it) is left alone.
	if got := w.Apply(ctx, &translate.Output{}, live()); got.Writes != 0 || got.Unchanged != 0 {
		t.Errorf("Apply without a result %+v; want nothing planned", got)
	}
}

// Without a dynamic client the writer leaves Switchyard's kinds alone.
func TestApplyWithoutDynamicClientSkipsSwitchyardKinds(t *testing.T) {
	policy := &v1alpha1.TrafficPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}
	out := &translate.Output{TrafficPolicies: map[types.NamespacedName]gwv1.PolicyStatus{
		{Namespace: "ns", Name: "p"}: {Ancestors: []gwv1.PolicyAncestorStatus{ancestor(translate.ControllerName, "gw", metav1.ConditionTrue, t0.Time)}}}}
	if got := NewWriter(newClient(t), quiet).Apply(context.Background(), out, objectsOf([]*v1alpha1.TrafficPolicy{policy}, nil)); got != (Counters{}) {
		t.Errorf("Apply %+v; want nothing done", got)
	}
}

// rolloutCache is an informer cache the test moves by hand.
type rolloutCache map[types.NamespacedName]*v1alpha1.Rollout

func (c rolloutCache) Rollout(key types.NamespacedName) *v1alpha1.Rollout { return c[key] }

// The store saves the driver's fields, keeps the Accepted condition, writes nothing
// when nothing changed, and Load sees a Save before the cache does.
func TestRolloutStoreSavesTheDriversStatus(t *testing.T) {
	initial := rolloutWith(v1alpha1.RolloutStatus{Conditions: []metav1.Condition{cond(conditionAccepted, true, "Accepted", t0)}})
	client := newDynamicClient(t, initial)
	key := types.NamespacedName{Namespace: "ns", Name: "r"}
	cache := rolloutCache{key: client.rollout(t, "ns", "r")}
	store := NewRolloutStore(client, cache, nil)
	ctx := context.Background()

	st, ok, err := store.Load(key)
	if err != nil || !ok || st.Phase != "" || len(st.Conditions) != 1 {
		t.Fatalf("Load before any Save: %+v, %v, %v", st, ok, err)
	}
	saved := driverStatus()
	// The driver may hand back an Accepted condition it loaded, stale or not: it is
	// not the driver's to change.
	saved.Conditions = append(saved.Conditions, cond(conditionAccepted, false, "Stale", t1))
	if err := store.Save(ctx, key, saved); err != nil {
		t.Fatal(err)
	}
	stored := client.rollout(t, "ns", "r").Status
	if stored.CanaryWeight != 25 || stored.Phase != v1alpha1.RolloutProgressing || stored.Message != "step 2 of 3" {
		t.Fatalf("stored status %+v", stored)
	}
	if c := findCondition(stored.Conditions, conditionAccepted); c == nil || c.Status != metav1.ConditionTrue || findCondition(stored.Conditions, "Ready") == nil {
		t.Fatalf("stored conditions %+v; want Accepted=True kept and Ready added", stored.Conditions)
	}
	// The cache still shows the Rollout before the Save: Load returns what was saved.
	if st, _, _ := store.Load(key); st.CanaryWeight != 25 {
		t.Errorf("Load with a lagging cache: weight %d, want the saved 25", st.CanaryWeight)
	}
	if err := store.Save(ctx, key, saved); err != nil || client.updates.Load() != 1 {
		t.Errorf("saving the same status again: %v, %d updates in all; want no write", err, client.updates.Load())
	}
	// Once the cache catches up, it is the source again.
	cache[key] = client.rollout(t, "ns", "r")
	if st, _, _ := store.Load(key); st.CanaryWeight != 25 || len(store.saved) != 0 {
		t.Errorf("Load after the cache caught up: weight %d, %d records kept", st.CanaryWeight, len(store.saved))
	}
}

// A Save over a stale cache meets a conflict, reads the Rollout again and keeps what
// another writer put there.
func TestRolloutStoreRetriesConflicts(t *testing.T) {
	client := newDynamicClient(t, rolloutWith(v1alpha1.RolloutStatus{}))
	key := types.NamespacedName{Namespace: "ns", Name: "r"}
	cache := rolloutCache{key: client.rollout(t, "ns", "r")}
	w := NewWriter(newClient(t), quiet, WithDynamicClient(client))
	ctx := context.Background()
	w.Apply(ctx, &translate.Output{Rollouts: map[types.NamespacedName]translate.RolloutResult{
		key: {Accepted: cond(conditionAccepted, true, "Accepted", t0)}}}, objectsOf(nil, []*v1alpha1.Rollout{cache[key]}))

	store := NewRolloutStore(client, cache, nil)
	if err := store.Save(ctx, key, driverStatus()); err != nil {
		t.Fatal(err)
	}
	stored := client.rollout(t, "ns", "r").Status
	if stored.CanaryWeight != 25 || findCondition(stored.Conditions, conditionAccepted) == nil {
		t.Errorf("after a conflict: %+v; want the weight saved and the writer's Accepted kept", stored)
	}
	if n := client.updates.Load(); n != 3 {
		t.Errorf("%d updates, want 3 (the writer's, the conflicting one, the retry)", n)
	}
}

// Only the leader saves, and a Rollout that is gone says so.
func TestRolloutStoreRefusesWhenNotLeadingAndReportsMissingRollouts(t *testing.T) {
	client := newDynamicClient(t)
	leading := false
	store := NewRolloutStore(client, rolloutCache{}, func() bool { return leading })
	key := types.NamespacedName{Namespace: "ns", Name: "gone"}
	if err := store.Save(context.Background(), key, driverStatus()); !errors.Is(err, ErrNotLeading) || client.updates.Load() != 0 {
		t.Errorf("Save by a follower: %v, %d updates", err, client.updates.Load())
	}
	leading = true
	if err := store.Save(context.Background(), key, driverStatus()); !apierrors.IsNotFound(err) {
		t.Errorf("Save of a missing Rollout: %v; want a NotFound error", err)
	}
	if _, ok, err := store.Load(key); ok || err != nil {
		t.Errorf("Load of a missing Rollout: %v, %v", ok, err)
	}
}

// withDriverStatus keeps conditions in place, so that saving an unchanged status is
// no change, and keeps lastTransitionTime of unchanged statuses.
func TestWithDriverStatusKeepsConditionOrderAndTimes(t *testing.T) {
	current := v1alpha1.RolloutStatus{CanaryWeight: 5, Conditions: []metav1.Condition{
		cond("Ready", true, "Progressing", t0), cond(conditionAccepted, true, "Accepted", t0), cond("Paused", false, "Running", t0)}}
	st := v1alpha1.RolloutStatus{CanaryWeight: 10, Conditions: []metav1.Condition{
		cond("Ready", true, "Progressing", t1), cond("Degraded", true, "Breach", t1)}}
	got := withDriverStatus(current, st)
	want := []metav1.Condition{cond("Ready", true, "Progressing", t0), cond(conditionAccepted, true, "Accepted", t0),
		cond("Degraded", true, "Breach", t1)}
	if got.CanaryWeight != 10 || !sameStatus(got.Conditions, want) {
		t.Errorf("withDriverStatus = %+v; want weight 10 and conditions %+v", got, want)
	}
	if again := withDriverStatus(got, st); !sameStatus(again, got) {
		t.Errorf("saving the same status twice changed it: %+v", again)
	}
}
