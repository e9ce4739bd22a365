package translate

import (
	"fmt"
	"net"
	"slices"
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
func (c *routeCompiler) backendRef(b *gwv1.HTTPBackendRef, where *fieldPath, matches []gwv1.HTTPRouteMatch) (config.BackendRef, *routeError) {
	out := config.BackendRef{Weight: 1}
	if b.Weight != nil {
		if *b.Weight < 0 {
			return out, unsupportedIn(where, "weight", "weight %d is negative", *b.Weight)
		}
		out.Weight = *b.Weight
	}
	filters, err := c.filters(b.Filters, where, matches)
	if err != nil {
		return out, err
	}
	out.Filters = filters
	r := c.resolve(b.BackendObjectReference)
	switch {
	case r.reason != "":
		c.refFailed(r.reason, where, r.detail)
		out.Invalid = &config.InvalidBackend{StatusCode: invalidBackendStatus, Reason: r.detail}
	case r.tlsProblem != "":
		// The reference itself is fine; the BackendTLSPolicy's status tells what is
		// wrong. Its traffic fails rather than reaching the backend without TLS.
		out.Invalid = &config.InvalidBackend{StatusCode: invalidBackendStatus, Reason: r.tlsProblem}
	default:
		out.Backend = r.name
	}
	return out, nil
}

// resolve resolves a backend reference of the route and records the
// BackendTLSPolicies that target it.
func (c *routeCompiler) resolve(ref gwv1.BackendObjectReference) backendResolution {
	r := c.ix.resolveBackend(c.route.Namespace, ref)
	c.result.tlsPolicies = append(c.result.tlsPolicies, r.policies...)
	return r
}

// backendKey identifies a backend reference as resolveBackend sees it.
type backendKey struct {
	routeNamespace, group, kind, namespace, name string
	port                                         int32
	hasPort                                      bool
}

// backendResolution is the outcome of resolveBackend.
type backendResolution struct {
	// name is the backend's name; empty when the reference cannot be used.
	name   string
	reason gwv1.RouteConditionReason
	detail string
	// tlsProblem explains why the BackendTLSPolicy that applies to the backend
	// cannot be used; name is then empty, and reason too.
	tlsProblem string
	// policies are the BackendTLSPolicies that target the backend.
	policies []types.NamespacedName
}

// resolveBackend resolves a reference to one port of a Service and returns the
// backend name, or the ResolvedRefs reason and a sentence saying what is wrong. Routes
// of one namespace refer to the same Services again and again, so outcomes are cached
// by reference; the outcome depends on nothing else.
func (ix *index) resolveBackend(routeNamespace string, ref gwv1.BackendObjectReference) backendResolution {
	key := backendKey{
		routeNamespace: routeNamespace,
		group:          str(ref.Group, coreGroup),
		kind:           str(ref.Kind, kindService),
		namespace:      str(ref.Namespace, routeNamespace),
		name:           string(ref.Name),
	}
	if ref.Port != nil {
		key.port, key.hasPort = int32(*ref.Port), true
	}
	if r, ok := ix.resolved[key]; ok {
		return r
	}
	r := ix.resolveBackendRef(key, ref)
	ix.resolved[key] = r
	return r
}

func (ix *index) resolveBackendRef(key backendKey, ref gwv1.BackendObjectReference) backendResolution {
	fail := func(reason gwv1.RouteConditionReason, format string, args ...any) backendResolution {
		return backendResolution{reason: reason, detail: fmt.Sprintf(format, args...)}
	}
	ns, routeNamespace := key.namespace, key.routeNamespace
	svcName := ns + "/" + key.name
	if key.group != coreGroup || key.kind != kindService {
		return fail(gwv1.RouteReasonInvalidKind, "backend %s of kind %q in group %q is not supported; use a core Service", svcName, key.kind, key.group)
	}
	if ns != routeNamespace && !ix.grantAllows(gatewayGroup, kindHTTPRoute, routeNamespace, coreGroup, kindService, ns, key.name) {
		return fail(gwv1.RouteReasonRefNotPermitted, "Service %s is in another namespace and no ReferenceGrant allows the reference", svcName)
	}
	svcKey := types.NamespacedName{Namespace: ns, Name: key.name}
	svc := ix.services[svcKey]
	if svc == nil {
		return fail(gwv1.RouteReasonBackendNotFound, "Service %s does not exist", svcName)
	}
	if ref.Port == nil {
		return fail(gwv1.RouteReasonBackendNotFound, "the reference to Service %s has no port", svcName)
	}
	var port *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == int32(*ref.Port) {
			port = &svc.Spec.Ports[i]
			break
		}
	}
	if port == nil {
		return fail(gwv1.RouteReasonBackendNotFound, "Service %s has no port %d", svcName, *ref.Port)
	}
	policy, policies := ix.btls.policyFor(svcKey, port.Name)
	protocol, ok := appProtocol(port.AppProtocol, policy != nil)
	if !ok {
		return fail(gwv1.RouteReasonUnsupportedProtocol, "Service %s port %d has appProtocol %q, which is not supported without a BackendTLSPolicy", svcName, *ref.Port, *port.AppProtocol)
	}
	if policy != nil && policy.tls == nil {
		return backendResolution{tlsProblem: policy.problem, policies: policies}
	}
	name := svcName + ":" + strconv.Itoa(int(*ref.Port))
	if _, done := ix.backends[name]; !done {
		b := config.Backend{Name: name, Protocol: protocol, Endpoints: ix.endpoints(svcKey, port)}
		if policy != nil {
			b.TLS = policy.tls
		}
		ix.backends[name] = b
		ix.backendOrigins[name] = backendOrigin{service: svcKey, port: int32(*ref.Port)}
	}
	return backendResolution{name: name, policies: policies}
}

// appProtocol maps a Service port's appProtocol to how the gateway speaks to it,
// inside TLS when a BackendTLSPolicy applies (h2c then means HTTP/2 by ALPN).
// Protocols that need TLS are refused without a policy rather than spoken in clear.
func appProtocol(p *string, tls bool) (config.AppProtocol, bool) {
	if p == nil {
		return config.AppProtocolHTTP1, true
	}
	switch strings.ToLower(*p) {
	case "kubernetes.io/h2c":
		return config.AppProtocolH2C, true
	case "kubernetes.io/ws":
		return config.AppProtocolWebSocket, true
	case "kubernetes.io/wss":
		return config.AppProtocolWebSocket, tls
	case "https", "kubernetes.io/tls", "tls":
		return config.AppProtocolHTTP1, tls
	case "grpcs":
		return "", false
	default:
		return config.AppProtocolHTTP1, true
	}
}

// endpoints lists the addresses behind one Service port, from the Service's
// EndpointSlices, sorted by address. The slice port with the Service port's name gives
// the target port, as kube-proxy resolves it. Of endpoints with the same address, the
// first (in slice order) counts.
func (ix *index) endpoints(svc types.NamespacedName, port *corev1.ServicePort) []config.Endpoint {
	var out []config.Endpoint
	for _, slice := range ix.slicesByService[svc] {
		if slice.AddressType != discoveryv1.AddressTypeIPv4 && slice.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		target, ok := slicePort(slice, port)
		if !ok {
			continue
		}
		if out == nil {
			out = make([]config.Endpoint, 0, len(slice.Endpoints))
		}
		targetPort := strconv.Itoa(target)
		for i := range slice.Endpoints {
			if e, ok := ix.endpoint(&slice.Endpoints[i], targetPort); ok {
				out = append(out, e)
			}
		}
	}
	// A stable sort keeps equal addresses in slice order, so dropping all but the
	// first of each run keeps the first endpoint seen.
	slices.SortStableFunc(out, func(a, b config.Endpoint) int { return strings.Compare(a.Address, b.Address) })
	out = slices.CompactFunc(out, func(a, b config.Endpoint) bool { return a.Address == b.Address })
	if out == nil {
		out = []config.Endpoint{}
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
func (ix *index) endpoint(ep *discoveryv1.Endpoint, port string) (config.Endpoint, bool) {
	if len(ep.Addresses) == 0 {
		return config.Endpoint{}, false
	}
	raw := ep.Addresses[0]
	ip := net.ParseIP(raw)
	if ip == nil || ip.IsUnspecified() || (ip.IsLoopback() && !ix.opts.Standalone) {
		return config.Endpoint{}, false
	}
	host := raw
	if strings.Contains(raw, ":") {
		// IPv6 has several spellings of one address; dotted IPv4 that parses has
		// only the one it was written in.
		host = ip.String()
	}
	// Nil ready and nil serving both read as true, and nil terminating as false, as
	// the EndpointSlice API defines.
	out := config.Endpoint{
		Address:     net.JoinHostPort(host, port),
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
	for _, l := range listeners {
		for _, vh := range l.VirtualHosts {
			for _, r := range vh.Routes {
				markRuleBackends(used, r.Rules)
			}
		}
	}
	out := make([]config.Backend, 0, len(used))
	for _, name := range sortedKeys(used) {
		out = append(out, ix.backends[name])
	}
	return out
}

// markRuleBackends adds to used the names of the backends that the rules send to,
// through backendRefs or mirrors.
func markRuleBackends(used map[string]bool, rules []config.Rule) {
	markFilters := func(fs []config.Filter) {
		for _, f := range fs {
			if f.RequestMirror != nil && f.RequestMirror.Backend != "" {
				used[f.RequestMirror.Backend] = true
			}
		}
	}
	for _, rule := range rules {
		markFilters(rule.Filters)
		for _, b := range rule.Backends {
			if b.Backend != "" {
				used[b.Backend] = true
			}
			markFilters(b.Filters)
		}
	}
}
