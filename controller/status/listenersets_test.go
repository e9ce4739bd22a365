package status

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

func listenerSetFor(name, gateway string) *gwv1.ListenerSet {
	return &gwv1.ListenerSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: gwv1.ListenerSetSpec{
			ParentRef: gwv1.ParentGatewayReference{Name: gwv1.ObjectName(gateway)},
			Listeners: []gwv1.ListenerEntry{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}},
		},
	}
}

func listenerSetStatus(at metav1.Time, ok bool) gwv1.ListenerSetStatus {
	reason := "Accepted"
	if !ok {
		reason = "ListenersNotValid"
	}
	return gwv1.ListenerSetStatus{
		Conditions: []metav1.Condition{cond("Accepted", ok, reason, at)},
		Listeners: []gwv1.ListenerEntryStatus{{
			Name: "http",
			// No group: the writer applies the CRD default before comparing.
			SupportedKinds: []gwv1.RouteGroupKind{{Kind: "HTTPRoute"}},
			AttachedRoutes: 1,
			Conditions:     []metav1.Condition{cond("Accepted", ok, reason, at)},
		}},
	}
}

// TestApplyWritesListenerSetStatus checks that ListenerSet status is written only
// for ListenerSets of this controller's Gateways, only when it changes, and that an
// unchanged condition keeps its lastTransitionTime.
func TestApplyWritesListenerSetStatus(t *testing.T) {
	objs, _ := fixture(0)
	objs = append(objs, listenerSetFor("ls", "gw"), listenerSetFor("foreign-ls", "foreign"))
	client := newClient(t, objs...)
	w := NewWriter(client, quiet)
	ctx := context.Background()
	mine := types.NamespacedName{Namespace: "default", Name: "ls"}
	foreign := types.NamespacedName{Namespace: "default", Name: "foreign-ls"}
	out := &translate.Output{ListenerSets: map[types.NamespacedName]gwv1.ListenerSetStatus{
		mine:    listenerSetStatus(t0, true),
		foreign: listenerSetStatus(t0, true),
	}}
	if got := w.Apply(ctx, out, liveObjects(t, client)); got.Writes != 1 || got.Errors != 0 {
		t.Fatalf("first Apply = %+v, want 1 write (the foreign Gateway's ListenerSet is not ours)", got)
	}
	ls, err := client.GatewayV1().ListenerSets("default").Get(ctx, "ls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.Status.Conditions) != 1 || ls.Status.Listeners[0].AttachedRoutes != 1 {
		t.Fatalf("written status = %+v", ls.Status)
	}
	if g := ls.Status.Listeners[0].SupportedKinds[0].Group; g == nil || *g != gwv1.GroupName {
		t.Errorf("supportedKinds group = %v, want the default %s", g, gwv1.GroupName)
	}
	other, err := client.GatewayV1().ListenerSets("default").Get(ctx, "foreign-ls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(other.Status.Conditions) != 0 {
		t.Errorf("the ListenerSet of another controller's Gateway got status %+v", other.Status)
	}

	// The same status computed later writes nothing.
	out.ListenerSets[mine] = listenerSetStatus(t1, true)
	if got := w.Apply(ctx, out, liveObjects(t, client)); got.Writes != 0 {
		t.Errorf("an unchanged status was written again: %+v", got)
	}

	// A real change is written, with the new transition time.
	out.ListenerSets[mine] = listenerSetStatus(t1, false)
	if got := w.Apply(ctx, out, liveObjects(t, client)); got.Writes != 1 {
		t.Fatalf("a changed status was not written: %+v", got)
	}
	ls, err = client.GatewayV1().ListenerSets("default").Get(ctx, "ls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := ls.Status.Conditions[0]; c.Status != metav1.ConditionFalse || !c.LastTransitionTime.Equal(&t1) {
		t.Errorf("condition after the change = %+v", c)
	}
}
