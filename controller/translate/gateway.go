package translate

import (
	"fmt"
	"net"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// gatewayState is one owned Gateway while it is being translated.
type gatewayState struct {
	gw  *gwv1.Gateway
	key types.NamespacedName
	// address is the IP to bind, "" for all interfaces.
	address string
	// problem, when set, is why nothing of the Gateway can be served.
	problem *gatewayProblem
	// placed is set when the controller gave placements; then statusAddresses are
	// the Gateway's status.addresses and containerPorts, when not nil, the ports its
	// listeners bind.
	placed          bool
	statusAddresses []gwv1.GatewayStatusAddress
	containerPorts  map[int32]int32
	listeners       []*listenerState
	// sets are the ListenerSets whose parentRef names the Gateway, in the order of
	// precedence of their listeners (see listenersets.go).
	sets []*listenerSetState
}

// listenerState is one listener of an owned Gateway.
type listenerState struct {
	gateway *gatewayState
	name    string
	port    int
	// bindPort is the port the listener's socket binds: its own port, or the
	// container port its Gateway's placement gives it.
	bindPort int
	hostname string
	protocol config.Protocol
	spec     gwv1.Listener

	// accepted is false when the listener can generate no configuration at all.
	accepted                       bool
	acceptedReason, acceptedDetail string
	// conflictReason is HostnameConflict or ProtocolConflict, or "".
	conflictReason, conflictDetail string
	// refsProblem is the ResolvedRefs reason when some reference is bad.
	refsProblem, refsDetail string
	supportedKinds          []gwv1.RouteGroupKind
	allowsHTTPRoute         bool
	certificates            []config.Certificate
	// clientValidation is how the listener checks client certificates, if at all.
	clientValidation *config.ClientValidation
	// portTaken explains that another Gateway owns this listener's socket.
	portTaken string
	// unplaced explains that the placement gives the listener no usable port.
	unplaced string

	// attachedRoutes counts distinct routes; attached holds their names, since one
	// route may reach the same listener through several parentRefs.
	attachedRoutes int32
	attached       map[string]bool
	routes         []config.Route

	// set is the ListenerSet that defines the listener, nil for the Gateway's own.
	set *listenerSetState
}

// programmed reports whether the listener is served by the data plane.
func (l *listenerState) programmed() bool {
	if !l.accepted || l.portTaken != "" || l.unplaced != "" || !l.allowsHTTPRoute || l.gateway.problem != nil {
		return false
	}
	return l.protocol != config.ProtocolHTTPS || len(l.certificates) > 0
}

// virtualHostName is the VirtualHost name of the listener, "<ns>/<gateway>/<listener>",
// or "<ns>/<gateway>/<set ns>/<set>/<listener>" for a ListenerSet's.
func (l *listenerState) virtualHostName() string {
	if l.set != nil {
		return l.set.virtualHostPrefix() + l.name
	}
	return l.gateway.key.Namespace + "/" + l.gateway.key.Name + "/" + l.name
}

// ownsClass reports whether this controller serves Gateways of the named class.
func (ix *index) ownsClass(name string) bool {
	gc, ok := ix.gatewayClasses[name]
	if !ok {
		return ix.opts.Standalone
	}
	return string(gc.Spec.ControllerName) == ix.controllerName
}

// gatewayClassStatuses gives every owned GatewayClass its status.
func (ix *index) gatewayClassStatuses() map[string]gwv1.GatewayClassStatus {
	out := map[string]gwv1.GatewayClassStatus{}
	for name, gc := range ix.gatewayClasses {
		if string(gc.Spec.ControllerName) != ix.controllerName {
			continue
		}
		conds := newConditionSet(gc.Generation, ix.opts.Now)
		if msg, bad := ix.opts.InvalidClassParameters[name]; bad {
			conds.set(string(gwv1.GatewayClassConditionStatusAccepted), false,
				string(gwv1.GatewayClassReasonInvalidParameters), "The parametersRef cannot be used: "+msg)
		} else {
			conds.set(string(gwv1.GatewayClassConditionStatusAccepted), true,
				string(gwv1.GatewayClassReasonAccepted), "The GatewayClass is served by "+ix.controllerName+".")
		}
		out[name] = gwv1.GatewayClassStatus{
			Conditions:        conds.list(),
			SupportedFeatures: supportedFeatureList(),
		}
	}
	return out
}

// ownedGateways evaluates every Gateway of an owned class and its listeners.
func (ix *index) ownedGateways() []*gatewayState {
	var out []*gatewayState
	for _, gw := range ix.gateways {
		if !ix.ownsClass(string(gw.Spec.GatewayClassName)) {
			continue
		}
		gs := &gatewayState{gw: gw, key: types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}}
		ix.placeGateway(gs)
		names := map[string]bool{}
		for i := range gw.Spec.Listeners {
			l := ix.evaluateListener(gs, nil, gw.Spec.Listeners[i])
			if names[l.name] {
				l.reject(gwv1.ListenerReasonUnsupportedValue, "Another listener of this Gateway has the same name.")
			}
			names[l.name] = true
			gs.listeners = append(gs.listeners, l)
		}
		markConflicts(gs.listeners)
		ix.mergeListenerSets(gs)
		gs.placeListeners()
		out = append(out, gs)
	}
	return out
}

// bindAddress picks the address to bind: the first requested IPAddress with a value
// (an entry without a type is an IPAddress). An IPAddress entry without a value asks
// for any address, and other address types are left to the infrastructure, so both
// bind all interfaces.
func bindAddress(addrs []gwv1.GatewaySpecAddress) (string, string) {
	for _, a := range addrs {
		if (a.Type != nil && *a.Type != gwv1.IPAddressType) || a.Value == "" {
			continue
		}
		ip := net.ParseIP(a.Value)
		if ip == nil {
			return "", fmt.Sprintf("Address %q is not an IP address.", a.Value)
		}
		return ip.String(), ""
	}
	return "", ""
}

func (l *listenerState) reject(reason gwv1.ListenerConditionReason, detail string) {
	if !l.accepted {
		return
	}
	l.accepted, l.acceptedReason, l.acceptedDetail = false, string(reason), detail
}

func (l *listenerState) refsFail(reason gwv1.ListenerConditionReason, detail string) {
	if l.refsProblem == "" {
		l.refsProblem, l.refsDetail = string(reason), detail
	}
}

// evaluateListener checks one listener's protocol, port, route kinds and TLS. set is
// the ListenerSet that defines it, nil for the Gateway's own listeners.
func (ix *index) evaluateListener(gs *gatewayState, set *listenerSetState, spec gwv1.Listener) *listenerState {
	l := &listenerState{
		gateway:  gs,
		set:      set,
		name:     string(spec.Name),
		port:     int(spec.Port),
		bindPort: int(spec.Port),
		hostname: strings.ToLower(str(spec.Hostname, "")),
		spec:     spec,
		accepted: true,
	}
	switch spec.Protocol {
	case gwv1.HTTPProtocolType:
		l.protocol = config.ProtocolHTTP
	case gwv1.HTTPSProtocolType:
		l.protocol = config.ProtocolHTTPS
	default:
		l.reject(gwv1.ListenerReasonUnsupportedProtocol, fmt.Sprintf("Protocol %q is not supported; use HTTP or HTTPS.", spec.Protocol))
		l.supportedKinds = []gwv1.RouteGroupKind{}
		rejectRouteKinds(l)
		return l
	}
	if l.port < 1 || l.port > 65535 {
		l.reject(gwv1.ListenerReasonPortUnavailable, fmt.Sprintf("Port %d is out of range.", l.port))
	}
	ix.evaluateRouteKinds(l)
	if l.protocol == config.ProtocolHTTPS {
		ix.evaluateTLS(l)
		ix.evaluateFrontendValidation(l)
	}
	return l
}

// evaluateRouteKinds works out which route kinds the listener takes: HTTPRoute by
// default, and of an explicit list only the kinds this controller supports.
func (ix *index) evaluateRouteKinds(l *listenerState) {
	httpRoute := gwv1.RouteGroupKind{Group: ptrTo(gwv1.Group(gatewayGroup)), Kind: kindHTTPRoute}
	if l.spec.AllowedRoutes == nil || len(l.spec.AllowedRoutes.Kinds) == 0 {
		l.supportedKinds = []gwv1.RouteGroupKind{httpRoute}
		l.allowsHTTPRoute = true
		return
	}
	var invalid []string
	l.supportedKinds = []gwv1.RouteGroupKind{}
	for _, k := range l.spec.AllowedRoutes.Kinds {
		group := str(k.Group, gatewayGroup)
		if group == gatewayGroup && k.Kind == kindHTTPRoute {
			if !l.allowsHTTPRoute {
				l.supportedKinds = append(l.supportedKinds, httpRoute)
			}
			l.allowsHTTPRoute = true
			continue
		}
		invalid = append(invalid, group+"/"+string(k.Kind))
	}
	if len(invalid) > 0 {
		sort.Strings(invalid)
		l.refsFail(gwv1.ListenerReasonInvalidRouteKinds,
			fmt.Sprintf("Route kinds %s are not supported; only %s/%s is.", strings.Join(invalid, ", "), gatewayGroup, kindHTTPRoute))
	}
}

// rejectRouteKinds reports every route kind a listener of an unsupported protocol
// lists as invalid: no kind can be served on it, not even HTTPRoute.
func rejectRouteKinds(l *listenerState) {
	if l.spec.AllowedRoutes == nil || len(l.spec.AllowedRoutes.Kinds) == 0 {
		return
	}
	var kinds []string
	for _, k := range l.spec.AllowedRoutes.Kinds {
		kinds = append(kinds, str(k.Group, gatewayGroup)+"/"+string(k.Kind))
	}
	sort.Strings(kinds)
	l.refsFail(gwv1.ListenerReasonInvalidRouteKinds,
		fmt.Sprintf("Route kinds %s cannot be served on a listener of protocol %q.", strings.Join(kinds, ", "), l.spec.Protocol))
}

func ptrTo[T any](v T) *T { return &v }
