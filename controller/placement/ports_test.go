package placement

import (
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

var edgeSelector = map[string]string{"app.kubernetes.io/name": "switchyard", "app.kubernetes.io/component": "edge"}

func newPorts(t *testing.T, min, max int32) *PortAllocator {
	t.Helper()
	p, err := NewPortAllocator(PortConfig{MinPort: min, MaxPort: max, Selector: edgeSelector})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func wantPorts(t *testing.T, res *Result, k types.NamespacedName, want map[int32]int32) {
	t.Helper()
	p := res.Placements[k]
	if p.Problem != nil {
		t.Fatalf("%s has problem %+v, want ports %v", k, p.Problem, want)
	}
	if len(p.ContainerPorts) != len(want) {
		t.Fatalf("%s ports %v, want %v", k, p.ContainerPorts, want)
	}
	for lp, cp := range want {
		if p.ContainerPorts[lp] != cp {
			t.Fatalf("%s ports %v, want %v", k, p.ContainerPorts, want)
		}
	}
	if p.BindAddress != "" || len(p.StatusAddresses) == 0 {
		t.Fatalf("%s placement %+v, want all interfaces and status addresses", k, p)
	}
}

// Two Gateways on port 80 get distinct container ports and one Service each; once the
// Services exist the Gateways are served, and the plan is empty (no update loop).
func TestPortsTwoGatewaysSamePort(t *testing.T) {
	p := newPorts(t, 20000, 29999)
	state := &State{GatewayClasses: []*gwv1.GatewayClass{served()}, Gateways: []*gwv1.Gateway{
		gateway("b-ns", "b", 2, 80), gateway("a-ns", "a", 1, 80, 443),
	}}
	res := p.Place(state)
	wantProblem(t, res, key("a-ns", "a"), "", gwv1.GatewayReasonAddressNotAssigned)
	if len(res.Plan.Create) != 2 || len(res.Plan.Update)+len(res.Plan.Delete) != 0 {
		t.Fatalf("plan %+v, want two creations", res.Plan)
	}
	a := res.Plan.Create[0]
	if a.Namespace != "a-ns" || a.Name != "sy-a" || a.Spec.Type != corev1.ServiceTypeLoadBalancer ||
		a.Labels[LabelGatewayName] != "a" || a.Labels[LabelManagedBy] != ManagedByValue ||
		a.OwnerReferences[0].UID != "uid-a-ns-a" || a.Spec.Selector["app.kubernetes.io/component"] != "edge" {
		t.Fatalf("Service %+v", a)
	}
	if len(a.Spec.Ports) != 2 || a.Spec.Ports[0].Port != 80 || a.Spec.Ports[0].TargetPort != intstr.FromInt32(20000) ||
		a.Spec.Ports[1].Port != 443 || a.Spec.Ports[1].TargetPort != intstr.FromInt32(20001) {
		t.Fatalf("Service ports %+v", a.Spec.Ports)
	}

	state.Services = apply(nil, res.Plan)
	res = p.Place(state)
	wantPorts(t, res, key("a-ns", "a"), map[int32]int32{80: 20000, 443: 20001})
	wantPorts(t, res, key("b-ns", "b"), map[int32]int32{80: 20002})
	if got := res.Placements[key("a-ns", "a")].StatusAddresses[0]; got.Value != state.Services[0].Spec.ClusterIP {
		t.Errorf("status address %+v, want the cluster IP", got)
	}
	if !res.Plan.Empty() {
		t.Fatalf("plan after the Services exist: %+v", res.Plan)
	}
}

// A restarted allocator reads the allocation back from the Services: existing
// allocations never move, new listener ports take the lowest free ports, removed ones
// are freed, and a deleted Gateway's Service is deleted.
func TestPortsStableAcrossRestarts(t *testing.T) {
	p := newPorts(t, 20000, 29999)
	a, b := gateway("ns", "a", 1, 80), gateway("ns", "b", 2, 80, 8080)
	live := []*corev1.Service{
		withIP(desiredService(a, "sy-a", corev1.ServiceTypeLoadBalancer, edgeSelector, map[int32]int32{80: 20007})),
		withIP(desiredService(b, "sy-b", corev1.ServiceTypeLoadBalancer, edgeSelector, map[int32]int32{80: 20000, 8080: 20003})),
		withIP(desiredService(gateway("ns", "gone", 0, 80), "sy-gone", corev1.ServiceTypeLoadBalancer, edgeSelector, map[int32]int32{80: 20001})),
	}
	// a gains 81 and 82; b loses 8080; c is new.
	a = gateway("ns", "a", 1, 80, 81, 82)
	b = gateway("ns", "b", 2, 80)
	res := p.Place(&State{GatewayClasses: []*gwv1.GatewayClass{served()}, Services: live,
		Gateways: []*gwv1.Gateway{a, b, gateway("ns", "c", 3, 80)}})
	wantPorts(t, res, key("ns", "a"), map[int32]int32{80: 20007, 81: 20001, 82: 20002})
	wantPorts(t, res, key("ns", "b"), map[int32]int32{80: 20000})
	wantProblem(t, res, key("ns", "c"), "", gwv1.GatewayReasonAddressNotAssigned)
	if got := res.Plan.Create; len(got) != 1 || got[0].Spec.Ports[0].TargetPort.IntVal != 20003 {
		t.Fatalf("created %+v, want sy-c on the freed port 20003", got)
	}
	if len(res.Plan.Update) != 2 || len(res.Plan.Delete) != 1 || res.Plan.Delete[0].Name != "sy-gone" {
		t.Fatalf("plan %+v, want sy-a and sy-b updated and sy-gone deleted", res.Plan)
	}
	if got := res.Plan.Update[0]; got.Name != "sy-a" || got.ResourceVersion != "7" || got.Spec.Ports[0].NodePort != 31000 {
		t.Errorf("update %+v must keep the live resourceVersion and node ports", got)
	}
}

func withIP(s *corev1.Service) *corev1.Service {
	s.UID, s.ResourceVersion = types.UID("svc-"+s.Name), "7"
	s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.5", []string{"10.96.0.5"}
	s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	for i := range s.Spec.Ports {
		s.Spec.Ports[i].NodePort = 31000 + int32(i)
	}
	return s
}

// When two Services claim the same container port (someone edited one), the older
// Gateway keeps it and the younger one moves.
func TestPortsConflictingRecordsOlderWins(t *testing.T) {
	p := newPorts(t, 20000, 20010)
	a, b := gateway("ns", "a", 1, 80), gateway("ns", "b", 2, 80)
	live := []*corev1.Service{
		withIP(desiredService(a, "sy-a", corev1.ServiceTypeLoadBalancer, edgeSelector, map[int32]int32{80: 20005})),
		withIP(desiredService(b, "sy-b", corev1.ServiceTypeLoadBalancer, edgeSelector, map[int32]int32{80: 20005})),
	}
	res := p.Place(&State{GatewayClasses: []*gwv1.GatewayClass{served()}, Services: live, Gateways: []*gwv1.Gateway{b, a}})
	wantPorts(t, res, key("ns", "a"), map[int32]int32{80: 20005})
	wantPorts(t, res, key("ns", "b"), map[int32]int32{80: 20000})
}

// An exhausted range leaves listener ports without container ports; a Gateway with
// none gets NoResources, and the older Gateways are unaffected.
func TestPortsRangeExhausted(t *testing.T) {
	p := newPorts(t, 20000, 20002)
	res := p.Place(&State{GatewayClasses: []*gwv1.GatewayClass{served()}, Gateways: []*gwv1.Gateway{
		gateway("ns", "a", 1, 80, 81), gateway("ns", "b", 2, 80, 81), gateway("ns", "c", 3, 80),
	}})
	if got := len(res.Plan.Create); got != 2 {
		t.Fatalf("created %d Services, want 2", got)
	}
	if ports := res.Plan.Create[1].Spec.Ports; len(ports) != 1 || ports[0].Port != 80 {
		t.Errorf("sy-b ports %+v, want only port 80", ports)
	}
	wantProblem(t, res, key("ns", "c"), "", gwv1.GatewayReasonNoResources)
}

// A class's ConfigMap sets the Service type; a change of type updates the Service and
// drops node ports a ClusterIP Service may not have.
func TestPortsClassServiceType(t *testing.T) {
	p := newPorts(t, 20000, 29999)
	ns := gwv1.Namespace("sys")
	class := served()
	class.Spec.ParametersRef = &gwv1.ParametersReference{Kind: "ConfigMap", Name: "params", Namespace: &ns}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "sys", Name: "params"}, Data: map[string]string{ParamServiceType: "ClusterIP"}}
	gw := gateway("ns", "a", 1, 80)
	live := withIP(desiredService(gw, "sy-a", corev1.ServiceTypeLoadBalancer, edgeSelector, map[int32]int32{80: 20000}))
	res := p.Place(&State{GatewayClasses: []*gwv1.GatewayClass{class}, ConfigMaps: []*corev1.ConfigMap{cm},
		Gateways: []*gwv1.Gateway{gw}, Services: []*corev1.Service{live}})
	if len(res.Plan.Update) != 1 {
		t.Fatalf("plan %+v, want one update", res.Plan)
	}
	up := res.Plan.Update[0]
	if up.Spec.Type != corev1.ServiceTypeClusterIP || up.Spec.Ports[0].NodePort != 0 || up.Spec.ClusterIP != "10.96.0.5" {
		t.Fatalf("update %+v, want ClusterIP without node ports, cluster IP kept", up.Spec)
	}

	cm.Data[ParamServiceType] = "NodePort"
	res = p.Place(&State{GatewayClasses: []*gwv1.GatewayClass{class}, ConfigMaps: []*corev1.ConfigMap{cm},
		Gateways: []*gwv1.Gateway{gw}, Services: []*corev1.Service{live}})
	if up := res.Plan.Update[0]; up.Spec.Type != corev1.ServiceTypeNodePort || up.Spec.Ports[0].NodePort != 31000 {
		t.Fatalf("update %+v, want NodePort keeping node port 31000", up.Spec)
	}
}

// Broken class parameters keep the class's Services (and reserve their ports) while
// its Gateways are rejected by translation.
func TestPortsInvalidClassParameters(t *testing.T) {
	p := newPorts(t, 20000, 29999)
	ns := gwv1.Namespace("sys")
	cases := map[string]*corev1.ConfigMap{
		"unknown keys":  {ObjectMeta: metav1.ObjectMeta{Namespace: "sys", Name: "params"}, Data: map[string]string{"servicetype": "NodePort"}},
		"bad type":      {ObjectMeta: metav1.ObjectMeta{Namespace: "sys", Name: "params"}, Data: map[string]string{ParamServiceType: "ExternalName"}},
		"missing":       nil,
		"binary values": {ObjectMeta: metav1.ObjectMeta{Namespace: "sys", Name: "params"}, BinaryData: map[string][]byte{"x": nil}},
	}
	for name, cm := range cases {
		t.Run(name, func(t *testing.T) {
			broken := served()
			broken.Spec.ParametersRef = &gwv1.ParametersReference{Kind: "ConfigMap", Name: "params", Namespace: &ns}
			gw := gateway("ns", "a", 1, 80)
			live := withIP(desiredService(gw, "sy-a", corev1.ServiceTypeLoadBalancer, edgeSelector, map[int32]int32{80: 20000}))
			state := &State{GatewayClasses: []*gwv1.GatewayClass{broken}, Gateways: []*gwv1.Gateway{gw}, Services: []*corev1.Service{live}}
			if cm != nil {
				state.ConfigMaps = []*corev1.ConfigMap{cm}
			}
			res := p.Place(state)
			if res.InvalidClassParameters["switchyard"] == "" || len(res.Placements) != 0 || !res.Plan.Empty() {
				t.Fatalf("result %+v, want the class invalid, no placement and the Service kept", res)
			}
		})
	}
	for _, ref := range []gwv1.ParametersReference{
		{Group: "example.com", Kind: "Params", Name: "x", Namespace: &ns},
		{Kind: "ConfigMap", Name: "params"},
	} {
		class := served()
		class.Spec.ParametersRef = &ref
		if res := p.Place(&State{GatewayClasses: []*gwv1.GatewayClass{class}}); res.InvalidClassParameters["switchyard"] == "" {
			t.Errorf("parametersRef %+v accepted", ref)
		}
	}
}

// Gateways that cannot be placed keep their Services and ports; nobody else gets them.
func TestPortsProblemsKeepServices(t *testing.T) {
	p := newPorts(t, 20000, 29999)
	held := withRequest(gateway("ns", "held", 1, 80), gwv1.IPAddressType, "10.0.0.1", "10.0.0.2")
	host := withRequest(gateway("ns", "host", 2, 80), gwv1.HostnameAddressType, "gw.example.com")
	clash := gateway("ns", "clash", 3, 80)
	live := []*corev1.Service{
		withIP(desiredService(held, "sy-held", corev1.ServiceTypeLoadBalancer, edgeSelector, map[int32]int32{80: 20000})),
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sy-clash"}},
	}
	res := p.Place(&State{GatewayClasses: []*gwv1.GatewayClass{served()}, Services: live,
		Gateways: []*gwv1.Gateway{held, host, clash, gateway("ns", "new", 4, 80)}})
	wantProblem(t, res, key("ns", "held"), "", gwv1.GatewayReasonAddressNotUsable)
	wantProblem(t, res, key("ns", "host"), gwv1.GatewayReasonUnsupportedAddress, gwv1.GatewayReasonAddressNotUsable)
	pr := wantProblem(t, res, key("ns", "clash"), "", gwv1.GatewayReasonAddressNotAssigned)
	if !strings.Contains(pr.Message, "ns/sy-clash") {
		t.Errorf("clash message %q", pr.Message)
	}
	if len(res.Plan.Create) != 1 || res.Plan.Create[0].Spec.Ports[0].TargetPort.IntVal != 20001 {
		t.Fatalf("plan %+v, want only sy-new, on 20001", res.Plan)
	}
	if len(res.Plan.Update)+len(res.Plan.Delete) != 0 {
		t.Fatalf("plan touches kept Services: %+v", res.Plan)
	}
}

func TestServiceAddresses(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1", ClusterIPs: []string{"10.96.0.1", "fd00::1"}}}
	if got := serviceAddresses(svc); len(got) != 2 || got[1].Value != "fd00::1" {
		t.Errorf("cluster IPs: %+v", got)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.9"}, {Hostname: "lb.example.net"}}
	got := serviceAddresses(svc)
	if len(got) != 2 || got[0].Value != "203.0.113.9" || *got[1].Type != gwv1.HostnameAddressType {
		t.Errorf("load balancer: %+v", got)
	}
	if got := serviceAddresses(&corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}}); len(got) != 0 {
		t.Errorf("headless: %+v", got)
	}
}

func TestServiceName(t *testing.T) {
	long := strings.Repeat("a", 253)
	names := map[string]string{}
	for _, gw := range []string{"web", "a.b", "a-b", long, long[:252] + "b", "0start", "x..y"} {
		name := ServiceName(gw)
		if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
			t.Errorf("ServiceName(%q) = %q: %v", gw, name, errs)
		}
		if other, dup := names[name]; dup {
			t.Errorf("Gateways %q and %q share Service name %q", other, gw, name)
		}
		names[name] = gw
	}
	if got := ServiceName("web"); got != "sy-web" {
		t.Errorf("ServiceName(web) = %q", got)
	}
	gw := gateway("ns", long, 1, 80)
	if svc := desiredService(gw, ServiceName(long), corev1.ServiceTypeClusterIP, edgeSelector, map[int32]int32{80: 1}); svc.Labels[LabelGatewayName] != "" {
		t.Errorf("a 253-character name was put in a label")
	} else if owner, ok := managedOwner(svc); !ok || owner != long {
		t.Errorf("managedOwner = %q, %v", owner, ok)
	}
}

func TestPortConfig(t *testing.T) {
	for _, cfg := range []PortConfig{
		{MinPort: 0, MaxPort: 10, Selector: edgeSelector},
		{MinPort: 20, MaxPort: 10, Selector: edgeSelector},
		{MinPort: 20000, MaxPort: 70000, Selector: edgeSelector},
		{MinPort: 20000, MaxPort: 20001},
		{MinPort: 20000, MaxPort: 20001, Selector: edgeSelector, ServiceType: corev1.ServiceTypeExternalName},
	} {
		if _, err := NewPortAllocator(cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

// BenchmarkPortsPlaceSteady places 1000 Gateways of two listener ports each whose
// Services already exist: the steady state of a large cluster.
func BenchmarkPortsPlaceSteady(b *testing.B) {
	p, err := NewPortAllocator(PortConfig{MinPort: 20000, MaxPort: 29999, Selector: edgeSelector})
	if err != nil {
		b.Fatal(err)
	}
	state := &State{GatewayClasses: []*gwv1.GatewayClass{served()}}
	for i := 0; i < 1000; i++ {
		state.Gateways = append(state.Gateways, gateway("ns"+strconv.Itoa(i%10), "gw"+strconv.Itoa(i), i, 80, 443))
	}
	res := p.Place(state)
	state.Services = apply(nil, res.Plan)
	if res = p.Place(state); !res.Plan.Empty() || len(res.Placements) != 1000 {
		b.Fatalf("not steady: %d placements, plan %d/%d/%d", len(res.Placements), len(res.Plan.Create), len(res.Plan.Update), len(res.Plan.Delete))
	}
	b.ResetTimer()
	for b.Loop() {
		p.Place(state)
	}
}

// BenchmarkPoolPlaceSteady places 1000 Gateways that already report pool addresses.
func BenchmarkPoolPlaceSteady(b *testing.B) {
	p, err := NewPoolAllocator(PoolConfig{Addresses: []string{"10.244.0.0/16"}})
	if err != nil {
		b.Fatal(err)
	}
	state := &State{GatewayClasses: []*gwv1.GatewayClass{served()}}
	for i := 0; i < 1000; i++ {
		state.Gateways = append(state.Gateways, gateway("ns", "gw"+strconv.Itoa(i), i, 80))
	}
	res := p.Place(state)
	for _, gw := range state.Gateways {
		gw.Status.Addresses = res.Placements[keyOf(gw)].StatusAddresses
	}
	b.ResetTimer()
	for b.Loop() {
		p.Place(state)
	}
}
