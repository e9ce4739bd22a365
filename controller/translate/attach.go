package translate

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// attachment is one listener a route parentRef attaches to, with the route's
// hostnames as seen through that listener.
type attachment struct {
	listener  *listenerState
	hostnames []string
}

// attachRoutes attaches every HTTPRoute to the owned Gateways it names (and, with
// Options.Mesh, to the Services it names), records the routes on the listeners (and
// Service ports) that take them, and returns the routes' status entries.
func (ix *index) attachRoutes(gateways []*gatewayState) map[types.NamespacedName]gwv1.HTTPRouteStatus {
	byKey := map[types.NamespacedName]*gatewayState{}
	for _, gs := range gateways {
		byKey[gs.key] = gs
	}
	sets := listenerSetsByKey(gateways)
	out := make(map[types.NamespacedName]gwv1.HTTPRouteStatus, len(ix.routes))
	for _, route := range ix.routes {
		var compiled *compiledRoute
		var parents []gwv1.RouteParentStatus
		for _, ref := range route.Spec.ParentRefs {
			if ix.mesh != nil && isServiceParent(ref) {
				if compiled == nil {
					compiled = ix.compileRoute(route)
				}
				parents = append(parents, ix.attachMeshParent(route, ref, compiled))
				continue
			}
			parent, ok := resolveParent(route.Namespace, ref, byKey, sets)
			if !ok {
				// Not one of our Gateways or ListenerSets: another controller reports on it.
				continue
			}
			if compiled == nil {
				compiled = ix.compileRoute(route)
			}
			parents = append(parents, ix.attachParent(route, ref, parent, compiled))
		}
		if len(parents) > 0 {
			key := types.NamespacedName{Namespace: route.Namespace, Name: route.Name}
			out[key] = gwv1.HTTPRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: parents}}
		}
	}
	return out
}

func parentGateway(routeNamespace string, ref gwv1.ParentReference) types.NamespacedName {
	return types.NamespacedName{Namespace: str(ref.Namespace, routeNamespace), Name: string(ref.Name)}
}

// attachParent attaches the route through one parentRef and renders that parent's
// status entry.
func (ix *index) attachParent(route *gwv1.HTTPRoute, ref gwv1.ParentReference, parent routeParent, compiled *compiledRoute) gwv1.RouteParentStatus {
	conds := newConditionSet(route.Generation, ix.opts.Now)
	accepted := string(gwv1.RouteConditionAccepted)
	attachments, reason, detail := ix.matchListeners(route, ref, parent)
	switch {
	case reason != "":
		conds.set(accepted, false, string(reason), detail)
	case compiled.invalidReason != "":
		conds.set(accepted, false, string(compiled.invalidReason), compiled.invalidDetail)
	default:
		conds.set(accepted, true, string(gwv1.RouteReasonAccepted), "The route is accepted.")
		gs := parent.gateway
		ix.btls.noteUse(gs.key, compiled.tlsPolicies)
		rules := ix.traffic.rulesFor(gatewayParent(gs.key), route, compiled, ix.btls.rulesFor(gs, compiled))
		name := route.Namespace + "/" + route.Name
		for _, a := range attachments {
			if !attachOnce(&a.listener.attached, name) {
				continue
			}
			a.listener.attachedRoutes++
			if a.listener.programmed() {
				a.listener.routes = append(a.listener.routes, config.Route{
					Name:              name,
					Hostnames:         a.hostnames,
					CreationTimestamp: route.CreationTimestamp.Time.UTC(),
					Rules:             rules,
				})
			}
		}
	}
	return ix.routeParentStatus(ref, conds, compiled)
}

// attachOnce records a route name in a set of attached routes, creating the set
// when needed, and reports whether the name is new to it: a route reaches the same
// listener or Service port once however many of its parentRefs name it.
func attachOnce(attached *map[string]bool, name string) bool {
	if (*attached)[name] {
		return false
	}
	if *attached == nil {
		*attached = map[string]bool{}
	}
	(*attached)[name] = true
	return true
}

// routeParentStatus completes a parent's conditions with ResolvedRefs and renders
// the parent's status entry.
func (ix *index) routeParentStatus(ref gwv1.ParentReference, conds *conditionSet, compiled *compiledRoute) gwv1.RouteParentStatus {
	resolved := string(gwv1.RouteConditionResolvedRefs)
	if compiled.refsReason != "" {
		conds.set(resolved, false, string(compiled.refsReason), compiled.refsDetail)
	} else {
		conds.set(resolved, true, string(gwv1.RouteReasonResolvedRefs), "All references are resolved.")
	}
	return gwv1.RouteParentStatus{
		ParentRef:      ref,
		ControllerName: gwv1.GatewayController(ix.controllerName),
		Conditions:     conds.list(),
	}
}

// matchListeners finds the listeners of a parent that a parentRef attaches the route
// to, following the Gateway API order of checks: sectionName and port, then the
// listeners' allowedRoutes, then hostnames. When none is left it gives the reason.
func (ix *index) matchListeners(route *gwv1.HTTPRoute, ref gwv1.ParentReference, parent routeParent) ([]attachment, gwv1.RouteConditionReason, string) {
	if parent.refused != "" {
		return nil, gwv1.RouteReasonNoMatchingParent, parent.refused
	}
	// A Gateway has a handful of listeners: these lists live on the stack.
	var namedBuf, usableBuf, allowedBuf [8]*listenerState
	named, usable := namedBuf[:0], usableBuf[:0]
	for _, l := range parent.listeners {
		if ref.SectionName != nil && string(*ref.SectionName) != l.name {
			continue
		}
		if ref.Port != nil && int(*ref.Port) != l.port {
			continue
		}
		named = append(named, l)
		if l.accepted {
			usable = append(usable, l)
		}
	}
	if len(named) == 0 {
		return nil, gwv1.RouteReasonNoMatchingParent, fmt.Sprintf("%s has no listener%s.", parent.name, describeParentRef(ref))
	}
	if len(usable) == 0 {
		return nil, gwv1.RouteReasonNoMatchingParent, fmt.Sprintf("No accepted listener of %s%s.", parent.name, describeParentRef(ref))
	}
	allowed := allowedBuf[:0]
	kindAllowed := false
	for _, l := range usable {
		kindAllowed = kindAllowed || l.allowsHTTPRoute
		if l.allowsHTTPRoute && ix.allowsNamespace(l, route.Namespace) {
			allowed = append(allowed, l)
		}
	}
	if !kindAllowed {
		return nil, gwv1.RouteReasonNotAllowedByListeners, fmt.Sprintf("No listener of %s allows the HTTPRoute kind.", parent.name)
	}
	if len(allowed) == 0 {
		return nil, gwv1.RouteReasonNotAllowedByListeners,
			fmt.Sprintf("No listener of %s allows HTTPRoutes from namespace %q.", parent.name, route.Namespace)
	}
	var hostsBuf [4]string
	routeHosts := hostsBuf[:0]
	for _, h := range route.Spec.Hostnames {
		routeHosts = append(routeHosts, strings.ToLower(string(h)))
	}
	var out []attachment
	for _, l := range allowed {
		if hosts, ok := effectiveHostnames(l.hostname, routeHosts); ok {
			out = append(out, attachment{listener: l, hostnames: hosts})
		}
	}
	if len(out) == 0 {
		return nil, gwv1.RouteReasonNoMatchingListenerHostname,
			fmt.Sprintf("No hostname of the route matches a listener hostname of %s.", parent.name)
	}
	return out, "", ""
}

func describeParentRef(ref gwv1.ParentReference) string {
	var parts []string
	if ref.SectionName != nil {
		parts = append(parts, fmt.Sprintf("named %q", *ref.SectionName))
	}
	if ref.Port != nil {
		parts = append(parts, fmt.Sprintf("on port %d", *ref.Port))
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}

// listenerNamespace is a listener and a route namespace, for caching allowsNamespace.
type listenerNamespace struct {
	listener  *listenerState
	namespace string
}

// allowsNamespace applies a listener's allowedRoutes.namespaces to a route namespace.
// Many routes share a namespace, and a selector is costly to parse and apply, so the
// answer is cached per listener and namespace.
func (ix *index) allowsNamespace(l *listenerState, routeNamespace string) bool {
	key := listenerNamespace{listener: l, namespace: routeNamespace}
	allowed, ok := ix.namespaceAllowed[key]
	if !ok {
		allowed = ix.evaluateAllowedNamespace(l, routeNamespace)
		ix.namespaceAllowed[key] = allowed
	}
	return allowed
}

func (ix *index) evaluateAllowedNamespace(l *listenerState, routeNamespace string) bool {
	from := gwv1.NamespacesFromSame
	var selector *metav1.LabelSelector
	if ar := l.spec.AllowedRoutes; ar != nil && ar.Namespaces != nil {
		if ar.Namespaces.From != nil {
			from = *ar.Namespaces.From
		}
		selector = ar.Namespaces.Selector
	}
	switch from {
	case gwv1.NamespacesFromAll:
		return true
	case gwv1.NamespacesFromSame:
		return routeNamespace == l.namespace()
	case gwv1.NamespacesFromSelector:
		if selector == nil {
			return false
		}
		sel, err := metav1.LabelSelectorAsSelector(selector)
		if err != nil {
			return false
		}
		return sel.Matches(labels.Set(ix.namespaceLabels(routeNamespace)))
	default:
		return false
	}
}
