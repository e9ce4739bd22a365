package placement

import (
	"net/netip"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func served() *gwv1.GatewayClass {
	return &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "switchyard"},
		Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}}
}

// gateway makes a Gateway of the served class, created age days after epoch, with
// one HTTP listener per port.
func gateway(ns, name string, age int, ports ...int32) *gwv1.Gateway {
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name),
		CreationTimestamp: metav1.NewTime(epoch.AddDate(0, 0, age)),
	}, Spec: gwv1.GatewaySpec{GatewayClassName: "switchyard"}}
	for _, p := range ports {
		gw.Spec.Listeners = append(gw.Spec.Listeners, gwv1.Listener{
			Name: gwv1.SectionName("l" + strconv.Itoa(int(p))), Port: gwv1.PortNumber(p), Protocol: gwv1.HTTPProtocolType})
	}
	return gw
}

func key(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

func withRequest(gw *gwv1.Gateway, typ gwv1.AddressType, values ...string) *gwv1.Gateway {
	for _, v := range values {
		gw.Spec.Addresses = append(gw.Spec.Addresses, gwv1.GatewaySpecAddress{Type: ptrTo(typ), Value: v})
	}
	return gw
}

func withStatus(gw *gwv1.Gateway, values ...string) *gwv1.Gateway {
	for _, v := range values {
		gw.Status.Addresses = append(gw.Status.Addresses, gwv1.GatewayStatusAddress{Type: ptrTo(gwv1.IPAddressType), Value: v})
	}
	return gw
}

func wantBind(t *testing.T, res *Result, k types.NamespacedName, addr string) {
	t.Helper()
	p, ok := res.Placements[k]
	if !ok {
		t.Fatalf("%s has no placement", k)
	}
	if p.Problem != nil || p.BindAddress != addr {
		t.Fatalf("%s placed %+v (problem %+v), want bind address %s", k, p, p.Problem, addr)
	}
	if len(p.StatusAddresses) != 1 || p.StatusAddresses[0].Value != addr {
		t.Fatalf("%s status addresses %+v, want %s", k, p.StatusAddresses, addr)
	}
}

func wantProblem(t *testing.T, res *Result, k types.NamespacedName, notAccepted, programmed gwv1.GatewayConditionReason) *translate.PlacementProblem {
	t.Helper()
	p, ok := res.Placements[k]
	if !ok || p.Problem == nil {
		t.Fatalf("%s placed %+v, want a problem %s/%s", k, p, notAccepted, programmed)
	}
	if p.Problem.NotAcceptedReason != notAccepted || p.Problem.ProgrammedReason != programmed || p.Problem.Message == "" {
		t.Fatalf("%s problem %+v, want %q/%q with a message", k, p.Problem, notAccepted, programmed)
	}
	if p.BindAddress != "" || p.ContainerPorts != nil {
		t.Fatalf("%s has a problem but is still placed: %+v", k, p)
	}
	return p.Problem
}

// apply simulates the API server carrying out a plan on the live Services: created
// Services get a cluster IP and, for external types, node ports, as defaulting does.
func apply(live []*corev1.Service, plan ServicePlan) []*corev1.Service {
	byKey := map[types.NamespacedName]*corev1.Service{}
	for _, s := range live {
		byKey[keyOf(s)] = s
	}
	for _, s := range plan.Delete {
		delete(byKey, keyOf(s))
	}
	for _, s := range plan.Update {
		byKey[keyOf(s)] = s.DeepCopy()
	}
	for i, s := range plan.Create {
		c := s.DeepCopy()
		c.UID = types.UID("svc-" + c.Name)
		c.ResourceVersion = "1"
		if c.Spec.ClusterIP != corev1.ClusterIPNone {
			c.Spec.ClusterIP = "10.96.0." + strconv.Itoa(10+i)
		}
		c.Spec.ClusterIPs = []string{c.Spec.ClusterIP}
		c.Spec.SessionAffinity = corev1.ServiceAffinityNone
		for j := range c.Spec.Ports {
			if c.Spec.Type != corev1.ServiceTypeClusterIP {
				c.Spec.Ports[j].NodePort = 30000 + int32(j)
			}
		}
		byKey[keyOf(c)] = c
	}
	out := make([]*corev1.Service, 0, len(byKey))
	for _, s := range byKey {
		out = append(out, s)
	}
	sortByName(out)
	return out
}

// applySlices simulates the API server carrying out the EndpointSlice part of a plan.
func applySlices(live []*discoveryv1.EndpointSlice, plan ServicePlan) []*discoveryv1.EndpointSlice {
	byKey := map[types.NamespacedName]*discoveryv1.EndpointSlice{}
	for _, es := range live {
		byKey[keyOf(es)] = es
	}
	for _, es := range plan.DeleteSlices {
		delete(byKey, keyOf(es))
	}
	for _, es := range plan.UpdateSlices {
		byKey[keyOf(es)] = es.DeepCopy()
	}
	for _, es := range plan.CreateSlices {
		c := es.DeepCopy()
		c.UID = types.UID("es-" + c.Name)
		c.ResourceVersion = "1"
		byKey[keyOf(c)] = c
	}
	out := make([]*discoveryv1.EndpointSlice, 0, len(byKey))
	for _, es := range byKey {
		out = append(out, es)
	}
	sortByName(out)
	return out
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }
