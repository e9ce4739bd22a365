package cluster_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gwtyped "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/typed/apis/v1"

	"github.com/switchyard-dev/switchyard/controller/placement"
	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/e2e/cluster"
)

// placementHarness runs placement rounds against a real API server: read the objects,
// place, apply the Service plan.
type placementHarness struct {
	t    *testing.T
	kube kubernetes.Interface
	gw   gwtyped.GatewayV1Interface
	sync *placement.ServiceSync
}

// round reads the cluster, places with alloc and applies the plan. It returns the
// result, whose plan was applied.
func (h *placementHarness) round(alloc placement.Allocator) *placement.Result {
	h.t.Helper()
	ctx := context.Background()
	s := &placement.State{}
	classes, err := h.gw.GatewayClasses().List(ctx, metav1.ListOptions{})
	must(h.t, err)
	for i := range classes.Items {
		s.GatewayClasses = append(s.GatewayClasses, &classes.Items[i])
	}
	gateways, err := h.gw.Gateways("").List(ctx, metav1.ListOptions{})
	must(h.t, err)
	for i := range gateways.Items {
		s.Gateways = append(s.Gateways, &gateways.Items[i])
	}
	services, err := h.kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	must(h.t, err)
	for i := range services.Items {
		s.Services = append(s.Services, &services.Items[i])
	}
	cms, err := h.kube.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	must(h.t, err)
	for i := range cms.Items {
		s.ConfigMaps = append(s.ConfigMaps, &cms.Items[i])
	}
	slices, err := h.kube.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
	must(h.t, err)
	for i := range slices.Items {
		s.EndpointSlices = append(s.EndpointSlices, &slices.Items[i])
	}
	res := alloc.Place(s)
	if err := h.sync.Apply(ctx, res.Plan); err != nil {
		h.t.Fatalf("applying %+v: %v", res.Plan, err)
	}
	return res
}

// settle runs a round that writes what changed, then one that must plan nothing:
// the objects the server stored, with its defaults, already match (no update loop).
func (h *placementHarness) settle(alloc placement.Allocator) *placement.Result {
	h.t.Helper()
	h.round(alloc)
	res := h.round(alloc)
	if !res.Plan.Empty() {
		h.t.Fatalf("a second round still plans %d creations, %d updates, %d deletions",
			len(res.Plan.Create), len(res.Plan.Update), len(res.Plan.Delete))
	}
	return res
}

func (h *placementHarness) service(name string) *corev1.Service {
	h.t.Helper()
	svc, err := h.kube.CoreV1().Services("default").Get(context.Background(), name, metav1.GetOptions{})
	must(h.t, err)
	return svc
}

// TestPlacementServicesOnRealAPIServer checks Service mode against a real API server:
// two Gateways on port 80 get a Service each with distinct target ports; a restarted
// allocator reads the allocations back and keeps them; a class parameter change of
// Service type is applied without fighting the server's defaulting; a deleted
// Gateway's Service goes away; and switching to pool mode replaces the Services by
// headless ones whose EndpointSlices hold the Gateways' pool addresses.
func TestPlacementServicesOnRealAPIServer(t *testing.T) {
	c := cluster.Start(t)
	c.InstallGatewayAPI(t)
	ctx := context.Background()
	h := &placementHarness{t: t, kube: kubernetes.NewForConfigOrDie(c.Config),
		gw: gwclient.NewForConfigOrDie(c.Config).GatewayV1()}
	h.sync = placement.NewServiceSync(h.kube)
	must(t, create(h.gw.GatewayClasses().Create(ctx, &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "switchyard"},
		Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}}, metav1.CreateOptions{})))
	createGateway(t, h.gw, "a", 80)
	createGateway(t, h.gw, "b", 80, 8080)

	cfg := placement.PortConfig{MinPort: 20000, MaxPort: 29999,
		Selector: map[string]string{"app.kubernetes.io/name": "switchyard", "app.kubernetes.io/component": "edge"}}
	alloc, err := placement.NewPortAllocator(cfg)
	must(t, err)
	res := h.settle(alloc)
	a, b := h.service("sy-a"), h.service("sy-b")
	if a.Spec.Type != corev1.ServiceTypeLoadBalancer || a.Spec.ClusterIP == "" || a.Spec.Ports[0].NodePort == 0 {
		t.Fatalf("sy-a spec %+v, want a LoadBalancer Service with the server's defaults", a.Spec)
	}
	ports := map[int32]string{}
	for _, svc := range []*corev1.Service{a, b} {
		for _, p := range svc.Spec.Ports {
			cp := p.TargetPort.IntVal
			if cp < 20000 || cp > 29999 || ports[cp] != "" {
				t.Fatalf("target port %d of %s is out of range or also used by %s", cp, svc.Name, ports[cp])
			}
			ports[cp] = svc.Name
		}
	}
	if len(ports) != 3 {
		t.Fatalf("target ports %v, want 3 distinct", ports)
	}
	pa := res.Placements[types.NamespacedName{Namespace: "default", Name: "a"}]
	if pa.Problem != nil || pa.ContainerPorts[80] != a.Spec.Ports[0].TargetPort.IntVal ||
		len(pa.StatusAddresses) != 1 || pa.StatusAddresses[0].Value != a.Spec.ClusterIP {
		t.Fatalf("placement of a %+v (problem %+v), want its Service's port and cluster IP", pa, pa.Problem)
	}

	// A restarted controller reads the allocations back: nothing moves, and a new
	// Gateway gets a port of its own.
	createGateway(t, h.gw, "c", 80)
	restarted, err := placement.NewPortAllocator(cfg)
	must(t, err)
	h.settle(restarted)
	if got := h.service("sy-a").Spec.Ports[0].TargetPort; got != a.Spec.Ports[0].TargetPort {
		t.Errorf("after a restart sy-a targets %v, was %v", got, a.Spec.Ports[0].TargetPort)
	}
	for i, p := range h.service("sy-b").Spec.Ports {
		if p.TargetPort != b.Spec.Ports[i].TargetPort {
			t.Errorf("after a restart sy-b port %d targets %v, was %v", p.Port, p.TargetPort, b.Spec.Ports[i].TargetPort)
		}
	}
	if cp := h.service("sy-c").Spec.Ports[0].TargetPort.IntVal; ports[cp] != "" {
		t.Errorf("sy-c got port %d of %s", cp, ports[cp])
	}

	// The class's parameters switch the Services to ClusterIP: the server drops the
	// node ports and the settings of external types, and nothing loops.
	setClassServiceType(t, h, "ClusterIP")
	h.settle(restarted)
	if svc := h.service("sy-b"); svc.Spec.Type != corev1.ServiceTypeClusterIP || svc.Spec.Ports[0].NodePort != 0 ||
		svc.Spec.Ports[1].TargetPort != b.Spec.Ports[1].TargetPort {
		t.Fatalf("sy-b spec %+v, want ClusterIP keeping its target ports", svc.Spec)
	}

	must(t, h.gw.Gateways("default").Delete(ctx, "a", metav1.DeleteOptions{}))
	h.settle(restarted)
	waitServiceGone(t, h.kube, "sy-a")

	pool, err := placement.NewPoolAllocator(placement.PoolConfig{Addresses: []string{"10.244.255.0/24"}})
	must(t, err)
	oldB := h.service("sy-b")
	res = h.settle(pool)
	if p := res.Placements[types.NamespacedName{Namespace: "default", Name: "b"}]; p.BindAddress != "10.244.255.1" {
		t.Errorf("pool placement of b %+v", p)
	}
	b = h.service("sy-b")
	if b.UID == oldB.UID || b.Spec.ClusterIP != corev1.ClusterIPNone || b.Spec.Selector != nil || len(b.Spec.Ports) != 2 {
		t.Fatalf("sy-b %+v, want a new headless Service without selector on both listener ports", b.Spec)
	}
	slice, err := h.kube.DiscoveryV1().EndpointSlices("default").Get(ctx, "sy-b", metav1.GetOptions{})
	must(t, err)
	if len(slice.Endpoints) != 1 || slice.Endpoints[0].Addresses[0] != "10.244.255.1" || slice.Labels["kubernetes.io/service-name"] != "sy-b" {
		t.Fatalf("EndpointSlice sy-b %+v, want the pool address of b", slice)
	}
}

// TestPlacementPoolObjectsOnRealAPIServer checks, in pool mode against a real API
// server, the objects a Gateway gets: its spec.infrastructure labels and annotations
// reach its headless Service and EndpointSlice (and leave them when dropped); a
// Gateway's own parameters ConfigMap is read; and deleting a Gateway lets the garbage
// collector remove both objects, which nothing then recreates.
func TestPlacementPoolObjectsOnRealAPIServer(t *testing.T) {
	c := cluster.Start(t)
	c.InstallGatewayAPI(t)
	ctx := context.Background()
	h := &placementHarness{t: t, kube: kubernetes.NewForConfigOrDie(c.Config),
		gw: gwclient.NewForConfigOrDie(c.Config).GatewayV1()}
	h.sync = placement.NewServiceSync(h.kube)
	must(t, create(h.gw.GatewayClasses().Create(ctx, &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "switchyard"},
		Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}}, metav1.CreateOptions{})))
	g := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "infra", Namespace: "default"}, Spec: gwv1.GatewaySpec{
		GatewayClassName: "switchyard",
		Infrastructure: &gwv1.GatewayInfrastructure{
			Labels:      map[gwv1.LabelKey]gwv1.LabelValue{"team": "web", "tier": "edge"},
			Annotations: map[gwv1.AnnotationKey]gwv1.AnnotationValue{"note": "hi"},
		},
		Listeners: []gwv1.Listener{{Name: "http", Protocol: gwv1.HTTPProtocolType, Port: 8080}},
	}}
	g, err := h.gw.Gateways("default").Create(ctx, g, metav1.CreateOptions{})
	must(t, err)
	pool, err := placement.NewPoolAllocator(placement.PoolConfig{Addresses: []string{"10.244.255.0/24"}})
	must(t, err)
	h.settle(pool)
	byLabel := metav1.ListOptions{LabelSelector: "gateway.networking.k8s.io/gateway-name=infra"}
	services, err := h.kube.CoreV1().Services("default").List(ctx, byLabel)
	must(t, err)
	slices, err := h.kube.DiscoveryV1().EndpointSlices("default").List(ctx, byLabel)
	must(t, err)
	if len(services.Items) != 1 || len(slices.Items) != 1 {
		t.Fatalf("%d Services and %d EndpointSlices carry the Gateway's name, want one each", len(services.Items), len(slices.Items))
	}
	for _, o := range []metav1.Object{&services.Items[0], &slices.Items[0]} {
		if l, a := o.GetLabels(), o.GetAnnotations(); l["team"] != "web" || l["tier"] != "edge" || a["note"] != "hi" {
			t.Errorf("%s labels %v annotations %v, want the infrastructure ones", o.GetName(), l, a)
		}
	}

	// Dropping a label removes it; a parameters ConfigMap that exists is accepted.
	must(t, create(h.kube.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "gw-params", Namespace: "default"},
		Data:       map[string]string{placement.ParamServiceType: "ClusterIP"},
	}, metav1.CreateOptions{})))
	g, err = h.gw.Gateways("default").Get(ctx, "infra", metav1.GetOptions{})
	must(t, err)
	delete(g.Spec.Infrastructure.Labels, "tier")
	g.Spec.Infrastructure.ParametersRef = &gwv1.LocalParametersReference{Kind: "ConfigMap", Name: "gw-params"}
	must(t, create(h.gw.Gateways("default").Update(ctx, g, metav1.UpdateOptions{})))
	res := h.settle(pool)
	if p := res.Placements[types.NamespacedName{Namespace: "default", Name: "infra"}]; p.Problem != nil {
		t.Fatalf("placement %+v", p.Problem)
	}
	if svc := h.service("sy-infra"); svc.Labels["tier"] != "" || svc.Labels["team"] != "web" {
		t.Errorf("labels %v, want tier dropped and team kept", svc.Labels)
	}

	must(t, h.gw.Gateways("default").Delete(ctx, "infra", metav1.DeleteOptions{}))
	h.settle(pool)
	waitServiceGone(t, h.kube, "sy-infra")
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := h.kube.DiscoveryV1().EndpointSlices("default").Get(ctx, "sy-infra", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("EndpointSlice sy-infra still exists (last error %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func createGateway(t *testing.T, gw gwtyped.GatewayV1Interface, name string, ports ...gwv1.PortNumber) {
	t.Helper()
	g := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "switchyard"}}
	for _, p := range ports {
		g.Spec.Listeners = append(g.Spec.Listeners, gwv1.Listener{
			Name: gwv1.SectionName("p" + strconv.Itoa(int(p))), Protocol: gwv1.HTTPProtocolType, Port: p})
	}
	must(t, create(gw.Gateways("default").Create(context.Background(), g, metav1.CreateOptions{})))
}

func setClassServiceType(t *testing.T, h *placementHarness, serviceType string) {
	t.Helper()
	ctx := context.Background()
	must(t, create(h.kube.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "switchyard-params", Namespace: "default"},
		Data:       map[string]string{placement.ParamServiceType: serviceType},
	}, metav1.CreateOptions{})))
	class, err := h.gw.GatewayClasses().Get(ctx, "switchyard", metav1.GetOptions{})
	must(t, err)
	ns := gwv1.Namespace("default")
	class.Spec.ParametersRef = &gwv1.ParametersReference{Kind: "ConfigMap", Name: "switchyard-params", Namespace: &ns}
	must(t, create(h.gw.GatewayClasses().Update(ctx, class, metav1.UpdateOptions{})))
}

// waitServiceGone waits for a Service to be deleted (by ServiceSync, or by the
// garbage collector through its ownerReference, whichever is first).
func waitServiceGone(t *testing.T, kube kubernetes.Interface, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := kube.CoreV1().Services("default").Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Service %s still exists (last error %v)", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
