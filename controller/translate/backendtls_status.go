package translate

import (
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// maxPolicyAncestors is how many ancestors the API lets a policy status list.
const maxPolicyAncestors = 16

// statuses renders the status of every BackendTLSPolicy that some owned Gateway
// uses: one ancestor entry per such Gateway, each with the policy's conditions.
// Policies no owned Gateway uses get no entry; the status writer removes this
// controller's ancestors from them.
func (b *backendTLS) statuses(now time.Time) map[types.NamespacedName]gwv1.PolicyStatus {
	out := make(map[types.NamespacedName]gwv1.PolicyStatus, len(b.ancestors))
	for key, gateways := range b.ancestors {
		p := b.policies[key]
		conditions := b.conditions(key, p.Generation, now)
		names := make([]types.NamespacedName, 0, len(gateways))
		for gw := range gateways {
			names = append(names, gw)
		}
		slices.SortFunc(names, func(x, y types.NamespacedName) int { return strings.Compare(x.String(), y.String()) })
		if len(names) > maxPolicyAncestors {
			names = names[:maxPolicyAncestors]
		}
		st := gwv1.PolicyStatus{Ancestors: make([]gwv1.PolicyAncestorStatus, 0, len(names))}
		for _, gw := range names {
			st.Ancestors = append(st.Ancestors, gwv1.PolicyAncestorStatus{
				AncestorRef: gwv1.ParentReference{
					Group:     ptrTo(gwv1.Group(gatewayGroup)),
					Kind:      ptrTo(gwv1.Kind(kindGateway)),
					Namespace: ptrTo(gwv1.Namespace(gw.Namespace)),
					Name:      gwv1.ObjectName(gw.Name),
				},
				ControllerName: gwv1.GatewayController(b.ix.controllerName),
				Conditions:     slices.Clone(conditions),
			})
		}
		out[key] = st
	}
	return out
}

// conditions are a policy's Accepted and ResolvedRefs conditions.
func (b *backendTLS) conditions(key types.NamespacedName, generation int64, now time.Time) []metav1.Condition {
	r := b.result(key)
	conds := newConditionSet(generation, now)
	accepted := string(gwv1.PolicyConditionAccepted)
	switch detail, lost := b.conflicted[key]; {
	case lost:
		conds.set(accepted, false, string(gwv1.PolicyReasonConflicted), detail)
	case r.acceptedReason != "":
		conds.set(accepted, false, r.acceptedReason, r.acceptedDetail)
	default:
		conds.set(accepted, true, string(gwv1.PolicyReasonAccepted), "The policy is accepted.")
	}
	resolved := string(gwv1.BackendTLSPolicyConditionResolvedRefs)
	if r.resolvedReason != "" {
		conds.set(resolved, false, r.resolvedReason, r.resolvedDetail)
	} else {
		conds.set(resolved, true, string(gwv1.BackendTLSPolicyReasonResolvedRefs), "All references are resolved.")
	}
	return conds.list()
}
