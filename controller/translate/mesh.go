package translate

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// East-west traffic follows the Gateway API mesh pattern ("GAMMA"): an HTTPRoute
// whose parentRef is a Service (group "" or "core", kind Service) applies to the
// requests that Pods send to that Service, on the port the parentRef names (by port
// number, or by port name in sectionName) or on every port. Only producer routes are
// served: routes in the Service's own namespace, which apply to every caller. A
// consumer route (in another namespace, for its own callers only) is refused, since
// a node replica does not tell callers apart by namespace. Route hostnames do not
// apply east-west: the destination already chose the Service.
//
// A Service port that no accepted route is attached to gets a default route instead,
// named "<namespace>/<service>", that sends everything to the port's own backend and
// retries connect failures only (see defaultMeshRetry); so does a port whose only
// routes are refused, so that a bad route never cuts a Service off. The port's
// backend is named and built exactly as a backendRef to it would be. A port without
// endpoints keeps naming its backend (which then has none), so that endpoints coming
// and going never change the mesh routes. Backend is empty only when the port cannot
// be a backend at all (an appProtocol that needs a BackendTLSPolicy, or an unusable
// BackendTLSPolicy); its default route then answers 500 with the reason.

// The default resilience of east-west traffic. Retries of connect failures are
// always safe, since the request never reached the backend, and are cheap, so a
// Service without a route or policy still rides out an endpoint that just went away.
// The outlier figures are those a TrafficPolicy's outlierDetection defaults to, with
// gateway errors (502, 503, 504, connect failures and timeouts) as the signal, so
// that an application's own 500s never eject its endpoints.
const (
	meshRetryAttempts          = 2
	meshRetryBackoff           = 25 * time.Millisecond
	meshRetryMaxBackoff        = 100 * time.Millisecond
	meshOutlierGatewayErrors   = 5
	meshOutlierInterval        = defaultOutlierInterval
	meshOutlierBaseEjection    = defaultOutlierBaseEjection
	meshOutlierMaxEjectionRate = defaultOutlierMaxEjection
	defaultClusterDomain       = "cluster.local"
	coreGroupAlias             = "core"
)

// defaultMeshRetry is the retry policy of a default mesh route: two retries of
// connect failures only, 25ms apart and then 50ms.
func defaultMeshRetry() *config.Retry {
	return &config.Retry{
		Attempts:   meshRetryAttempts,
		Backoff:    config.Duration(meshRetryBackoff),
		MaxBackoff: config.Duration(meshRetryMaxBackoff),
		On:         []config.RetryCondition{config.RetryConnectFailure},
	}
}

// defaultMeshOutlierDetection is Mesh.DefaultOutlierDetection: five gateway errors
// in a row eject an endpoint for 30s (longer on repeated ejections), never more than
// half of a backend's endpoints at once.
func defaultMeshOutlierDetection() *config.OutlierDetection {
	return &config.OutlierDetection{
		ConsecutiveGatewayErrors: meshOutlierGatewayErrors,
		Interval:                 config.Duration(meshOutlierInterval),
		BaseEjectionTime:         config.Duration(meshOutlierBaseEjection),
		MaxEjectionPercent:       meshOutlierMaxEjectionRate,
	}
}

// meshState is the east-west side of one translation: the Services that can be
// destinations, sorted by namespace and name, with the routes attached to each port.
type meshState struct {
	services []*meshService
	byKey    map[types.NamespacedName]*meshService
	// named holds the ports that some HTTPRoute's parentRef attaches to, whether or
	// not the route turns out valid.
	named map[backendOrigin]bool
}

// meshService is one Service as a destination.
type meshService struct {
	key        types.NamespacedName
	clusterIPs []string
	ports      []*meshPort
}

// meshPort is one TCP port of a Service and the mesh routes attached to it.
type meshPort struct {
	name string
	port int32
	// routes are the accepted routes, one entry per route however many parentRefs
	// of it name the port; attached holds their names.
	routes   []config.Route
	attached map[string]bool
}

// newMeshState lists every Service but ExternalName ones (and those without a
// namespace or name, which only files can hold); services are sorted by namespace
// and name, one per name. A cluster IP names one Service: should two claim it (the
// API server never allows that, files may), the first by namespace and name keeps it.
func newMeshState(services []*corev1.Service) *meshState {
	m := &meshState{byKey: make(map[types.NamespacedName]*meshService, len(services))}
	claimed := map[string]bool{}
	for _, svc := range services {
		if svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Namespace == "" || svc.Name == "" {
			continue
		}
		ms := &meshService{key: types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}, ports: meshPorts(svc)}
		for _, ip := range serviceClusterIPs(svc) {
			if !claimed[ip] {
				claimed[ip] = true
				ms.clusterIPs = append(ms.clusterIPs, ip)
			}
		}
		m.services = append(m.services, ms)
		m.byKey[ms.key] = ms
	}
	return m
}

// noteNamedPorts records the ports that the routes' parentRefs attach to, before
// the routes are compiled, for the Rollouts of default routes.
func (m *meshState) noteNamedPorts(ix *index) {
	m.named = map[backendOrigin]bool{}
	for _, route := range ix.routes {
		for _, ref := range route.Spec.ParentRefs {
			if !isServiceParent(ref) {
				continue
			}
			if ms, ports, reason, _ := m.matchPorts(ix, route, ref); reason == "" {
				for _, p := range ports {
					m.named[backendOrigin{service: ms.key, port: p.port}] = true
				}
			}
		}
	}
}

// serviceClusterIPs lists a Service's cluster IPs in canonical form: none for a
// headless Service ("None"), and none that does not parse.
func serviceClusterIPs(svc *corev1.Service) []string {
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	var out []string
	for _, raw := range ips {
		ip := net.ParseIP(raw)
		if ip == nil || ip.IsUnspecified() {
			continue
		}
		if s := ip.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// meshPorts lists a Service's TCP ports in range, sorted by number; of ports with
// the same number the first counts.
func meshPorts(svc *corev1.Service) []*meshPort {
	out := make([]*meshPort, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		if (p.Protocol != "" && p.Protocol != corev1.ProtocolTCP) || p.Port < 1 || p.Port > 65535 {
			continue
		}
		if slices.ContainsFunc(out, func(q *meshPort) bool { return q.port == p.Port }) {
			continue
		}
		out = append(out, &meshPort{name: p.Name, port: p.Port})
	}
	slices.SortFunc(out, func(a, b *meshPort) int { return int(a.port) - int(b.port) })
	return out
}

// hasDefaultRoute reports whether a Service port is served east-west with its
// default route: no HTTPRoute attaches to it. (Should every route that names the
// port be refused, the port gets its default route all the same, but no Rollout
// shifts it; see rolloutRules.)
func (m *meshState) hasDefaultRoute(origin backendOrigin) bool {
	ms := m.byKey[origin.service]
	return ms != nil && !m.named[origin] && slices.ContainsFunc(ms.ports, func(p *meshPort) bool { return p.port == origin.port })
}

// isServiceParent reports whether a parentRef names a Service (group "" or "core").
func isServiceParent(ref gwv1.ParentReference) bool {
	group := str(ref.Group, gatewayGroup)
	return (group == coreGroup || group == coreGroupAlias) && str(ref.Kind, kindGateway) == kindService
}

// attachMeshParent attaches the route to the ports of the Service a parentRef names
// and renders that parent's status entry.
func (ix *index) attachMeshParent(route *gwv1.HTTPRoute, ref gwv1.ParentReference, compiled *compiledRoute) gwv1.RouteParentStatus {
	conds := newConditionSet(route.Generation, ix.opts.Now)
	accepted := string(gwv1.RouteConditionAccepted)
	ms, ports, reason, detail := ix.mesh.matchPorts(ix, route, ref)
	switch {
	case reason != "":
		conds.set(accepted, false, string(reason), detail)
	case compiled.invalidReason != "":
		conds.set(accepted, false, string(compiled.invalidReason), compiled.invalidDetail)
	default:
		conds.set(accepted, true, string(gwv1.RouteReasonAccepted), "The route is accepted.")
		rules := ix.traffic.rulesFor(serviceParent(ms.key), route, compiled, compiled.rules)
		name := route.Namespace + "/" + route.Name
		for _, p := range ports {
			if attachOnce(&p.attached, name) {
				p.routes = append(p.routes, config.Route{Name: name, CreationTimestamp: route.CreationTimestamp.Time.UTC(), Rules: rules})
			}
		}
	}
	return ix.routeParentStatus(ref, conds, compiled)
}

// matchPorts finds the Service and the ports a parentRef attaches the route to, or
// says why there are none.
func (m *meshState) matchPorts(ix *index, route *gwv1.HTTPRoute, ref gwv1.ParentReference) (*meshService, []*meshPort, gwv1.RouteConditionReason, string) {
	key := types.NamespacedName{Namespace: str(ref.Namespace, route.Namespace), Name: string(ref.Name)}
	if key.Namespace != route.Namespace {
		return nil, nil, gwv1.RouteReasonUnsupportedValue, fmt.Sprintf(
			"Service %s is in another namespace: consumer routes are not supported; an HTTPRoute in namespace %q (a producer route) applies to every caller of the Service.",
			key, key.Namespace)
	}
	ms := m.byKey[key]
	if ms == nil {
		if svc := ix.services[key]; svc != nil && svc.Spec.Type == corev1.ServiceTypeExternalName {
			return nil, nil, gwv1.RouteReasonNoMatchingParent, fmt.Sprintf("Service %s is of type ExternalName, which is not served east-west.", key)
		}
		return nil, nil, gwv1.RouteReasonNoMatchingParent, fmt.Sprintf("Service %s does not exist.", key)
	}
	var out []*meshPort
	for _, p := range ms.ports {
		if ref.SectionName != nil && string(*ref.SectionName) != p.name {
			continue
		}
		if ref.Port != nil && int32(*ref.Port) != p.port {
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, nil, gwv1.RouteReasonNoMatchingParent, fmt.Sprintf("Service %s has no TCP port%s.", key, describeServicePort(ref))
	}
	return ms, out, "", ""
}

// describeServicePort renders the port number and name a parentRef asks for, such
// as ` 8080 named "grpc"`.
func describeServicePort(ref gwv1.ParentReference) string {
	var b strings.Builder
	if ref.Port != nil {
		fmt.Fprintf(&b, " %d", *ref.Port)
	}
	if ref.SectionName != nil {
		fmt.Fprintf(&b, " named %q", *ref.SectionName)
	}
	return b.String()
}

// clusterDomain is Options.ClusterDomain in canonical form: lower case, without a
// trailing dot, and the default when it is empty or not a DNS name (the controller's
// flag is checked before it gets here).
func (ix *index) clusterDomain() string {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(ix.opts.ClusterDomain)), ".")
	if d == "" || len(validation.IsDNS1123Subdomain(d)) > 0 {
		return defaultClusterDomain
	}
	return d
}
