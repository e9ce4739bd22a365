package translate

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// invalidBackendStatus is what the Gateway API prescribes for traffic to a backend
// reference that cannot be resolved.
const invalidBackendStatus = 500

// backendRef translates one weighted backendRef of a rule. An unresolvable reference
// keeps its weight but is marked Invalid, so exactly its share is answered with 500.
func (c *routeCompiler) backendRef(b *gwv1.HTTPBackendRef, where string, matches []gwv1.HTTPRouteMatch) (config.BackendRef, *routeError) {
	out := config.BackendRef{Weight: 1}
	if b.Weight != nil {
		if *b.Weight < 0 {
			return out, unsupported(where+".weight", "weight %d is negative", *b.Weight)
		}
		out.Weight = *b.Weight
	}
	filters, err := c.filters(b.Filters, where+".filters", matches)
	if err != nil {
		return out, err
	}
	out.Filters = filters
	name, reason, detail := c.ix.resolveBackend(c.route.Namespace, b.BackendObjectReference)
	if reason != "" {
		c.refFailed(reason, where+": "+detail)
		out.Invalid = &config.InvalidBackend{StatusCode: invalidBackendStatus, Reason: detail}
		return out, nil
	}
	out.Backend = name
	return out, nil
}

// resolveBackend resolves a reference to one port of a Service and returns the
// backend name, or the ResolvedRefs reason and a sentence saying what is wrong.
func (ix *index) resolveBackend(routeNamespace string, ref gwv1.BackendObjectReference) (string, gwv1.RouteConditionReason, string) {
	group, kind := str(ref.Group, coreGroup), str(ref.Kind, kindService)
	ns := str(ref.Namespace, routeNamespace)
	svcName := ns + "/" + string(ref.Name)
	if group != coreGroup || kind != kindService {
		return "", gwv1.RouteReasonInvalidKind, fmt.Sprintf("backend %s of kind %q in group %q is not supported; use a core Service", svcName, kind, group)
	}
	if ns != routeNamespace && !ix.grantAllows(gatewayGroup, kindHTTPRoute, routeNamespace, coreGroup, kindService, ns, string(ref.Name)) {
		return "", gwv1.RouteReasonRefNotPermitted, fmt.Sprintf("Service %s is in another namespace and no ReferenceGrant allows the reference", svcName)
	}
	key := types.NamespacedName{Namespace: ns, Name: string(ref.Name)}
	svc := ix.services[key]
	if svc == nil {
		return "", gwv1.RouteReasonBackendNotFound, fmt.Sprintf("Service %s does not exist", svcName)
	}
	if ref.Port == nil {
		return "", gwv1.RouteReasonBackendNotFound, fmt.Sprintf("the reference to Service %s has no port", svcName)
	}
	var port *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == int32(*ref.Port) {
			port = &svc.Spec.Ports[i]
			break
		}
	}
	if port == nil {
		return "", gwv1.RouteReasonBackendNotFound, fmt.Sprintf("Service %s has no port %d", svcName, *ref.Port)
	}
	protocol, ok := appProtocol(port.AppProtocol)
	if !ok {
		return "", gwv1.RouteReasonUnsupportedProtocol, fmt.Sprintf("Service %s port %d has appProtocol %q, which is not supported", svcName, *ref.Port, *port.AppProtocol)
	}
	name := svcName + ":" + strconv.Itoa(int(*ref.Port))
	if _, done := ix.backends[name]; !done {
		ix.backends[name] = config.Backend{Name: name, Protocol: protocol, Endpoints: ix.endpoints(key, port)}
	}
	return name, "", ""
}

// appProtocol maps a Service port's appProtocol to how the gateway speaks to it.
// Protocols that need TLS to the backend are refused rather than spoken in clear.
func appProtocol(p *string) (config.AppProtocol, bool) {
	if p == nil {
		return config.AppProtocolHTTP1, true
	}
	switch strings.ToLower(*p) {
	case "kubernetes.io/h2c":
		return config.AppProtocolH2C, true
	case "kubernetes.io/ws":
		return config.AppProtocolWebSocket, true
	case "https", "kubernetes.io/wss", "kubernetes.io/tls", "tls", "grpcs":
		return "", false
	default:
		return config.AppProtocolHTTP1, true
	}
}

// endpoints lists the addresses behind one Service port, from the Service's
// EndpointSlices. The slice port with the Service port's name gives the target port,
// as kube-proxy resolves it.
func (ix *index) endpoints(svc types.NamespacedName, port *corev1.ServicePort) []config.Endpoint {
	byAddress := map[string]config.Endpoint{}
	for _, slice := range ix.slicesByService[svc] {
		if slice.AddressType != discoveryv1.AddressTypeIPv4 && slice.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		target, ok := slicePort(slice, port)
		if !ok {
			continue
		}
		for _, ep := range slice.Endpoints {
			e, ok := ix.endpoint(ep, target)
			if !ok {
				continue
			}
			if _, dup := byAddress[e.Address]; !dup {
				byAddress[e.Address] = e
			}
		}
	}
	out := make([]config.Endpoint, 0, len(byAddress))
	for _, addr := range sortedKeys(byAddress) {
		out = append(out, byAddress[addr])
	}
	return out
}

// slicePort finds the target port of a Service port in an EndpointSlice.
func slicePort(slice *discoveryv1.EndpointSlice, port *corev1.ServicePort) (int, bool) {
	wantProtocol := port.Protocol
	if wantProtocol == "" {
		wantProtocol = corev1.ProtocolTCP
	}
	for _, p := range slice.Ports {
		protocol := corev1.ProtocolTCP
		if p.Protocol != nil {
			protocol = *p.Protocol
		}
		if str(p.Name, "") != port.Name || protocol != wantProtocol || p.Port == nil {
			continue
		}
		if *p.Port < 1 || *p.Port > 65535 {
			return 0, false
		}
		return int(*p.Port), true
	}
	return 0, false
}

// endpoint converts one EndpointSlice endpoint. Only the first address counts (the
// API defines no meaning for the others). Loopback addresses are accepted only in
// standalone mode: in a cluster they would point the gateway at itself.
func (ix *index) endpoint(ep discoveryv1.Endpoint, port int) (config.Endpoint, bool) {
	if len(ep.Addresses) == 0 {
		return config.Endpoint{}, false
	}
	ip := net.ParseIP(ep.Addresses[0])
	if ip == nil || ip.IsUnspecified() || (ip.IsLoopback() && !ix.opts.Standalone) {
		return config.Endpoint{}, false
	}
	// Nil ready and nil serving both read as true, and nil terminating as false, as
	// the EndpointSlice API defines.
	out := config.Endpoint{
		Address:     net.JoinHostPort(ip.String(), strconv.Itoa(port)),
		Ready:       ep.Conditions.Ready == nil || *ep.Conditions.Ready,
		Serving:     ep.Conditions.Serving == nil || *ep.Conditions.Serving,
		Terminating: ep.Conditions.Terminating != nil && *ep.Conditions.Terminating,
		Zone:        str(ep.Zone, ""),
		NodeName:    str(ep.NodeName, ""),
	}
	return out, true
}

// referencedBackends returns the backends that the served routes name, sorted.
func (ix *index) referencedBackends(listeners []config.Listener) []config.Backend {
	used := map[string]bool{}
	markFilters := func(fs []config.Filter) {
		for _, f := range fs {
			if f.RequestMirror != nil && f.RequestMirror.Backend != "" {
				used[f.RequestMirror.Backend] = true
			}
		}
	}
	for _, l := range listeners {
		for _, vh := range l.VirtualHosts {
			for _, r := range vh.Routes {
				for _, rule := range r.Rules {
					markFilters(rule.Filters)
					for _, b := range rule.Backends {
						if b.Backend != "" {
							used[b.Backend] = true
						}
						markFilters(b.Filters)
					}
				}
			}
		}
	}
	out := make([]config.Backend, 0, len(used))
	for _, name := range sortedKeys(used) {
		out = append(out, ix.backends[name])
	}
	return out
}
