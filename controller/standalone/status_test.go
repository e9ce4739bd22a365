package standalone

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/controller/translate"
)

func TestStatusReportHasPolicyAndRolloutProblems(t *testing.T) {
	bad := metav1.Condition{Type: "Accepted", Status: metav1.ConditionFalse, Reason: "TargetNotFound", Message: "no Service reviews"}
	good := metav1.Condition{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted"}
	policy := types.NamespacedName{Namespace: "shop", Name: "retries"}
	out := &translate.Output{
		TrafficPolicies: map[types.NamespacedName]gwv1.PolicyStatus{policy: {Ancestors: []gwv1.PolicyAncestorStatus{
			{AncestorRef: gwv1.ParentReference{Name: "gw"}, Conditions: []metav1.Condition{bad}}}}},
		Rollouts: map[types.NamespacedName]translate.RolloutResult{
			{Namespace: "shop", Name: "broken"}:  {Accepted: bad},
			{Namespace: "shop", Name: "aborted"}: {Accepted: good},
		},
	}
	rep := NewStatusReport(out)
	want := []Problem{
		{Kind: "Rollout", Name: "shop/broken", Condition: "Accepted", Reason: "TargetNotFound", Message: "no Service reviews"},
		{Kind: "TrafficPolicy", Name: "shop/retries (ancestor gw)", Condition: "Accepted", Reason: "TargetNotFound", Message: "no Service reviews"},
	}
	assertProblems(t, rep.Problems, want)
	if len(rep.TrafficPolicies) != 1 || len(rep.Rollouts) != 2 {
		t.Fatalf("report %+v %+v", rep.TrafficPolicies, rep.Rollouts)
	}

	// The driver's statuses add where each rollout stands; an aborted one is a problem.
	ready := metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: "Aborted", Message: "canary error rate 5%"}
	stale := metav1.Condition{Type: "Accepted", Status: metav1.ConditionFalse, Reason: "BackendNotFound"}
	merged := rep.withRolloutStatuses(map[types.NamespacedName]v1alpha1.RolloutStatus{
		{Namespace: "shop", Name: "aborted"}: {Phase: v1alpha1.RolloutAborted, Conditions: []metav1.Condition{stale, ready}},
		{Namespace: "shop", Name: "removed"}: {Phase: v1alpha1.RolloutPromoted},
	})
	assertProblems(t, merged.Problems, []Problem{
		{Kind: "Rollout", Name: "shop/aborted", Condition: "Ready", Reason: "Aborted", Message: "canary error rate 5%"},
		want[0], want[1],
	})
	if st := merged.Rollouts["shop/aborted"]; st.Phase != v1alpha1.RolloutAborted || len(st.Conditions) != 2 {
		t.Errorf("merged status %+v", st)
	}
	if _, ok := merged.Rollouts["shop/removed"]; ok || len(rep.Problems) != 2 {
		t.Errorf("merging showed a removed rollout or changed the report it copies")
	}
}

func assertProblems(t *testing.T, got, want []Problem) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("problems %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("problem %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
