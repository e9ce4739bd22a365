package translate

import (
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// statuses renders the status of every TrafficPolicy: one ancestor entry per parent
// its targets reach, each with the policy's conditions. The parents are owned
// Gateways (a Gateway target itself, the Gateways that serve a targeted route, those
// whose routes send to a targeted Service) and, east-west, Services serving mesh
// routes (a Service that serves mesh routes is the ancestor of its own policies, and
// of those of the Services its mesh routes send to). A policy whose targets reach
// nothing gets a single entry whose ancestorRef is its first target, so that it
// still says why it does nothing; the Gateway API lets a policy's ancestor be its
// target.
func (tp *trafficPolicies) statuses(now time.Time) map[types.NamespacedName]gwv1.PolicyStatus {
	out := make(map[types.NamespacedName]gwv1.PolicyStatus, len(tp.all))
	for _, p := range tp.all {
		parents := tp.ancestors(p)
		conditions := tp.conditions(p, len(parents) > 0, now)
		refs := make([]gwv1.ParentReference, 0, max(1, len(parents)))
		for _, a := range parents {
			refs = append(refs, ancestorRef(a))
		}
		if len(refs) == 0 {
			refs = append(refs, firstTargetRef(p))
		}
		st := gwv1.PolicyStatus{Ancestors: make([]gwv1.PolicyAncestorStatus, 0, len(refs))}
		for _, ref := range refs {
			st.Ancestors = append(st.Ancestors, gwv1.PolicyAncestorStatus{
				AncestorRef:    ref,
				ControllerName: gwv1.GatewayController(tp.ix.controllerName),
				Conditions:     slices.Clone(conditions),
			})
		}
		out[p.key] = st
	}
	return out
}

// ancestorRef renders a parent, a Gateway or a Service, as an ancestorRef.
func ancestorRef(a policyTargetKey) gwv1.ParentReference {
	group, kind := gatewayGroup, kindGateway
	if a.level == levelService {
		group, kind = coreGroup, kindService
	}
	return gwv1.ParentReference{
		Group:     ptrTo(gwv1.Group(group)),
		Kind:      ptrTo(gwv1.Kind(kind)),
		Namespace: ptrTo(gwv1.Namespace(a.namespace)),
		Name:      gwv1.ObjectName(a.name),
	}
}

// ancestors lists the parents the policy's targets reach: Gateways first, then
// Services, each sorted by "<namespace>/<name>", at most as many as the API allows.
func (tp *trafficPolicies) ancestors(p *trafficPolicy) []policyTargetKey {
	set := map[policyTargetKey]bool{}
	for _, t := range p.targets {
		nn := types.NamespacedName{Namespace: t.namespace, Name: t.name}
		var reached map[policyTargetKey]bool
		switch t.level {
		case levelGateway:
			// A target Gateway exists and is owned, or it would be missing.
			set[t] = true
		case levelService:
			reached = tp.serviceAncestors[nn]
		default:
			reached = tp.routeAncestors[nn]
		}
		for a := range reached {
			set[a] = true
		}
	}
	out := make([]policyTargetKey, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y policyTargetKey) int {
		if x.level != y.level {
			return int(x.level) - int(y.level)
		}
		return strings.Compare(x.namespace+"/"+x.name, y.namespace+"/"+y.name)
	})
	if len(out) > maxPolicyAncestors {
		out = out[:maxPolicyAncestors]
	}
	return out
}

// firstTargetRef is the ancestorRef of a policy that reaches no owned Gateway: its
// first target, or the policy itself when it names none.
func firstTargetRef(p *trafficPolicy) gwv1.ParentReference {
	ns := ptrTo(gwv1.Namespace(p.key.Namespace))
	if len(p.obj.Spec.TargetRefs) == 0 {
		return gwv1.ParentReference{
			Group:     ptrTo(gwv1.Group(v1alpha1.GroupVersion.Group)),
			Kind:      ptrTo(gwv1.Kind("TrafficPolicy")),
			Namespace: ns,
			Name:      gwv1.ObjectName(p.key.Name),
		}
	}
	ref := p.obj.Spec.TargetRefs[0]
	return gwv1.ParentReference{
		Group:       ptrTo(ref.Group),
		Kind:        ptrTo(ref.Kind),
		Namespace:   ns,
		Name:        ref.Name,
		SectionName: ref.SectionName,
	}
}

// conditions are the policy's Accepted condition, the same towards every ancestor.
func (tp *trafficPolicies) conditions(p *trafficPolicy, reached bool, now time.Time) []metav1.Condition {
	conds := newConditionSet(p.obj.Generation, now)
	accepted := string(gwv1.PolicyConditionAccepted)
	switch {
	case p.invalid != "":
		conds.set(accepted, false, string(gwv1.PolicyReasonInvalid), p.invalid)
	case len(p.targets) == 0:
		conds.set(accepted, false, string(gwv1.PolicyReasonTargetNotFound), strings.Join(p.missing, " "))
	case p.conflicted != "":
		conds.set(accepted, false, string(gwv1.PolicyReasonConflicted), p.conflicted)
	default:
		conds.set(accepted, true, string(gwv1.PolicyReasonAccepted), tp.acceptedMessage(p, reached))
	}
	return conds.list()
}

// acceptedMessage says what an accepted policy should know: which of its fields are
// overridden where, by what; which targets do not count; and whether it reaches
// anything served at all.
func (tp *trafficPolicies) acceptedMessage(p *trafficPolicy, reached bool) string {
	var b strings.Builder
	b.WriteString("The policy is accepted.")
	notes, applied := tp.overrides[p], tp.applied[p]
	for f := range numPolicyFields {
		switch {
		case notes != nil && notes[f].places > 0:
			b.WriteString(" ")
			b.WriteString(notes[f].String())
		case reached && p.sets(f) && (applied == nil || !applied[f]):
			// A Service's rule fields apply to the rules that send to it as written,
			// not to those where a Rollout added it as the canary.
			b.WriteString(" Its ")
			b.WriteString(policyFieldNames[f])
			b.WriteString(" applies to nothing served yet.")
		}
	}
	if len(p.missing) > 0 {
		b.WriteString(" Some targets do not count:")
		for _, m := range p.missing {
			b.WriteString(" ")
			b.WriteString(m)
		}
	}
	if !reached {
		b.WriteString(" No route of a Gateway served by ")
		b.WriteString(tp.ix.controllerName)
		b.WriteString(" reaches its targets yet, so it has no effect.")
	}
	return b.String()
}
