package translate

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// syntheticShape sizes a generated cluster. The generator is deterministic: equal
// shapes give equal objects.
type syntheticShape struct {
	// Namespaces is the number of application namespaces; even-numbered ones are
	// labelled as exposed over HTTPS and grant references from the namespace before
	// them.
	Namespaces int
	// Gateways is the number of Gateways, all in syntheticInfraNamespace.
	Gateways int
	// RoutesPerNamespace is the number of HTTPRoutes in each application namespace.
	RoutesPerNamespace int
	// ServicesPerNamespace is the number of Services in each application namespace.
	ServicesPerNamespace int
	// SlicesPerService and EndpointsPerSlice size each Service's EndpointSlices.
	SlicesPerService  int
	EndpointsPerSlice int
}

// cluster5k is the size the controller is expected to re-translate in well under a
// second: 5,000 HTTPRoutes and 20,000 endpoints.
var cluster5k = syntheticShape{
	Namespaces:           50,
	Gateways:             5,
	RoutesPerNamespace:   100,
	ServicesPerNamespace: 50,
	SlicesPerService:     2,
	EndpointsPerSlice:    4,
}

const (
	syntheticInfraNamespace = "infra"
	syntheticClass          = "switchyard"
	// syntheticExposedLabel marks the namespaces whose routes the HTTPS listeners
	// take (through an allowedRoutes namespace selector).
	syntheticExposedLabel = "switchyard.dev/exposed"
)

// syntheticExpectation is what translating a generated cluster must give.
type syntheticExpectation struct {
	// RouteEntries is the number of routes on all virtual hosts of the snapshot.
	RouteEntries int
	// AttachedRoutes is the attachedRoutes count of each listener, by
	// "<gateway>/<listener>".
	AttachedRoutes map[string]int32
	// UnresolvedRoutes are the routes whose ResolvedRefs condition must be False
	// (their cross-namespace reference has no ReferenceGrant).
	UnresolvedRoutes map[types.NamespacedName]bool
	// Backends and Endpoints count the snapshot's backends and their endpoints.
	Backends, Endpoints int
}

// syntheticCluster generates a realistic cluster of the given shape: Gateways with
// HTTP and HTTPS listeners on wildcard hostnames, routes in many namespaces with
// prefix, exact, header and method matches, header, rewrite and redirect filters,
// timeouts, weighted and cross-namespace backends, and Services backed by
// EndpointSlices. It also returns what translation must make of it.
func syntheticCluster(tb testing.TB, shape syntheticShape) (*Input, syntheticExpectation) {
	tb.Helper()
	certPEM, err := os.ReadFile(filepath.Join("testdata", "certs", "example.crt"))
	if err != nil {
		tb.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join("testdata", "certs", "example.key"))
	if err != nil {
		tb.Fatal(err)
	}
	in := &Input{
		GatewayClasses: []*gwv1.GatewayClass{{
			ObjectMeta: metav1.ObjectMeta{Name: syntheticClass, Generation: 1},
			Spec:       gwv1.GatewayClassSpec{ControllerName: ControllerName},
		}},
		Namespaces: []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: syntheticInfraNamespace}}},
		Options:    Options{Now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
	}
	exp := syntheticExpectation{AttachedRoutes: map[string]int32{}, UnresolvedRoutes: map[types.NamespacedName]bool{}}
	for g := range shape.Gateways {
		in.Gateways = append(in.Gateways, syntheticGateway(g))
		in.Secrets = append(in.Secrets, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: syntheticInfraNamespace, Name: fmt.Sprintf("gw%d-cert", g)},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM},
		})
	}
	for n := range shape.Namespaces {
		ns := syntheticNamespace(n)
		labels := map[string]string{"team": fmt.Sprintf("team-%d", n%7)}
		if n%2 == 0 {
			labels[syntheticExposedLabel] = "true"
			in.ReferenceGrants = append(in.ReferenceGrants, syntheticGrant(ns, syntheticNamespace((n+shape.Namespaces-1)%shape.Namespaces)))
		}
		in.Namespaces = append(in.Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}})
		for s := range shape.ServicesPerNamespace {
			in.Services = append(in.Services, syntheticService(ns, s))
			for k := range shape.SlicesPerService {
				in.EndpointSlices = append(in.EndpointSlices, syntheticSlice(ns, n, s, k, shape.EndpointsPerSlice))
			}
		}
		for k := range shape.RoutesPerNamespace {
			route, https := syntheticRoute(shape, n, k)
			in.HTTPRoutes = append(in.HTTPRoutes, route)
			gw := string(route.Spec.ParentRefs[0].Name)
			exp.RouteEntries++
			exp.AttachedRoutes[gw+"/http"]++
			if https {
				exp.RouteEntries++
				exp.AttachedRoutes[gw+"/https"]++
			}
			if len(route.Spec.Rules) == 3 && n%2 == 0 {
				// The third rule refers to the next namespace, which grants nothing.
				exp.UnresolvedRoutes[types.NamespacedName{Namespace: ns, Name: route.Name}] = true
			}
		}
	}
	exp.Backends = shape.Namespaces * shape.ServicesPerNamespace
	exp.Endpoints = exp.Backends * shape.SlicesPerService * shape.EndpointsPerSlice
	return in, exp
}

func syntheticNamespace(n int) string { return fmt.Sprintf("team-%02d", n) }

// syntheticGateway has an HTTP listener open to every namespace, an HTTPS listener
// open to the exposed namespaces, and an HTTP admin listener for its own namespace,
// all on the Gateway's own address.
func syntheticGateway(g int) *gwv1.Gateway {
	wildcard := gwv1.Hostname(fmt.Sprintf("*.gw%d.example.com", g))
	admin := gwv1.Hostname(fmt.Sprintf("admin.gw%d.example.com", g))
	all, same, selector := gwv1.NamespacesFromAll, gwv1.NamespacesFromSame, gwv1.NamespacesFromSelector
	return &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: syntheticInfraNamespace, Name: fmt.Sprintf("gw%d", g), Generation: 3,
			CreationTimestamp: metav1.NewTime(time.Date(2024, 6, 1, 0, g, 0, 0, time.UTC)),
		},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: syntheticClass,
			Addresses:        []gwv1.GatewaySpecAddress{{Value: fmt.Sprintf("10.1.0.%d", g+1)}},
			Listeners: []gwv1.Listener{
				{
					Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType, Hostname: &wildcard,
					AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &all}},
				},
				{
					Name: "https", Port: 443, Protocol: gwv1.HTTPSProtocolType, Hostname: &wildcard,
					TLS: &gwv1.ListenerTLSConfig{CertificateRefs: []gwv1.SecretObjectReference{{Name: gwv1.ObjectName(fmt.Sprintf("gw%d-cert", g))}}},
					AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{
						From:     &selector,
						Selector: &metav1.LabelSelector{MatchLabels: map[string]string{syntheticExposedLabel: "true"}},
					}},
				},
				{
					Name: "admin", Port: 80, Protocol: gwv1.HTTPProtocolType, Hostname: &admin,
					AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &same}},
				},
			},
		},
	}
}

// syntheticGrant lets HTTPRoutes in from refer to every Service in ns.
func syntheticGrant(ns, from string) *gwv1.ReferenceGrant {
	return &gwv1.ReferenceGrant{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "routes-from-" + from},
		Spec: gwv1.ReferenceGrantSpec{
			From: []gwv1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: gwv1.Namespace(from)}},
			To:   []gwv1.ReferenceGrantTo{{Group: "", Kind: "Service"}},
		},
	}
}

func syntheticServiceName(s int) string { return fmt.Sprintf("svc-%02d", s) }

func syntheticService(ns string, s int) *corev1.Service {
	port := corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}
	if s%10 == 9 {
		port.AppProtocol = ptrTo("kubernetes.io/h2c")
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: syntheticServiceName(s)},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{port}},
	}
}

// syntheticSlice is the k-th EndpointSlice of a Service; its endpoint addresses are
// unique across the cluster and a few endpoints are not ready or terminating.
func syntheticSlice(ns string, n, s, k, size int) *discoveryv1.EndpointSlice {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: fmt.Sprintf("%s-%d", syntheticServiceName(s), k),
			Labels: map[string]string{discoveryv1.LabelServiceName: syntheticServiceName(s)},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("http"), Port: ptrTo(int32(8080)), Protocol: ptrTo(corev1.ProtocolTCP)}},
	}
	for e := range size {
		ep := discoveryv1.Endpoint{
			Addresses: []string{fmt.Sprintf("10.%d.%d.%d", 100+n, s, k*size+e+1)},
			Zone:      ptrTo(fmt.Sprintf("zone-%c", 'a'+rune(e%3))),
			NodeName:  ptrTo(fmt.Sprintf("node-%d", (n*7+s+e)%40)),
		}
		if e == size-1 && s%5 == 0 {
			ep.Conditions = discoveryv1.EndpointConditions{Ready: ptrTo(false), Serving: ptrTo(true), Terminating: ptrTo(true)}
		}
		slice.Endpoints = append(slice.Endpoints, ep)
	}
	return slice
}

// syntheticRoute is the k-th route of namespace n. It reports whether the route
// also attaches to its Gateway's HTTPS listener.
func syntheticRoute(shape syntheticShape, n, k int) (*gwv1.HTTPRoute, bool) {
	ns := syntheticNamespace(n)
	g := (n*shape.RoutesPerNamespace + k) % shape.Gateways
	ref := gwv1.ParentReference{Namespace: ptrTo(gwv1.Namespace(syntheticInfraNamespace)), Name: gwv1.ObjectName(fmt.Sprintf("gw%d", g))}
	httpOnly := k%7 == 3
	if httpOnly {
		ref.SectionName = ptrTo(gwv1.SectionName("http"))
	}
	route := &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: fmt.Sprintf("route-%03d", k), Generation: int64(1 + k%4),
			CreationTimestamp: metav1.NewTime(time.Date(2024, 7, 1, 0, 0, n*shape.RoutesPerNamespace+k, 0, time.UTC)),
		},
		Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{ref}}},
	}
	if k%10 != 0 {
		// Every tenth route has no hostnames and takes whatever its listeners accept.
		route.Spec.Hostnames = []gwv1.Hostname{gwv1.Hostname(fmt.Sprintf("app-%03d.%s.gw%d.example.com", k, ns, g))}
		if k%4 == 1 {
			route.Spec.Hostnames = append(route.Spec.Hostnames, gwv1.Hostname(fmt.Sprintf("*.app-%03d.gw%d.example.com", k, g)))
		}
	}
	services := shape.ServicesPerNamespace
	for r := range 1 + k%3 {
		route.Spec.Rules = append(route.Spec.Rules, syntheticRule(shape, n, k, r, services))
	}
	return route, !httpOnly && n%2 == 0
}

// syntheticRule is rule r of route k in namespace n: a prefix API rule with a header
// match, an exact health rule split over two Services, or a static-content rule that
// sends part of its traffic to a Service in the next namespace.
func syntheticRule(shape syntheticShape, n, k, r, services int) gwv1.HTTPRouteRule {
	svc := func(s int) gwv1.HTTPBackendRef {
		return gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
			Name: gwv1.ObjectName(syntheticServiceName(s % services)), Port: ptrTo(gwv1.PortNumber(80)),
		}}}
	}
	prefix, exact := gwv1.PathMatchPathPrefix, gwv1.PathMatchExact
	switch r {
	case 0:
		rule := gwv1.HTTPRouteRule{
			Matches: []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: &prefix, Value: ptrTo(fmt.Sprintf("/api/v%d", 1+k%3))}}},
			Filters: []gwv1.HTTPRouteFilter{{
				Type: gwv1.HTTPRouteFilterRequestHeaderModifier,
				RequestHeaderModifier: &gwv1.HTTPHeaderFilter{
					Set:    []gwv1.HTTPHeader{{Name: "X-Route", Value: fmt.Sprintf("%d-%d", n, k)}},
					Remove: []string{"X-Debug"},
				},
			}},
			BackendRefs: []gwv1.HTTPBackendRef{svc(k)},
		}
		if k%2 == 0 {
			rule.Matches[0].Headers = []gwv1.HTTPHeaderMatch{{Name: "X-Tenant", Value: fmt.Sprintf("tenant-%d", k%13)}}
		}
		if k%5 == 0 {
			rule.Timeouts = &gwv1.HTTPRouteTimeouts{Request: ptrTo(gwv1.Duration("10s")), BackendRequest: ptrTo(gwv1.Duration("2s"))}
		}
		return rule
	case 1:
		heavy, light := svc(k+1), svc(k+2)
		heavy.Weight, light.Weight = ptrTo(int32(90)), ptrTo(int32(10))
		return gwv1.HTTPRouteRule{
			Name:        ptrTo(gwv1.SectionName("health")),
			Matches:     []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: &exact, Value: ptrTo("/healthz")}, Method: ptrTo(gwv1.HTTPMethodGet)}},
			BackendRefs: []gwv1.HTTPBackendRef{heavy, light},
		}
	default:
		remote := svc(k + 3)
		remote.Namespace = ptrTo(gwv1.Namespace(syntheticNamespace((n + 1) % shape.Namespaces)))
		remote.Weight = ptrTo(int32(1))
		local := svc(k + 3)
		local.Weight = ptrTo(int32(3))
		return gwv1.HTTPRouteRule{
			Matches: []gwv1.HTTPRouteMatch{
				{Path: &gwv1.HTTPPathMatch{Type: &prefix, Value: ptrTo("/static")}},
				{Path: &gwv1.HTTPPathMatch{Type: &prefix, Value: ptrTo("/assets")}},
			},
			Filters: []gwv1.HTTPRouteFilter{
				{
					Type:       gwv1.HTTPRouteFilterURLRewrite,
					URLRewrite: &gwv1.HTTPURLRewriteFilter{Path: &gwv1.HTTPPathModifier{Type: gwv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptrTo("/content")}},
				},
				{
					Type:                   gwv1.HTTPRouteFilterResponseHeaderModifier,
					ResponseHeaderModifier: &gwv1.HTTPHeaderFilter{Add: []gwv1.HTTPHeader{{Name: "Cache-Control", Value: "max-age=300"}}},
				},
			},
			BackendRefs: []gwv1.HTTPBackendRef{local, remote},
		}
	}
}
