package placement

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

func newPool(t *testing.T, addrs ...string) *PoolAllocator {
	t.Helper()
	p, err := NewPoolAllocator(PoolConfig{Addresses: addrs})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A /30 has two usable addresses: the two oldest Gateways get them in age order, and
// the third is AddressNotAssigned without disturbing the others.
func TestPoolAssignsOldestFirstAndReportsExhaustion(t *testing.T) {
	p := newPool(t, "10.244.255.0/30")
	res := p.Place(&State{GatewayClasses: []*gwv1.GatewayClass{served()}, Gateways: []*gwv1.Gateway{
		gateway("ns", "c", 3, 80), gateway("ns", "a", 1, 80), gateway("other", "b", 2, 80),
	}})
	wantBind(t, res, key("ns", "a"), "10.244.255.1")
	wantBind(t, res, key("other", "b"), "10.244.255.2")
	pr := wantProblem(t, res, key("ns", "c"), "", gwv1.GatewayReasonAddressNotAssigned)
	if !strings.Contains(pr.Message, "10.244.255.0/30") {
		t.Errorf("exhaustion message %q does not name the pool", pr.Message)
	}
	// Every Gateway gets its headless Service, and those with an address an
	// EndpointSlice holding it.
	if len(res.Plan.Create) != 3 || len(res.Plan.CreateSlices) != 2 ||
		res.Plan.CreateSlices[0].Name != "sy-a" || res.Plan.CreateSlices[1].Name != "sy-b" {
		t.Errorf("plan %+v, want three Services and the EndpointSlices of a and b", res.Plan)
	}
}

// After a restart the addresses already reported are kept, even when an older
// Gateway would otherwise get the lower address.
func TestPoolKeepsReportedAddresses(t *testing.T) {
	p := newPool(t, "10.244.255.0/24")
	res := p.Place(&State{GatewayClasses: []*gwv1.GatewayClass{served()}, Gateways: []*gwv1.Gateway{
		gateway("ns", "old", 1, 80),
		withStatus(gateway("ns", "young", 2, 80), "10.244.255.1"),
		withStatus(gateway("ns", "outside", 3, 80), "192.0.2.7"),
	}})
	wantBind(t, res, key("ns", "young"), "10.244.255.1")
	wantBind(t, res, key("ns", "old"), "10.244.255.2")
	wantBind(t, res, key("ns", "outside"), "10.244.255.3")
}

func TestPoolRequestedAddresses(t *testing.T) {
	p := newPool(t, "10.244.255.0/24", "10.0.0.9")
	res := p.Place(&State{GatewayClasses: []*gwv1.GatewayClass{served()}, Gateways: []*gwv1.Gateway{
		withStatus(gateway("ns", "holder", 1, 80), "10.244.255.50"),
		withRequest(gateway("ns", "wants-held", 2, 80), gwv1.IPAddressType, "10.244.255.50"),
		withRequest(gateway("ns", "single", 3, 80), gwv1.IPAddressType, "10.0.0.9"),
		withRequest(gateway("ns", "outside", 4, 80), gwv1.IPAddressType, "192.0.2.1"),
		withRequest(gateway("ns", "hostname", 5, 80), gwv1.HostnameAddressType, "gw.example.com"),
		withRequest(gateway("ns", "two", 6, 80), gwv1.IPAddressType, "10.244.255.60", "10.244.255.61"),
		withRequest(gateway("ns", "broadcast", 7, 80), gwv1.IPAddressType, "10.244.255.255"),
		// An older Gateway's request wins over a younger one's reported address.
		withRequest(gateway("ns", "asks", 8, 80), gwv1.IPAddressType, "10.244.255.70"),
		withStatus(gateway("ns", "moved", 9, 80), "10.244.255.70"),
	}})
	wantBind(t, res, key("ns", "holder"), "10.244.255.50")
	pr := wantProblem(t, res, key("ns", "wants-held"), "", gwv1.GatewayReasonAddressNotUsable)
	if !strings.Contains(pr.Message, "ns/holder") {
		t.Errorf("message %q does not name the holder", pr.Message)
	}
	wantBind(t, res, key("ns", "single"), "10.0.0.9")
	wantProblem(t, res, key("ns", "outside"), "", gwv1.GatewayReasonAddressNotUsable)
	wantProblem(t, res, key("ns", "hostname"), gwv1.GatewayReasonUnsupportedAddress, gwv1.GatewayReasonAddressNotUsable)
	wantProblem(t, res, key("ns", "two"), "", gwv1.GatewayReasonAddressNotUsable)
	wantProblem(t, res, key("ns", "broadcast"), "", gwv1.GatewayReasonAddressNotUsable)
	wantBind(t, res, key("ns", "asks"), "10.244.255.70")
	wantBind(t, res, key("ns", "moved"), "10.244.255.1")
}

func TestPoolOnlyServedClassesWithValidParameters(t *testing.T) {
	other := &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: gwv1.GatewayClassSpec{ControllerName: "example.com/other"}}
	ns := gwv1.Namespace("default")
	broken := &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "broken"}, Spec: gwv1.GatewayClassSpec{
		ControllerName: translate.ControllerName,
		ParametersRef:  &gwv1.ParametersReference{Kind: "ConfigMap", Name: "missing", Namespace: &ns},
	}}
	theirs := gateway("ns", "theirs", 1, 80)
	theirs.Spec.GatewayClassName = "other"
	bad := gateway("ns", "bad", 1, 80)
	bad.Spec.GatewayClassName = "broken"
	res := newPool(t, "10.0.0.1").Place(&State{
		GatewayClasses: []*gwv1.GatewayClass{served(), other, broken, nil},
		Gateways:       []*gwv1.Gateway{theirs, bad, gateway("ns", "ours", 2, 80), nil},
	})
	if len(res.Placements) != 1 {
		t.Fatalf("placements %+v, want only ns/ours", res.Placements)
	}
	wantBind(t, res, key("ns", "ours"), "10.0.0.1")
	if msg := res.InvalidClassParameters["broken"]; !strings.Contains(msg, "default/missing does not exist") {
		t.Errorf("invalid parameters %+v", res.InvalidClassParameters)
	}
}

// Services left from Service mode are deleted, except those of Gateways of a class
// whose parameters are broken (they come back when the class is fixed); a Gateway
// still served gets a headless one instead, which takes deleting the old one first.
func TestPoolDeletesLeftoverServices(t *testing.T) {
	gw := gateway("ns", "gw", 1, 80)
	gone := gateway("ns", "gone", 1, 80)
	left := desiredService(gw, ServiceName("gw"), corev1.ServiceTypeLoadBalancer, map[string]string{"app": "edge"}, map[int32]int32{80: 20000})
	orphan := desiredService(gone, ServiceName("gone"), corev1.ServiceTypeLoadBalancer, map[string]string{"app": "edge"}, map[int32]int32{80: 20001})
	foreign := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}}
	res := newPool(t, "10.0.0.1").Place(&State{GatewayClasses: []*gwv1.GatewayClass{served()},
		Gateways: []*gwv1.Gateway{gw}, Services: []*corev1.Service{left, orphan, foreign}})
	if len(res.Plan.Delete) != 2 || res.Plan.Delete[0].Name != "sy-gone" || res.Plan.Delete[1].Name != "sy-gw" {
		t.Fatalf("plan %+v, want sy-gone and sy-gw deleted", res.Plan)
	}
	if len(res.Plan.Create) != 1 || res.Plan.Create[0].Name != "sy-gw" || !isHeadless(res.Plan.Create[0]) {
		t.Fatalf("plan %+v, want sy-gw created headless", res.Plan)
	}
}

func TestPoolConfig(t *testing.T) {
	for _, bad := range [][]string{nil, {"10.0.0.0/33"}, {"not-an-ip"}, {"fe80::1%eth0"}} {
		if _, err := NewPoolAllocator(PoolConfig{Addresses: bad}); err == nil {
			t.Errorf("pool %q accepted", bad)
		}
	}
	// A huge IPv6 prefix is handed out lazily; its first address is skipped.
	p := newPool(t, "fd00:10::/64", "10.1.0.0/31")
	res := p.Place(&State{GatewayClasses: []*gwv1.GatewayClass{served()}, Gateways: []*gwv1.Gateway{
		gateway("ns", "a", 1, 80), gateway("ns", "b", 2, 80),
		withRequest(gateway("ns", "c", 3, 80), gwv1.IPAddressType, "10.1.0.0"),
	}})
	wantBind(t, res, key("ns", "a"), "fd00:10::1")
	wantBind(t, res, key("ns", "b"), "fd00:10::2")
	wantBind(t, res, key("ns", "c"), "10.1.0.0")
}

func TestPoolNilState(t *testing.T) {
	res := newPool(t, "10.0.0.1").Place(nil)
	if res.Placements == nil || len(res.Placements) != 0 || !res.Plan.Empty() {
		t.Fatalf("nil state gave %+v", res)
	}
}

// A Gateway keeps the address it was given while its status has not caught up yet:
// when an older Gateway goes, a translation that reads the young one's stale status
// must not move it to the freed, lower address.
func TestPoolKeepsGivenAddressesWhileStatusLags(t *testing.T) {
	p := newPool(t, "10.244.255.0/24")
	classes := []*gwv1.GatewayClass{served()}
	res := p.Place(&State{GatewayClasses: classes, Gateways: []*gwv1.Gateway{
		gateway("ns", "old", 1, 80), gateway("ns", "young", 2, 80)}})
	wantBind(t, res, key("ns", "young"), "10.244.255.2")
	// The old Gateway is deleted before the young one's status was written.
	res = p.Place(&State{GatewayClasses: classes, Gateways: []*gwv1.Gateway{gateway("ns", "young", 2, 80)}})
	wantBind(t, res, key("ns", "young"), "10.244.255.2")
	// A new Gateway takes the freed address, and the deleted one is forgotten.
	res = p.Place(&State{GatewayClasses: classes, Gateways: []*gwv1.Gateway{
		gateway("ns", "young", 2, 80), gateway("ns", "new", 3, 80)}})
	wantBind(t, res, key("ns", "new"), "10.244.255.1")
	if _, ok := p.last[key("ns", "old")]; ok {
		t.Error("a deleted Gateway's address is still remembered")
	}
}

// A new leader forgets what it placed as a follower and starts from status.
func TestPoolForgetStartsFromStatus(t *testing.T) {
	p := newPool(t, "10.244.255.0/24")
	classes := []*gwv1.GatewayClass{served()}
	p.Place(&State{GatewayClasses: classes, Gateways: []*gwv1.Gateway{gateway("ns", "a", 1, 80)}})
	p.Forget()
	res := p.Place(&State{GatewayClasses: classes, Gateways: []*gwv1.Gateway{
		withStatus(gateway("ns", "a", 1, 80), "10.244.255.7")}})
	wantBind(t, res, key("ns", "a"), "10.244.255.7")
}
