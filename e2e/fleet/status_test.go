package fleet_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// listenerCondition returns the condition typ of the Gateway's listener, or nil.
func (e *env) listenerCondition(ns, gateway, listener, typ string) *metav1.Condition {
	g, err := e.gw.GatewayV1().Gateways(ns).Get(context.Background(), gateway, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	for _, l := range g.Status.Listeners {
		if string(l.Name) != listener {
			continue
		}
		for i := range l.Conditions {
			if l.Conditions[i].Type == typ && l.Conditions[i].ObservedGeneration == g.Generation {
				return &l.Conditions[i]
			}
		}
	}
	return nil
}

// TestStatusReadBack drives the route and listener conditions the translator
// produces through a real controller and reads each back from the API server, fixing
// a cross-namespace reference with a ReferenceGrant on the way.
func TestStatusReadBack(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createClass()
	e.createApp("default", "web", 1)
	must(t, create(e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{})))
	e.startController("controller-a")
	e.startGateway("node-a")
	e.createGateway("default", "gw", "", 80)
	addr := e.gatewayAddress("default", "gw") + ":80"
	private := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "private", Namespace: "default"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "switchyard", Listeners: []gwv1.Listener{
			{Name: "http", Protocol: gwv1.HTTPProtocolType, Port: 8080, Hostname: ptr(gwv1.Hostname("*.example.com"))},
			{Name: "tcp", Protocol: gwv1.TCPProtocolType, Port: 9000},
			{Name: "https", Protocol: gwv1.HTTPSProtocolType, Port: 8443, Hostname: ptr(gwv1.Hostname("*.example.com")), TLS: &gwv1.ListenerTLSConfig{
				CertificateRefs: []gwv1.SecretObjectReference{{Name: "no-such-secret"}}}},
		}}}
	must(t, create(e.gw.GatewayV1().Gateways("default").Create(ctx, private, metav1.CreateOptions{})))

	// A backend that does not exist: ResolvedRefs=False, and its share answers 500.
	e.createRoute(route("default", "missing", "default", "gw", "/missing", "nope"))
	e.waitRouteCondition("default", "missing", "gw", "ResolvedRefs", metav1.ConditionFalse, string(gwv1.RouteReasonBackendNotFound))
	e.waitRouteCondition("default", "missing", "gw", "Accepted", metav1.ConditionTrue, string(gwv1.RouteReasonAccepted))
	waitStatus(t, addr, "", "/missing", http.StatusInternalServerError)

	// A backend of a kind we do not serve.
	badKind := route("default", "bad-kind", "default", "gw", "/bad-kind", "web")
	badKind.Spec.Rules[0].BackendRefs[0].Kind = ptr(gwv1.Kind("ConfigMap"))
	e.createRoute(badKind)
	e.waitRouteCondition("default", "bad-kind", "gw", "ResolvedRefs", metav1.ConditionFalse, string(gwv1.RouteReasonInvalidKind))

	// A cross-namespace backend without a ReferenceGrant, then with one.
	cross := route("team", "cross", "default", "gw", "/cross", "web")
	cross.Spec.Rules[0].BackendRefs[0].Namespace = ptr(gwv1.Namespace("default"))
	e.createRoute(cross)
	e.waitRouteCondition("team", "cross", "gw", "ResolvedRefs", metav1.ConditionFalse, string(gwv1.RouteReasonRefNotPermitted))
	waitStatus(t, addr, "", "/cross", http.StatusInternalServerError)
	must(t, create(e.gw.GatewayV1beta1().ReferenceGrants("default").Create(ctx, &gwv1beta1.ReferenceGrant{
		ObjectMeta: metav1.ObjectMeta{Name: "team-routes", Namespace: "default"},
		Spec: gwv1beta1.ReferenceGrantSpec{
			From: []gwv1beta1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: "team"}},
			To:   []gwv1beta1.ReferenceGrantTo{{Kind: "Service"}},
		}}, metav1.CreateOptions{})))
	resolved := e.waitRouteCondition("team", "cross", "gw", "ResolvedRefs", metav1.ConditionTrue, string(gwv1.RouteReasonResolvedRefs))
	waitStatus(t, addr, "", "/cross", http.StatusOK)

	// Parent problems: no such listener, a hostname the listener does not serve, and a
	// listener that admits only routes of its own namespace.
	noSection := route("default", "no-section", "default", "gw", "/", "web")
	noSection.Spec.ParentRefs[0].SectionName = ptr(gwv1.SectionName("nope"))
	e.createRoute(noSection)
	e.waitRouteCondition("default", "no-section", "gw", "Accepted", metav1.ConditionFalse, string(gwv1.RouteReasonNoMatchingParent))
	otherHost := route("default", "other-host", "default", "private", "/", "web")
	otherHost.Spec.Hostnames = []gwv1.Hostname{"www.example.org"}
	e.createRoute(otherHost)
	e.waitRouteCondition("default", "other-host", "private", "Accepted", metav1.ConditionFalse, string(gwv1.RouteReasonNoMatchingListenerHostname))
	e.createRoute(route("team", "foreign", "default", "private", "/", "web"))
	e.waitRouteCondition("team", "foreign", "private", "Accepted", metav1.ConditionFalse, string(gwv1.RouteReasonNotAllowedByListeners))

	// Listener problems of the Gateway "private".
	waitFor(t, 30*time.Second, "listener conditions of Gateway private", func() bool {
		tcp := e.listenerCondition("default", "private", "tcp", "Accepted")
		tls := e.listenerCondition("default", "private", "https", "ResolvedRefs")
		return tcp != nil && tcp.Status == metav1.ConditionFalse && tcp.Reason == string(gwv1.ListenerReasonUnsupportedProtocol) &&
			tls != nil && tls.Status == metav1.ConditionFalse && tls.Reason == string(gwv1.ListenerReasonInvalidCertificateRef)
	})

	// lastTransitionTime moves only when a condition's status does: the many
	// translations since the grant left the cross route's condition as it was.
	time.Sleep(1100 * time.Millisecond) // condition times have one-second resolution
	e.createRoute(route("default", "later", "default", "gw", "/later", "web"))
	waitStatus(t, addr, "", "/later", http.StatusOK)
	e.waitRouteCondition("default", "later", "gw", "Accepted", metav1.ConditionTrue, string(gwv1.RouteReasonAccepted))
	again := e.waitRouteCondition("team", "cross", "gw", "ResolvedRefs", metav1.ConditionTrue, string(gwv1.RouteReasonResolvedRefs))
	if !again.LastTransitionTime.Equal(&resolved.LastTransitionTime) {
		t.Errorf("ResolvedRefs lastTransitionTime moved from %v to %v without a status change", resolved.LastTransitionTime, again.LastTransitionTime)
	}
}
