package status

import (
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// mergePolicyStatus is the status to write for a policy: the ancestors of other
// controllers are kept as they are, each of this controller's ancestors is replaced
// by the desired entry for the same ancestorRef, and this controller's ancestors that
// are not desired any more are removed. Entries keep their position and new ones
// are added at the end, as for routes (see mergeRouteStatus).
func mergePolicyStatus(policyNamespace string, current gwv1.PolicyStatus, desired []gwv1.PolicyAncestorStatus, ours gwv1.GatewayController) gwv1.PolicyStatus {
	return gwv1.PolicyStatus{Ancestors: mergeOwned(policyNamespace, current.Ancestors, desired, ours,
		func(a *gwv1.PolicyAncestorStatus) (gwv1.GatewayController, gwv1.ParentReference) {
			return a.ControllerName, a.AncestorRef
		},
		mergeAncestor)}
}

func mergeAncestor(current, desired gwv1.PolicyAncestorStatus) gwv1.PolicyAncestorStatus {
	out := *desired.DeepCopy()
	out.Conditions = mergeConditions(current.Conditions, desired.Conditions)
	defaultParentRef(&out.AncestorRef)
	return out
}

// hasAncestorOf reports whether a policy's status has an ancestor of the controller.
func hasAncestorOf(st gwv1.PolicyStatus, controller gwv1.GatewayController) bool {
	for _, a := range st.Ancestors {
		if a.ControllerName == controller {
			return true
		}
	}
	return false
}
