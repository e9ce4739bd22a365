package placement

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func withInfrastructure(gw *gwv1.Gateway, labels, annotations map[string]string) *gwv1.Gateway {
	if gw.Spec.Infrastructure == nil {
		gw.Spec.Infrastructure = &gwv1.GatewayInfrastructure{}
	}
	gw.Spec.Infrastructure.Labels = map[gwv1.LabelKey]gwv1.LabelValue{}
	for k, v := range labels {
		gw.Spec.Infrastructure.Labels[gwv1.LabelKey(k)] = gwv1.LabelValue(v)
	}
	gw.Spec.Infrastructure.Annotations = map[gwv1.AnnotationKey]gwv1.AnnotationValue{}
	for k, v := range annotations {
		gw.Spec.Infrastructure.Annotations[gwv1.AnnotationKey(k)] = gwv1.AnnotationValue(v)
	}
	return gw
}

func withParametersRef(gw *gwv1.Gateway, group, kind, name string) *gwv1.Gateway {
	if gw.Spec.Infrastructure == nil {
		gw.Spec.Infrastructure = &gwv1.GatewayInfrastructure{}
	}
	gw.Spec.Infrastructure.ParametersRef = &gwv1.LocalParametersReference{Group: gwv1.Group(group), Kind: gwv1.Kind(kind), Name: name}
	return gw
}

// settlePool places until the plan is empty, carrying the plans out and reporting
// the addresses in status as the controller does. It fails after a few rounds.
func settlePool(t *testing.T, p *PoolAllocator, s *State) *Result {
	t.Helper()
	for range 4 {
		res := p.Place(s)
		if res.Plan.Empty() {
			return res
		}
		s.Services = apply(s.Services, res.Plan)
		s.EndpointSlices = applySlices(s.EndpointSlices, res.Plan)
		for _, gw := range s.Gateways {
			gw.Status.Addresses = res.Placements[keyOf(gw)].StatusAddresses
		}
	}
	t.Fatalf("placement does not settle")
	return nil
}

// An IPAddress entry without a value asks for any address; more than one entry is
// still refused, and a request with an address outside the pool names that address.
func TestPoolEmptyAddressValue(t *testing.T) {
	p := newPool(t, "10.244.255.0/24")
	res := p.Place(&State{GatewayClasses: []*gwv1.GatewayClass{served()}, Gateways: []*gwv1.Gateway{
		withRequest(gateway("ns", "any", 1, 80), gwv1.IPAddressType, ""),
		withRequest(gateway("ns", "two-any", 2, 80), gwv1.IPAddressType, "", ""),
		withRequest(gateway("ns", "mixed", 3, 80), gwv1.IPAddressType, "10.244.100.1", "10.244.255.250"),
		withRequest(gateway("ns", "usable", 4, 80), gwv1.IPAddressType, "10.244.255.250"),
	}})
	wantBind(t, res, key("ns", "any"), "10.244.255.1")
	pr := wantProblem(t, res, key("ns", "two-any"), "", gwv1.GatewayReasonAddressNotUsable)
	if !strings.Contains(pr.Message, "Only one address") {
		t.Errorf("message %q", pr.Message)
	}
	pr = wantProblem(t, res, key("ns", "mixed"), "", gwv1.GatewayReasonAddressNotUsable)
	if !strings.Contains(pr.Message, "10.244.100.1 is not in the address pool") {
		t.Errorf("message %q does not name the unusable address", pr.Message)
	}
	wantBind(t, res, key("ns", "usable"), "10.244.255.250")
}

// In pool mode each Gateway gets a headless Service without a selector and an
// EndpointSlice holding its address, both carrying its spec.infrastructure labels and
// annotations; once they exist nothing more is planned.
func TestPoolHeadlessServiceAndSlice(t *testing.T) {
	p := newPool(t, "10.244.255.0/24")
	gw := withInfrastructure(gateway("ns", "gw", 1, 80, 8080),
		map[string]string{"team": "web", LabelManagedBy: "someone-else"}, map[string]string{"note": "hi"})
	state := &State{GatewayClasses: []*gwv1.GatewayClass{served()}, Gateways: []*gwv1.Gateway{gw}}
	res := settlePool(t, p, state)
	wantBind(t, res, key("ns", "gw"), "10.244.255.1")
	if len(state.Services) != 1 || len(state.EndpointSlices) != 1 {
		t.Fatalf("objects %+v / %+v, want one Service and one EndpointSlice", state.Services, state.EndpointSlices)
	}
	svc, es := state.Services[0], state.EndpointSlices[0]
	if svc.Name != "sy-gw" || !isHeadless(svc) || svc.Spec.Selector != nil || len(svc.Spec.Ports) != 2 ||
		svc.Spec.Ports[1].Port != 8080 || svc.Spec.Ports[1].TargetPort.IntVal != 8080 {
		t.Errorf("Service %+v, want headless sy-gw without selector on 80 and 8080", svc.Spec)
	}
	for _, o := range []metav1.Object{svc, es} {
		l, a := o.GetLabels(), o.GetAnnotations()
		if l["team"] != "web" || l[LabelManagedBy] != ManagedByValue || l[LabelGatewayName] != "gw" || a["note"] != "hi" {
			t.Errorf("%s labels %v annotations %v, want the infrastructure ones and the managed ones", o.GetName(), l, a)
		}
	}
	if es.Name != "sy-gw" || es.Labels[discoveryv1.LabelServiceName] != "sy-gw" || es.Labels[discoveryv1.LabelManagedBy] != EndpointSliceManagedBy ||
		es.AddressType != discoveryv1.AddressTypeIPv4 || len(es.Endpoints) != 1 || es.Endpoints[0].Addresses[0] != "10.244.255.1" ||
		len(es.Ports) != 2 || *es.Ports[0].Name != "port-80" {
		t.Errorf("EndpointSlice %+v", es)
	}

	// A new address updates the EndpointSlice; one of another family replaces it.
	gw.Spec.Addresses = []gwv1.GatewaySpecAddress{{Value: "10.244.255.9"}}
	res = p.Place(state)
	if len(res.Plan.UpdateSlices) != 1 || res.Plan.UpdateSlices[0].Endpoints[0].Addresses[0] != "10.244.255.9" ||
		len(res.Plan.Create)+len(res.Plan.Update)+len(res.Plan.Delete) != 0 {
		t.Fatalf("plan %+v, want the EndpointSlice updated", res.Plan)
	}
	six := newPool(t, "fd00::/120")
	gw.Spec.Addresses = nil
	res = six.Place(state)
	if len(res.Plan.DeleteSlices) != 1 || len(res.Plan.CreateSlices) != 1 || res.Plan.CreateSlices[0].AddressType != discoveryv1.AddressTypeIPv6 {
		t.Fatalf("plan %+v, want the EndpointSlice replaced by an IPv6 one", res.Plan)
	}
}

// Dropping an infrastructure label or annotation removes it from the managed objects,
// and leaves the labels and annotations others set.
func TestInfrastructureKeysRemoved(t *testing.T) {
	p := newPool(t, "10.244.255.0/24")
	gw := withInfrastructure(gateway("ns", "gw", 1, 80), map[string]string{"a": "1", "b": "2"}, map[string]string{"x": "1"})
	state := &State{GatewayClasses: []*gwv1.GatewayClass{served()}, Gateways: []*gwv1.Gateway{gw}}
	settlePool(t, p, state)
	state.Services[0].Labels["foreign"] = "kept"
	state.Services[0].Annotations["foreign"] = "kept"
	withInfrastructure(gw, map[string]string{"b": "3"}, nil)
	res := settlePool(t, p, state)
	if !res.Plan.Empty() {
		t.Fatalf("not settled")
	}
	for _, o := range []metav1.Object{state.Services[0], state.EndpointSlices[0]} {
		l, a := o.GetLabels(), o.GetAnnotations()
		if _, has := l["a"]; has || l["b"] != "3" {
			t.Errorf("%T labels %v, want a dropped and b=3", o, l)
		}
		if _, has := a["x"]; has || a[AnnotationInfrastructureAnnotations] != "" {
			t.Errorf("%T annotations %v, want x and its record dropped", o, a)
		}
	}
	if l, a := state.Services[0].Labels, state.Services[0].Annotations; l["foreign"] != "kept" || a["foreign"] != "kept" {
		t.Errorf("Service lost what others set: %v %v", l, a)
	}
}

// A name held by an object not managed for the Gateway is left alone: the Gateway is
// served without a Service or EndpointSlice. Refused Gateways get none either.
func TestPoolObjectsNameTakenOrRefused(t *testing.T) {
	p := newPool(t, "10.244.255.0/24")
	foreign := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sy-taken"}}
	foreignSlice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sy-slice-taken"}}
	res := p.Place(&State{GatewayClasses: []*gwv1.GatewayClass{served()},
		Services: []*corev1.Service{foreign}, EndpointSlices: []*discoveryv1.EndpointSlice{foreignSlice},
		Gateways: []*gwv1.Gateway{
			gateway("ns", "taken", 1, 80), gateway("ns", "slice-taken", 2, 80),
			withRequest(gateway("ns", "refused", 3, 80), gwv1.HostnameAddressType, "gw.example.com"),
		}})
	wantBind(t, res, key("ns", "taken"), "10.244.255.1")
	wantBind(t, res, key("ns", "slice-taken"), "10.244.255.2")
	if !res.Plan.Empty() {
		t.Fatalf("plan %+v, want nothing", res.Plan)
	}
}

// A Gateway's own parametersRef must name an existing ConfigMap of its namespace with
// known keys; otherwise it is refused with InvalidParameters and holds no address.
func TestPoolGatewayParameters(t *testing.T) {
	p := newPool(t, "10.244.255.0/24")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "params"}, Data: map[string]string{ParamServiceType: "NodePort"}}
	bad := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "bad"}, Data: map[string]string{"colour": "red"}}
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "elsewhere", Name: "params"}}
	res := p.Place(&State{GatewayClasses: []*gwv1.GatewayClass{served()}, ConfigMaps: []*corev1.ConfigMap{cm, bad, other},
		Gateways: []*gwv1.Gateway{
			withParametersRef(gateway("ns", "kind", 1, 80), "invalid.io", "InvalidParameters", "invalid"),
			withParametersRef(gateway("ns", "missing", 2, 80), "", "ConfigMap", "nope"),
			withParametersRef(gateway("ns", "unknown", 3, 80), "", "ConfigMap", "bad"),
			withParametersRef(gateway("other", "cross", 4, 80), "", "ConfigMap", "params"),
			withParametersRef(gateway("ns", "good", 5, 80), "", "ConfigMap", "params"),
		}})
	for name, want := range map[string]string{
		"kind": "InvalidParameters.invalid.io", "missing": "ns/nope does not exist",
		"unknown": "unknown keys colour", "cross": "other/params does not exist",
	} {
		ns := "ns"
		if name == "cross" {
			ns = "other"
		}
		pr := wantProblem(t, res, key(ns, name), gwv1.GatewayReasonInvalidParameters, gwv1.GatewayReasonInvalid)
		if !strings.Contains(pr.Message, want) {
			t.Errorf("%s: message %q does not contain %q", name, pr.Message, want)
		}
	}
	wantBind(t, res, key("ns", "good"), "10.244.255.1")
	if len(res.Plan.Create) != 1 || res.Plan.Create[0].Name != "sy-good" {
		t.Errorf("plan %+v, want only sy-good", res.Plan)
	}
}

// In Service mode a Gateway's parameters override its class's Service type, its
// spec.infrastructure metadata goes on its Service, an address without a value is
// met and a specific one is not; EndpointSlices and headless Services left from pool
// mode are replaced.
func TestPortsGatewayParametersAndInfrastructure(t *testing.T) {
	p := newPorts(t, 20000, 29999)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "params"}, Data: map[string]string{ParamServiceType: "ClusterIP"}}
	gw := withParametersRef(withInfrastructure(gateway("ns", "gw", 1, 80), map[string]string{"team": "web"}, map[string]string{"note": "hi"}), "", "ConfigMap", "params")
	gw = withRequest(gw, gwv1.IPAddressType, "")
	leftSvc := desiredHeadlessService(gw, "sy-gw", []int32{80})
	leftSlice := desiredSlice(gw, "sy-gw", netipMust("10.244.255.1"), []int32{80})
	res := p.Place(&State{GatewayClasses: []*gwv1.GatewayClass{served()}, ConfigMaps: []*corev1.ConfigMap{cm},
		Gateways: []*gwv1.Gateway{gw,
			withParametersRef(withRequest(gateway("ns", "fixed", 2, 80), gwv1.IPAddressType, "10.0.0.1"), "", "ConfigMap", "params")},
		Services:       []*corev1.Service{leftSvc},
		EndpointSlices: []*discoveryv1.EndpointSlice{leftSlice},
	})
	pr := wantProblem(t, res, key("ns", "fixed"), "", gwv1.GatewayReasonAddressNotUsable)
	if !strings.Contains(pr.Message, "10.0.0.1") || !strings.Contains(pr.Message, "ClusterIP") {
		t.Errorf("message %q", pr.Message)
	}
	if len(res.Plan.Delete) != 1 || len(res.Plan.Create) != 1 || len(res.Plan.DeleteSlices) != 1 {
		t.Fatalf("plan %+v, want the headless Service replaced and the EndpointSlice deleted", res.Plan)
	}
	svc := res.Plan.Create[0]
	if svc.Spec.Type != corev1.ServiceTypeClusterIP || isHeadless(svc) || svc.Labels["team"] != "web" || svc.Annotations["note"] != "hi" {
		t.Errorf("Service %+v, want ClusterIP from the Gateway's parameters with its infrastructure metadata", svc)
	}
	if got := allocatedPorts(leftSvc); len(got) != 0 {
		t.Errorf("a headless Service records ports %v", got)
	}

	state := &State{GatewayClasses: []*gwv1.GatewayClass{served()},
		Gateways: []*gwv1.Gateway{withParametersRef(gateway("ns", "x", 1, 80), "", "ConfigMap", "nope")}}
	wantProblem(t, p.Place(state), key("ns", "x"), gwv1.GatewayReasonInvalidParameters, gwv1.GatewayReasonInvalid)
}

// In Service mode a Gateway exposed by a LoadBalancer Service may request an address:
// it becomes the Service's loadBalancerIP, and the Gateway is programmed only once the
// load balancer reports that address.
func TestPortsRequestedLoadBalancerIP(t *testing.T) {
	p := newPorts(t, 20000, 29999)
	gw := withRequest(gateway("ns", "gw", 1, 80), gwv1.IPAddressType, "192.0.2.10")
	state := &State{GatewayClasses: []*gwv1.GatewayClass{served()}, Gateways: []*gwv1.Gateway{gw}}
	res := p.Place(state)
	if len(res.Plan.Create) != 1 || res.Plan.Create[0].Spec.LoadBalancerIP != "192.0.2.10" {
		t.Fatalf("plan %+v, want a Service asking for 192.0.2.10", res.Plan)
	}
	state.Services = apply(nil, res.Plan)
	pr := wantProblem(t, p.Place(state), key("ns", "gw"), "", gwv1.GatewayReasonAddressNotAssigned)
	if !strings.Contains(pr.Message, "192.0.2.10") {
		t.Errorf("message %q", pr.Message)
	}
	state.Services[0].Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.1"}}
	wantProblem(t, p.Place(state), key("ns", "gw"), "", gwv1.GatewayReasonAddressNotUsable)
	state.Services[0].Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.1"}, {IP: "192.0.2.10"}}
	res = p.Place(state)
	pl := res.Placements[key("ns", "gw")]
	if pl.Problem != nil || len(pl.StatusAddresses) != 1 || pl.StatusAddresses[0].Value != "192.0.2.10" || !res.Plan.Empty() {
		t.Fatalf("placement %+v, plan %+v: want served on the requested address only", pl, res.Plan)
	}
	// Dropping the request clears the Service's loadBalancerIP.
	gw.Spec.Addresses = nil
	res = p.Place(state)
	if len(res.Plan.Update) != 1 || res.Plan.Update[0].Spec.LoadBalancerIP != "" {
		t.Fatalf("plan %+v, want loadBalancerIP cleared", res.Plan)
	}
}
