package status

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

// These tests drive the writer against the client-go fake clientset: they check the
// writer's own decisions (what to write, merging, retries, concurrency). The real API
// server tests in e2e/cluster check the same against kube-apiserver.

// quiet discards the writer's warnings about the failures these tests cause.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func fixture(routes int) ([]runtime.Object, *translate.Output) {
	objs := []runtime.Object{
		&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "mine"}, Spec: gwv1.GatewayClassSpec{ControllerName: ours}},
		&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "theirs"}, Spec: gwv1.GatewayClassSpec{ControllerName: "example.com/other"}},
		&gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "default"}, Spec: gwv1.GatewaySpec{GatewayClassName: "mine"}},
		&gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "foreign", Namespace: "default"}, Spec: gwv1.GatewaySpec{GatewayClassName: "theirs"}},
	}
	out := &translate.Output{
		GatewayClasses: map[string]gwv1.GatewayClassStatus{
			"mine": {Conditions: []metav1.Condition{cond("Accepted", true, "Accepted", t0)}},
			// A stale translation may still list a class that is no longer ours; the
			// writer checks the object itself.
			"theirs": {Conditions: []metav1.Condition{cond("Accepted", true, "Accepted", t0)}},
		},
		Gateways: map[types.NamespacedName]gwv1.GatewayStatus{
			{Namespace: "default", Name: "gw"}:      {Conditions: []metav1.Condition{cond("Accepted", true, "Accepted", t0)}},
			{Namespace: "default", Name: "foreign"}: {Conditions: []metav1.Condition{cond("Accepted", true, "Accepted", t0)}},
		},
		HTTPRoutes: map[types.NamespacedName]gwv1.HTTPRouteStatus{},
	}
	for i := range routes {
		name := fmt.Sprintf("r%03d", i)
		objs = append(objs, &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}})
		out.HTTPRoutes[types.NamespacedName{Namespace: "default", Name: name}] = gwv1.HTTPRouteStatus{
			RouteStatus: gwv1.RouteStatus{Parents: []gwv1.RouteParentStatus{parent(ours, parentRef("gw", ""), t0, true)}}}
	}
	return objs, out
}

// newClient returns a fake clientset holding objs. They are created through the
// typed client because the fake's Add guesses the resource "gatewaies" for Gateways.
// The clientset checks and assigns resourceVersions as the API server does.
func newClient(t *testing.T, objs ...runtime.Object) *fake.Clientset {
	t.Helper()
	client := fake.NewSimpleClientset()
	emulateResourceVersions(client)
	ctx := context.Background()
	for _, obj := range objs {
		var err error
		switch o := obj.(type) {
		case *gwv1.GatewayClass:
			_, err = client.GatewayV1().GatewayClasses().Create(ctx, o, metav1.CreateOptions{})
		case *gwv1.Gateway:
			_, err = client.GatewayV1().Gateways(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *gwv1.HTTPRoute:
			_, err = client.GatewayV1().HTTPRoutes(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *gwv1.BackendTLSPolicy:
			_, err = client.GatewayV1().BackendTLSPolicies(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *gwv1.ListenerSet:
			_, err = client.GatewayV1().ListenerSets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		default:
			err = fmt.Errorf("unexpected fixture %T", obj)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return client
}

// emulateResourceVersions makes the fake refuse an update whose resourceVersion is
// not the stored one, and give every stored object a new resourceVersion, as the API
// server does; the plain fake ignores resourceVersions.
func emulateResourceVersions(client *fake.Clientset) {
	var last atomic.Int64
	client.PrependReactor("*", "*", func(action k8stesting.Action) (bool, runtime.Object, error) {
		withObject, ok := action.(interface{ GetObject() runtime.Object })
		if !ok || (action.GetVerb() != "create" && action.GetVerb() != "update") {
			return false, nil, nil
		}
		obj := withObject.GetObject()
		if action.GetVerb() == "update" {
			m, _ := meta.Accessor(obj)
			stored, err := client.Tracker().Get(action.GetResource(), action.GetNamespace(), m.GetName())
			if err != nil {
				return true, nil, err
			}
			if sm, _ := meta.Accessor(stored); sm.GetResourceVersion() != m.GetResourceVersion() {
				return true, nil, apierrors.NewConflict(action.GetResource().GroupResource(), m.GetName(), errors.New("the object has been modified"))
			}
		}
		m, _ := meta.Accessor(obj)
		m.SetResourceVersion(strconv.FormatInt(last.Add(1), 10))
		return false, nil, nil
	})
}

// liveObjects reads the fake clientset's current objects, as an up-to-date cache would.
func liveObjects(t *testing.T, client *fake.Clientset) Objects {
	t.Helper()
	ctx := context.Background()
	in := &translate.Input{}
	classes, err := client.GatewayV1().GatewayClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range classes.Items {
		in.GatewayClasses = append(in.GatewayClasses, &classes.Items[i])
	}
	gateways, err := client.GatewayV1().Gateways("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range gateways.Items {
		in.Gateways = append(in.Gateways, &gateways.Items[i])
	}
	routes, err := client.GatewayV1().HTTPRoutes("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range routes.Items {
		in.HTTPRoutes = append(in.HTTPRoutes, &routes.Items[i])
	}
	policies, err := client.GatewayV1().BackendTLSPolicies("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range policies.Items {
		in.BackendTLSPolicies = append(in.BackendTLSPolicies, &policies.Items[i])
	}
	sets, err := client.GatewayV1().ListenerSets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range sets.Items {
		in.ListenerSets = append(in.ListenerSets, &sets.Items[i])
	}
	return InputObjects(in)
}

func countUpdates(client *fake.Clientset) *atomic.Int64 {
	var n atomic.Int64
	client.PrependReactor("update", "*", func(action k8stesting.Action) (bool, runtime.Object, error) {
		n.Add(1)
		return false, nil, nil
	})
	return &n
}

func TestApplyWritesOnlyChangesAndOnlyOwnedObjects(t *testing.T) {
	objs, out := fixture(3)
	client := newClient(t, objs...)
	updates := countUpdates(client)
	w := NewWriter(client, quiet)
	ctx := context.Background()

	got := w.Apply(ctx, out, liveObjects(t, client))
	if got.Writes != 5 || got.Errors != 0 || got.Unchanged != 0 {
		t.Fatalf("first Apply %+v, want 5 writes (class, Gateway, 3 routes)", got)
	}
	foreign, _ := client.GatewayV1().Gateways("default").Get(ctx, "foreign", metav1.GetOptions{})
	theirs, _ := client.GatewayV1().GatewayClasses().Get(ctx, "theirs", metav1.GetOptions{})
	if len(foreign.Status.Conditions) != 0 || len(theirs.Status.Conditions) != 0 {
		t.Error("status was written to another controller's Gateway or GatewayClass")
	}

	// The same desired status, translated later, is no change.
	later := relabel(out, t1)
	got = w.Apply(ctx, later, liveObjects(t, client))
	if got.Writes != 0 || got.Unchanged != 5 {
		t.Errorf("second Apply %+v, want 0 writes and 5 unchanged", got)
	}
	if updates.Load() != 5 {
		t.Errorf("%d updates sent in all, want 5", updates.Load())
	}
	if total := w.Counters(); total.Writes != 5 || total.Unchanged != 5 {
		t.Errorf("total counters %+v, want 5 writes and 5 unchanged", total)
	}
	r, _ := client.GatewayV1().HTTPRoutes("default").Get(ctx, "r000", metav1.GetOptions{})
	if at := r.Status.Parents[0].Conditions[0].LastTransitionTime; !at.Equal(&t0) {
		t.Errorf("lastTransitionTime %v after an unchanged re-translation, want %v", at, t0)
	}
}

// relabel returns a copy of out whose conditions carry a later translation time.
func relabel(out *translate.Output, at metav1.Time) *translate.Output {
	c := &translate.Output{GatewayClasses: map[string]gwv1.GatewayClassStatus{},
		Gateways: map[types.NamespacedName]gwv1.GatewayStatus{}, HTTPRoutes: map[types.NamespacedName]gwv1.HTTPRouteStatus{}}
	stamp := func(conds []metav1.Condition) {
		for i := range conds {
			conds[i].LastTransitionTime = at
		}
	}
	for k, v := range out.GatewayClasses {
		v = *v.DeepCopy()
		stamp(v.Conditions)
		c.GatewayClasses[k] = v
	}
	for k, v := range out.Gateways {
		v = *v.DeepCopy()
		stamp(v.Conditions)
		c.Gateways[k] = v
	}
	for k, v := range out.HTTPRoutes {
		v = *v.DeepCopy()
		for i := range v.Parents {
			stamp(v.Parents[i].Conditions)
		}
		c.HTTPRoutes[k] = v
	}
	return c
}

// TestApplyWithLaggingCacheDoesNotRewrite gives the second Apply the objects as they
// were before the first wrote: the writer must use what its own update returned.
func TestApplyWithLaggingCacheDoesNotRewrite(t *testing.T) {
	objs, out := fixture(2)
	client := newClient(t, objs...)
	w := NewWriter(client, quiet)
	ctx := context.Background()
	stale := liveObjects(t, client)
	if got := w.Apply(ctx, out, stale); got.Writes != 4 {
		t.Fatalf("first Apply %+v, want 4 writes", got)
	}
	if got := w.Apply(ctx, relabel(out, t1), stale); got.Writes != 0 || got.Conflicts != 0 || got.Unchanged != 4 {
		t.Errorf("Apply on a cache that has not seen the writes: %+v, want 4 unchanged", got)
	}
	// A real change while the cache still lags is written onto the writer's own
	// latest version, without a conflict, and then counts as done.
	changed := relabel(out, t1)
	k := types.NamespacedName{Namespace: "default", Name: "r000"}
	changed.HTTPRoutes[k].Parents[0].Conditions[0].Status = metav1.ConditionFalse
	for i, want := range []Counters{{Writes: 1, Unchanged: 3}, {Unchanged: 4}} {
		if got := w.Apply(ctx, changed, stale); got != want {
			t.Errorf("Apply %d of a change on a lagging cache: %+v, want %+v", i+1, got, want)
		}
	}
	// Once the cache has caught up, the records of the writes are dropped.
	if got := w.Apply(ctx, changed, liveObjects(t, client)); got.Writes != 0 {
		t.Errorf("Apply on the caught-up cache %+v, want no writes", got)
	}
	w.mu.Lock()
	n := len(w.written)
	w.mu.Unlock()
	if n != 0 {
		t.Errorf("%d records of writes kept after the cache caught up, want 0", n)
	}
}

func TestApplyRetriesConflictsWithAFreshRead(t *testing.T) {
	objs, out := fixture(1)
	client := newClient(t, objs...)
	var conflicts atomic.Int64
	client.PrependReactor("update", "httproutes", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts.Add(1) <= 2 {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: gwv1.GroupName, Resource: "httproutes"}, "r000", errors.New("changed"))
		}
		return false, nil, nil
	})
	w := NewWriter(client, quiet)
	got := w.Apply(context.Background(), out, liveObjects(t, client))
	if got.Conflicts != 2 || got.Writes != 3 || got.Errors != 0 {
		t.Errorf("Apply %+v, want 2 conflicts, then all 3 objects written", got)
	}
}

// TestApplyConflictFromAStaleCache has another client change a route after the cache
// was read: the update conflicts, and the writer reads the route and writes again.
func TestApplyConflictFromAStaleCache(t *testing.T) {
	objs, out := fixture(1)
	client := newClient(t, objs...)
	stale := liveObjects(t, client)
	ctx := context.Background()
	r, _ := client.GatewayV1().HTTPRoutes("default").Get(ctx, "r000", metav1.GetOptions{})
	r.Labels = map[string]string{"edited": "yes"}
	if _, err := client.GatewayV1().HTTPRoutes("default").Update(ctx, r, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := NewWriter(client, quiet).Apply(ctx, out, stale)
	if got.Conflicts != 1 || got.Writes != 3 || got.Errors != 0 {
		t.Errorf("Apply %+v, want 1 conflict and 3 writes", got)
	}
	r, _ = client.GatewayV1().HTTPRoutes("default").Get(ctx, "r000", metav1.GetOptions{})
	if r.Labels["edited"] != "yes" || len(r.Status.Parents) != 1 {
		t.Errorf("route after the retried write: labels %v, parents %+v", r.Labels, r.Status.Parents)
	}
}

func TestApplyGivesUpAfterBoundedConflicts(t *testing.T) {
	objs, out := fixture(1)
	client := newClient(t, objs...)
	var attempts atomic.Int64
	client.PrependReactor("update", "httproutes", func(action k8stesting.Action) (bool, runtime.Object, error) {
		attempts.Add(1)
		return true, nil, apierrors.NewConflict(schema.GroupResource{Group: gwv1.GroupName, Resource: "httproutes"}, "r000", errors.New("changed"))
	})
	w := NewWriter(client, quiet)
	got := w.Apply(context.Background(), out, liveObjects(t, client))
	if attempts.Load() != maxAttempts || got.Errors != 1 || got.Writes != 2 {
		t.Errorf("Apply %+v after %d attempts, want %d attempts, 1 error, the other 2 objects written", got, attempts.Load(), maxAttempts)
	}
}

func TestApplyFailureOfOneObjectDoesNotStopOthers(t *testing.T) {
	objs, out := fixture(10)
	client := newClient(t, objs...)
	var failing atomic.Bool
	failing.Store(true)
	client.PrependReactor("update", "httproutes", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if failing.Load() && action.(k8stesting.UpdateAction).GetObject().(*gwv1.HTTPRoute).Name == "r004" {
			return true, nil, apierrors.NewInternalError(errors.New("etcd is unhappy"))
		}
		return false, nil, nil
	})
	w := NewWriter(client, quiet)
	ctx := context.Background()
	got := w.Apply(ctx, out, liveObjects(t, client))
	if got.Errors != 1 || got.Writes != 11 {
		t.Errorf("Apply %+v, want 1 error and 11 writes", got)
	}
	// The next Apply retries only the failed route.
	failing.Store(false)
	if got := w.Apply(ctx, out, liveObjects(t, client)); got.Writes != 1 || got.Errors != 0 || got.Unchanged != 11 {
		t.Errorf("second Apply %+v, want the failed route written and the rest unchanged", got)
	}
}

func TestApplyRemovesOurEntriesFromRoutesThatLeftOurGateways(t *testing.T) {
	other := gwv1.GatewayController("example.com/other")
	route := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "moved", Namespace: "default"},
		Status: gwv1.HTTPRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: []gwv1.RouteParentStatus{
			parent(ours, parentRef("gw", ""), t0, true), parent(other, parentRef("theirs", ""), t0, true)}}}}
	untouched := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: "default"},
		Status: gwv1.HTTPRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: []gwv1.RouteParentStatus{
			parent(other, parentRef("theirs", ""), t0, true)}}}}
	client := newClient(t, route, untouched)
	updates := countUpdates(client)
	w := NewWriter(client, quiet)
	ctx := context.Background()
	got := w.Apply(ctx, &translate.Output{}, liveObjects(t, client))
	if got.Writes != 1 || updates.Load() != 1 {
		t.Fatalf("Apply %+v with %d updates, want the one route with our entry written", got, updates.Load())
	}
	r, _ := client.GatewayV1().HTTPRoutes("default").Get(ctx, "moved", metav1.GetOptions{})
	if len(r.Status.Parents) != 1 || r.Status.Parents[0].ControllerName != other {
		t.Errorf("parents %+v, want only the other controller's entry", r.Status.Parents)
	}
}

// TestWorkersBoundConcurrency checks that updates overlap, up to the worker count.
// (The fake clientset runs its reactors under one lock, so this drives the worker
// pool with its own jobs.)
func TestWorkersBoundConcurrency(t *testing.T) {
	var inFlight, peak, done atomic.Int64
	var jobs []job
	for range 64 {
		jobs = append(jobs, func(ctx context.Context, run *counters) {
			n := inFlight.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(3 * time.Millisecond)
			inFlight.Add(-1)
			done.Add(1)
		})
	}
	w := NewWriter(fake.NewSimpleClientset(), quiet, WithWorkers(4))
	w.runAll(context.Background(), jobs, &counters{})
	if done.Load() != 64 {
		t.Fatalf("%d of 64 jobs ran", done.Load())
	}
	if p := peak.Load(); p < 2 || p > 4 {
		t.Errorf("peak of %d concurrent jobs, want 2-4 with 4 workers", p)
	}
}

func TestApplyStopsWhenContextIsDone(t *testing.T) {
	objs, out := fixture(20)
	client := newClient(t, objs...)
	updates := countUpdates(client)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := NewWriter(client, quiet).Apply(ctx, out, liveObjects(t, client))
	if updates.Load() != 0 || got.Writes != 0 {
		t.Errorf("Apply with a done context sent %d updates (%+v), want none", updates.Load(), got)
	}
	if got := NewWriter(client, quiet).Apply(context.Background(), nil, nil); got != (Counters{}) {
		t.Errorf("Apply(nil, nil) = %+v, want nothing done", got)
	}
}
