package status

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

func ancestor(controller, gateway string, status metav1.ConditionStatus, at time.Time) gwv1.PolicyAncestorStatus {
	ns := gwv1.Namespace("ns")
	return gwv1.PolicyAncestorStatus{
		AncestorRef:    gwv1.ParentReference{Namespace: &ns, Name: gwv1.ObjectName(gateway)},
		ControllerName: gwv1.GatewayController(controller),
		Conditions: []metav1.Condition{{Type: "Accepted", Status: status, Reason: "Accepted",
			ObservedGeneration: 1, LastTransitionTime: metav1.NewTime(at)}},
	}
}

// The writer adds this controller's ancestors next to other controllers', writes
// nothing when they are unchanged, keeps lastTransitionTime of unchanged conditions,
// and removes its ancestors when no owned Gateway uses the policy any more.
func TestApplyMergesBackendTLSPolicyAncestors(t *testing.T) {
	earlier := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	policy := &gwv1.BackendTLSPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Generation: 1},
		Status: gwv1.PolicyStatus{Ancestors: []gwv1.PolicyAncestorStatus{ancestor("other.example/controller", "theirs", metav1.ConditionTrue, earlier)}}}
	client := newClient(t, policy)
	updates := countUpdates(client)
	w := NewWriter(client, quiet)
	ctx := context.Background()
	key := types.NamespacedName{Namespace: "ns", Name: "p"}
	ours := func(at time.Time) *translate.Output {
		return &translate.Output{BackendTLSPolicies: map[types.NamespacedName]gwv1.PolicyStatus{
			key: {Ancestors: []gwv1.PolicyAncestorStatus{ancestor(translate.ControllerName, "gw", metav1.ConditionTrue, at)}}}}
	}
	read := func() gwv1.PolicyStatus {
		got, err := client.GatewayV1().BackendTLSPolicies("ns").Get(ctx, "p", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got.Status
	}

	w.Apply(ctx, ours(earlier), liveObjects(t, client))
	st := read()
	if len(st.Ancestors) != 2 || st.Ancestors[0].AncestorRef.Name != "theirs" || st.Ancestors[1].AncestorRef.Name != "gw" {
		t.Fatalf("ancestors after the first write: %+v", st.Ancestors)
	}
	if st.Ancestors[1].AncestorRef.Group == nil || *st.Ancestors[1].AncestorRef.Kind != "Gateway" {
		t.Error("ancestorRef group and kind are not defaulted")
	}
	if n := updates.Load(); n != 1 {
		t.Fatalf("%d updates, want 1", n)
	}

	w.Apply(ctx, ours(earlier.Add(time.Hour)), liveObjects(t, client))
	if n := updates.Load(); n != 1 {
		t.Errorf("an unchanged status was written again (%d updates)", n)
	}

	w.Apply(ctx, &translate.Output{}, liveObjects(t, client))
	st = read()
	if len(st.Ancestors) != 1 || st.Ancestors[0].AncestorRef.Name != "theirs" {
		t.Errorf("ancestors after the policy fell out of use: %+v", st.Ancestors)
	}
}
