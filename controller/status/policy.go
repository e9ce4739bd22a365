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
	owned := map[gwv1.GatewayController]bool{ours: true}
	wanted := make(map[parentKey]int, len(desired))
	for i, d := range desired {
		owned[d.ControllerName] = true
		wanted[keyOf(policyNamespace, d.AncestorRef)] = i
	}
	used := make([]bool, len(desired))
	out := gwv1.PolicyStatus{}
	for _, a := range current.Ancestors {
		if !owned[a.ControllerName] {
			out.Ancestors = append(out.Ancestors, *a.DeepCopy())
			continue
		}
		i, ok := wanted[keyOf(policyNamespace, a.AncestorRef)]
		if !ok || used[i] {
			continue
		}
		used[i] = true
		out.Ancestors = append(out.Ancestors, mergeAncestor(a, desired[i]))
	}
	for i, d := range desired {
		if !used[i] {
			out.Ancestors = append(out.Ancestors, mergeAncestor(gwv1.PolicyAncestorStatus{}, d))
		}
	}
	return out
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
