package placement

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func allowing(gw *gwv1.Gateway, from gwv1.FromNamespaces, selector map[string]string) *gwv1.Gateway {
	gw.Spec.AllowedListeners = &gwv1.AllowedListeners{Namespaces: &gwv1.ListenerNamespaces{From: ptrTo(from)}}
	if selector != nil {
		gw.Spec.AllowedListeners.Namespaces.Selector = &metav1.LabelSelector{MatchLabels: selector}
	}
	return gw
}

func listenerSet(ns, name, gatewayNS, gateway string, ports ...int32) *gwv1.ListenerSet {
	ls := &gwv1.ListenerSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: gwv1.ListenerSetSpec{ParentRef: gwv1.ParentGatewayReference{
			Name: gwv1.ObjectName(gateway), Namespace: ptrTo(gwv1.Namespace(gatewayNS))}}}
	for _, p := range ports {
		ls.Spec.Listeners = append(ls.Spec.Listeners, gwv1.ListenerEntry{
			Name: "l", Port: gwv1.PortNumber(p), Protocol: gwv1.HTTPProtocolType})
	}
	return ls
}

// In Service mode the ports of the ListenerSets a Gateway allows get container ports
// and Service ports like the Gateway's own; those of ListenerSets it does not allow
// (other namespace, unselected namespace, or no allowedListeners) get none.
func TestPortsListenerSets(t *testing.T) {
	p := newPorts(t, 20000, 29999)
	state := &State{
		GatewayClasses: []*gwv1.GatewayClass{served()},
		Gateways: []*gwv1.Gateway{
			allowing(gateway("infra", "same", 1, 80), gwv1.NamespacesFromSame, nil),
			allowing(gateway("infra", "selector", 2, 80), gwv1.NamespacesFromSelector, map[string]string{"team": "yes"}),
			gateway("infra", "closed", 3, 80),
		},
		ListenerSets: []*gwv1.ListenerSet{
			listenerSet("infra", "a", "infra", "same", 80, 8080),
			listenerSet("other", "b", "infra", "same", 9000),
			listenerSet("team", "c", "infra", "selector", 8443),
			listenerSet("nope", "d", "infra", "selector", 7000),
			listenerSet("infra", "e", "infra", "closed", 8081),
		},
		Namespaces: []*corev1.Namespace{
			{ObjectMeta: metav1.ObjectMeta{Name: "team", Labels: map[string]string{"team": "yes"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "nope"}},
		},
	}
	res := p.Place(state)
	state.Services = apply(nil, res.Plan)
	res = p.Place(state)
	wantPorts(t, res, key("infra", "same"), map[int32]int32{80: 20000, 8080: 20001})
	wantPorts(t, res, key("infra", "selector"), map[int32]int32{80: 20002, 8443: 20003})
	wantPorts(t, res, key("infra", "closed"), map[int32]int32{80: 20004})
	if !res.Plan.Empty() {
		t.Fatalf("plan after the Services exist: %+v", res.Plan)
	}
}

func TestWithPorts(t *testing.T) {
	got := withPorts([]int32{80, 443}, []int32{8080, 80, 1})
	want := []int32{1, 80, 443, 8080}
	if len(got) != len(want) {
		t.Fatalf("withPorts = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("withPorts = %v, want %v", got, want)
		}
	}
}
