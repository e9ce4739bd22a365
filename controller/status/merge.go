package status

import (
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Defaults the Gateway API CRDs apply to status fields. The desired status is given
// the same defaults before it is compared with what the API server holds, or an
// unset field would look like a change forever.
const (
	defaultGroup       = gwv1.Group(gwv1.GroupName)
	defaultParentKind  = gwv1.Kind("Gateway")
	defaultAddressType = gwv1.IPAddressType
)

// mergeConditions returns the desired conditions, each keeping the current
// lastTransitionTime of the same type when its status did not change: the time says
// when the status last changed, not when the controller last looked.
func mergeConditions(current, desired []metav1.Condition) []metav1.Condition {
	if desired == nil {
		return nil
	}
	out := make([]metav1.Condition, len(desired))
	for i, d := range desired {
		out[i] = d
		for _, c := range current {
			if c.Type == d.Type && c.Status == d.Status {
				out[i].LastTransitionTime = c.LastTransitionTime
				break
			}
		}
	}
	return out
}

// mergeGatewayClassStatus is the status to write for an owned GatewayClass.
func mergeGatewayClassStatus(current, desired gwv1.GatewayClassStatus) gwv1.GatewayClassStatus {
	out := *desired.DeepCopy()
	out.Conditions = mergeConditions(current.Conditions, desired.Conditions)
	return out
}

// mergeGatewayStatus is the status to write for an owned Gateway. Listener
// conditions are matched by listener name.
func mergeGatewayStatus(current, desired gwv1.GatewayStatus) gwv1.GatewayStatus {
	out := *desired.DeepCopy()
	out.Conditions = mergeConditions(current.Conditions, desired.Conditions)
	for i := range out.Listeners {
		for _, cl := range current.Listeners {
			if cl.Name == out.Listeners[i].Name {
				out.Listeners[i].Conditions = mergeConditions(cl.Conditions, out.Listeners[i].Conditions)
				break
			}
		}
	}
	defaultGatewayStatus(&out)
	return out
}

// mergeRouteStatus is the status to write for an HTTPRoute: the entries of other
// controllers are kept as they are, each of this controller's entries is replaced by
// the desired entry for the same parentRef, and this controller's entries for parents
// that are not desired any more are removed. Entries keep their position, and new
// ones are added at the end, so that an unchanged route gives an identical list.
//
// An entry is this controller's when its controllerName is ours or is that of a
// desired entry, so that a writer and a translator configured with different names
// still never duplicate entries.
func mergeRouteStatus(routeNamespace string, current gwv1.HTTPRouteStatus, desired []gwv1.RouteParentStatus, ours gwv1.GatewayController) gwv1.HTTPRouteStatus {
	return gwv1.HTTPRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: mergeOwned(routeNamespace, current.Parents, desired, ours,
		func(p *gwv1.RouteParentStatus) (gwv1.GatewayController, gwv1.ParentReference) {
			return p.ControllerName, p.ParentRef
		},
		mergeParent)}}
}

// mergeOwned merges per-parent status entries (route parents, policy ancestors):
// the entries of other controllers are kept as they are, each of this controller's
// entries is replaced by the desired entry for the same parent, and this
// controller's entries for parents that are not desired any more are removed.
// Entries keep their position, and new ones are added at the end. entryOf reads an
// entry's controller and parent.
func mergeOwned[E any, PE interface {
	*E
	DeepCopy() *E
}](namespace string, current, desired []E, ours gwv1.GatewayController,
	entryOf func(*E) (gwv1.GatewayController, gwv1.ParentReference), merge func(current, desired E) E) []E {
	owned := map[gwv1.GatewayController]bool{ours: true}
	wanted := make(map[parentKey]int, len(desired))
	for i := range desired {
		controller, ref := entryOf(&desired[i])
		owned[controller] = true
		wanted[keyOf(namespace, ref)] = i
	}
	used := make([]bool, len(desired))
	var out []E
	for j := range current {
		controller, ref := entryOf(&current[j])
		if !owned[controller] {
			out = append(out, *PE(&current[j]).DeepCopy())
			continue
		}
		i, ok := wanted[keyOf(namespace, ref)]
		if !ok || used[i] {
			continue
		}
		used[i] = true
		out = append(out, merge(current[j], desired[i]))
	}
	var zero E
	for i := range desired {
		if !used[i] {
			out = append(out, merge(zero, desired[i]))
		}
	}
	return out
}

func mergeParent(current, desired gwv1.RouteParentStatus) gwv1.RouteParentStatus {
	out := *desired.DeepCopy()
	out.Conditions = mergeConditions(current.Conditions, desired.Conditions)
	defaultParentRef(&out.ParentRef)
	return out
}

// hasParentOf reports whether a route's status has an entry of the controller.
func hasParentOf(st gwv1.HTTPRouteStatus, controller gwv1.GatewayController) bool {
	for _, p := range st.Parents {
		if p.ControllerName == controller {
			return true
		}
	}
	return false
}

// parentKey identifies a parentRef with the API's defaults filled in.
type parentKey struct {
	group, kind, namespace, name, section string
	port                                  int32
}

func keyOf(routeNamespace string, ref gwv1.ParentReference) parentKey {
	k := parentKey{group: string(defaultGroup), kind: string(defaultParentKind), namespace: routeNamespace, name: string(ref.Name)}
	if ref.Group != nil {
		k.group = string(*ref.Group)
	}
	if ref.Kind != nil {
		k.kind = string(*ref.Kind)
	}
	if ref.Namespace != nil {
		k.namespace = string(*ref.Namespace)
	}
	if ref.SectionName != nil {
		k.section = string(*ref.SectionName)
	}
	if ref.Port != nil {
		k.port = int32(*ref.Port)
	}
	return k
}

// defaultParentRef fills in the group and kind the CRD defaults, on a ref that the
// caller owns.
func defaultParentRef(ref *gwv1.ParentReference) {
	if ref.Group == nil {
		g := defaultGroup
		ref.Group = &g
	}
	if ref.Kind == nil {
		k := defaultParentKind
		ref.Kind = &k
	}
}

// defaultGatewayStatus fills in the address types and route groups the CRD defaults,
// on a status that the caller owns.
func defaultGatewayStatus(st *gwv1.GatewayStatus) {
	for i := range st.Addresses {
		if st.Addresses[i].Type == nil {
			t := defaultAddressType
			st.Addresses[i].Type = &t
		}
	}
	for i := range st.Listeners {
		for j := range st.Listeners[i].SupportedKinds {
			if st.Listeners[i].SupportedKinds[j].Group == nil {
				g := defaultGroup
				st.Listeners[i].SupportedKinds[j].Group = &g
			}
		}
	}
}

// sameStatus compares a status as stored with the status to write. Nil and empty
// lists are equal. Times compare exactly: an unchanged condition carries the stored
// time (see mergeConditions), so only a real transition makes them differ.
func sameStatus(current, merged any) bool {
	return equality.Semantic.DeepEqual(current, merged)
}
