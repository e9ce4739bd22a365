package translate

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// kindListenerSet is the kind of a ListenerSet, as parentRefs and ReferenceGrants
// name it.
const kindListenerSet = "ListenerSet"

// listenerSetState is one ListenerSet whose parentRef names an owned Gateway.
type listenerSetState struct {
	ls      *gwv1.ListenerSet
	key     types.NamespacedName
	gateway *gatewayState
	// refusedReason, when set, is why the Gateway does not take the set at all
	// (NotAllowed or ParentNotAccepted); its listeners are then not evaluated.
	refusedReason gwv1.ListenerSetConditionReason
	refusedDetail string
	listeners     []*listenerState
}

// ListenerSetParent returns the Gateway that a ListenerSet's parentRef names, and
// false when it names another kind of object.
func ListenerSetParent(ls *gwv1.ListenerSet) (types.NamespacedName, bool) {
	ref := ls.Spec.ParentRef
	if str(ref.Group, gatewayGroup) != gatewayGroup || str(ref.Kind, kindGateway) != kindGateway || ref.Name == "" {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: str(ref.Namespace, ls.Namespace), Name: string(ref.Name)}, true
}

// ListenerSetAllowed reports whether a Gateway's spec.allowedListeners lets
// ListenerSets of a namespace attach: none by default, those of the Gateway's own
// namespace (Same), of every namespace (All), or of the namespaces whose labels
// (nsLabels) the selector matches (Selector). A missing or invalid selector matches
// nothing.
func ListenerSetAllowed(gw *gwv1.Gateway, namespace string, nsLabels map[string]string) bool {
	al := gw.Spec.AllowedListeners
	if al == nil || al.Namespaces == nil || al.Namespaces.From == nil {
		return false
	}
	switch *al.Namespaces.From {
	case gwv1.NamespacesFromAll:
		return true
	case gwv1.NamespacesFromSame:
		return namespace == gw.Namespace
	case gwv1.NamespacesFromSelector:
		if al.Namespaces.Selector == nil {
			return false
		}
		sel, err := metav1.LabelSelectorAsSelector(al.Namespaces.Selector)
		return err == nil && sel.Matches(labels.Set(nsLabels))
	default:
		return false
	}
}

// allowsListenerSets reports whether the Gateway lets ListenerSets of any namespace
// attach, that is whether it reports status.attachedListenerSets.
func allowsListenerSets(gw *gwv1.Gateway) bool {
	al := gw.Spec.AllowedListeners
	return al != nil && al.Namespaces != nil && al.Namespaces.From != nil && *al.Namespaces.From != gwv1.NamespacesFromNone
}

// ListenerSetPorts returns, for each Gateway, the listener ports of the ListenerSets
// that its allowedListeners lets attach, ascending. The placement step gives those
// ports a socket as it does the Gateway's own listener ports. Nil entries are skipped.
func ListenerSetPorts(gateways []*gwv1.Gateway, sets []*gwv1.ListenerSet, namespaces []*corev1.Namespace) map[types.NamespacedName][]int32 {
	ix := newIndex(&Input{Gateways: gateways, ListenerSets: sets, Namespaces: namespaces})
	out := map[types.NamespacedName][]int32{}
	for _, gw := range ix.gateways {
		key := types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}
		seen := map[int32]bool{}
		for _, ls := range ix.setsByParent[key] {
			if !ListenerSetAllowed(gw, ls.Namespace, ix.namespaceLabels(ls.Namespace)) {
				continue
			}
			for _, e := range ls.Spec.Listeners {
				if port := int32(e.Port); port >= 1 && port <= 65535 && !seen[port] {
					seen[port] = true
					out[key] = append(out[key], port)
				}
			}
		}
		sort.Slice(out[key], func(i, j int) bool { return out[key][i] < out[key][j] })
	}
	return out
}

// listenerSetsByParent groups ListenerSets by the Gateway their parentRef names, each
// group in the order of precedence the Gateway API gives their listeners: oldest
// first, then by namespace and name.
func listenerSetsByParent(sets []*gwv1.ListenerSet) map[types.NamespacedName][]*gwv1.ListenerSet {
	out := map[types.NamespacedName][]*gwv1.ListenerSet{}
	for _, ls := range sets {
		if parent, ok := ListenerSetParent(ls); ok {
			out[parent] = append(out[parent], ls)
		}
	}
	for _, group := range out {
		sort.SliceStable(group, func(i, j int) bool {
			a, b := group[i].CreationTimestamp, group[j].CreationTimestamp
			if !a.Equal(&b) {
				return a.Before(&b)
			}
			if group[i].Namespace != group[j].Namespace {
				return group[i].Namespace < group[j].Namespace
			}
			return group[i].Name < group[j].Name
		})
	}
	return out
}

// parentAccepted reports whether the Gateway is accepted, by the same rules as its
// Accepted condition: no placement problem that refuses it, and a valid listener.
func (gs *gatewayState) parentAccepted() bool {
	if gs.problem != nil && gs.problem.acceptedReason != "" {
		return false
	}
	for _, l := range gs.listeners {
		if l.accepted {
			return true
		}
	}
	return false
}

// mergeListenerSets evaluates the ListenerSets that name the Gateway and merges the
// listeners of those it takes into its listener set. A ListenerSet listener that is
// not distinct from a listener earlier in precedence (the Gateway's own first, then
// those of older ListenerSets) is refused as conflicted; the earlier one keeps
// serving, so a ListenerSet can never take traffic away from what is already served.
func (ix *index) mergeListenerSets(gs *gatewayState) {
	sets := ix.setsByParent[gs.key]
	if len(sets) == 0 {
		return
	}
	parentOK := gs.parentAccepted()
	var winners []*listenerState
	for _, l := range gs.listeners {
		if l.accepted {
			winners = append(winners, l)
		}
	}
	for _, ls := range sets {
		s := &listenerSetState{ls: ls, key: types.NamespacedName{Namespace: ls.Namespace, Name: ls.Name}, gateway: gs}
		gs.sets = append(gs.sets, s)
		switch {
		case !ListenerSetAllowed(gs.gw, ls.Namespace, ix.namespaceLabels(ls.Namespace)):
			s.refusedReason = gwv1.ListenerSetReasonNotAllowed
			s.refusedDetail = fmt.Sprintf("Gateway %s does not allow ListenerSets from namespace %q in spec.allowedListeners.", gs.key, ls.Namespace)
			continue
		case !parentOK:
			s.refusedReason = gwv1.ListenerSetReasonParentNotAccepted
			s.refusedDetail = fmt.Sprintf("Gateway %s is not accepted.", gs.key)
			continue
		}
		names := map[string]bool{}
		for i := range ls.Spec.Listeners {
			l := ix.evaluateListener(gs, s, gwv1.Listener(ls.Spec.Listeners[i]))
			if names[l.name] {
				l.reject(gwv1.ListenerReasonUnsupportedValue, "Another listener of this ListenerSet has the same name.")
			}
			names[l.name] = true
			if reason, detail := conflictWith(winners, l); reason != "" {
				// A conflict outranks every other reason: even a listener of an
				// unsupported protocol must say that it could never share the port.
				l.conflictReason, l.conflictDetail = string(reason), detail
				l.accepted, l.acceptedReason, l.acceptedDetail = false, string(reason), detail
			}
			if l.accepted {
				winners = append(winners, l)
			}
			s.listeners = append(s.listeners, l)
		}
	}
}

// conflictWith checks a ListenerSet listener against the listeners that precede it:
// on one port, all must use the same protocol and each its own hostname. The
// message names no other listener, since those may belong to someone else.
func conflictWith(winners []*listenerState, l *listenerState) (gwv1.ListenerConditionReason, string) {
	for _, w := range winners {
		if w.port != l.port {
			continue
		}
		if w.spec.Protocol != l.spec.Protocol {
			return gwv1.ListenerReasonProtocolConflict,
				fmt.Sprintf("Port %d is already served by a listener of protocol %s that takes precedence.", l.port, w.spec.Protocol)
		}
		if w.hostname == l.hostname {
			return gwv1.ListenerReasonHostnameConflict,
				fmt.Sprintf("Hostname %q on port %d is already served by a listener that takes precedence.", l.hostname, l.port)
		}
	}
	return "", ""
}

// allListeners returns the Gateway's own listeners followed by those of the
// ListenerSets it takes, in order of precedence: everything the Gateway serves.
func (gs *gatewayState) allListeners() []*listenerState {
	if len(gs.sets) == 0 {
		return gs.listeners
	}
	out := append([]*listenerState(nil), gs.listeners...)
	for _, s := range gs.sets {
		out = append(out, s.listeners...)
	}
	return out
}

// namespace is the namespace the listener belongs to: that of its ListenerSet, or of
// its Gateway. allowedRoutes "Same" and certificate references are relative to it.
func (l *listenerState) namespace() string {
	if l.set != nil {
		return l.set.key.Namespace
	}
	return l.gateway.key.Namespace
}

// ownerKind is the kind of the object that defines the listener, as a ReferenceGrant
// names it in spec.from.
func (l *listenerState) ownerKind() string {
	if l.set != nil {
		return kindListenerSet
	}
	return kindGateway
}

// generation is the metadata.generation of the object that defines the listener.
func (l *listenerState) generation() int64 {
	if l.set != nil {
		return l.set.ls.Generation
	}
	return l.gateway.gw.Generation
}

// virtualHostPrefix starts the virtual host names of the set's listeners:
// "<gateway ns>/<gateway>/<set ns>/<set>/". Object names hold no "/", so these never
// collide with the Gateway's own "<ns>/<gateway>/<listener>".
func (s *listenerSetState) virtualHostPrefix() string {
	return s.gateway.key.Namespace + "/" + s.gateway.key.Name + "/" + s.key.Namespace + "/" + s.key.Name + "/"
}

// valid reports whether a listener can generate configuration: accepted, taking
// HTTPRoutes, and for HTTPS holding a usable certificate.
func (l *listenerState) valid() bool {
	return l.accepted && l.allowsHTTPRoute && (len(l.certificates) > 0 || l.spec.Protocol != gwv1.HTTPSProtocolType)
}

// listenerSetsByKey indexes the ListenerSets of all owned Gateways by name.
func listenerSetsByKey(gateways []*gatewayState) map[types.NamespacedName]*listenerSetState {
	out := map[types.NamespacedName]*listenerSetState{}
	for _, gs := range gateways {
		for _, s := range gs.sets {
			out[s.key] = s
		}
	}
	return out
}

// routeParent is what a route parentRef resolves to: a Gateway's own listeners, or a
// ListenerSet's. A Gateway parentRef never reaches the listeners of its ListenerSets.
type routeParent struct {
	// name describes the parent in messages, "Gateway ns/name".
	name      string
	listeners []*listenerState
	// gateway is the Gateway whose address serves the listeners: the parent itself
	// or the ListenerSet's parent. Its backend client certificate applies.
	gateway *gatewayState
	// refused, when set, says why no route can attach to the parent.
	refused string
}

// resolveParent finds the owned Gateway or ListenerSet a parentRef names, and false
// when it names neither.
func resolveParent(routeNamespace string, ref gwv1.ParentReference, gateways map[types.NamespacedName]*gatewayState,
	sets map[types.NamespacedName]*listenerSetState) (routeParent, bool) {
	if str(ref.Group, gatewayGroup) != gatewayGroup {
		return routeParent{}, false
	}
	key := parentGateway(routeNamespace, ref)
	switch str(ref.Kind, kindGateway) {
	case kindGateway:
		if gs := gateways[key]; gs != nil {
			return routeParent{name: "Gateway " + key.String(), listeners: gs.listeners, gateway: gs}, true
		}
	case kindListenerSet:
		if s := sets[key]; s != nil {
			p := routeParent{name: "ListenerSet " + key.String(), listeners: s.listeners, gateway: s.gateway}
			if s.refusedReason != "" {
				p.refused = fmt.Sprintf("ListenerSet %s is not attached to its Gateway: %s", key, s.refusedDetail)
			}
			return p, true
		}
	}
	return routeParent{}, false
}

// acceptance decides the set's Accepted condition: it is accepted when its Gateway
// takes it and at least one of its listeners is valid.
func (s *listenerSetState) acceptance() (bool, gwv1.ListenerSetConditionReason, string) {
	if s.refusedReason != "" {
		return false, s.refusedReason, s.refusedDetail
	}
	var good, bad []string
	for _, l := range s.listeners {
		if l.valid() {
			good = append(good, l.name)
		} else {
			bad = append(bad, l.name)
		}
	}
	switch {
	case len(good) == 0:
		return false, gwv1.ListenerSetReasonListenersNotValid, "No listener of the ListenerSet is valid."
	case len(bad) > 0:
		return true, gwv1.ListenerSetReasonListenersNotValid,
			fmt.Sprintf("Listeners %s are not valid; listeners %s are accepted.", strings.Join(bad, ", "), strings.Join(good, ", "))
	default:
		return true, gwv1.ListenerSetReasonAccepted, "The ListenerSet is accepted by Gateway " + s.gateway.key.String() + "."
	}
}
