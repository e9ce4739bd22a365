package translate

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

// mesh1k is a cluster of 1,000 Services (20 namespaces of 50) with 8,000 endpoints
// and 1,000 Gateway routes, for the east-west translation.
var mesh1k = syntheticShape{
	Namespaces:           20,
	Gateways:             5,
	RoutesPerNamespace:   50,
	ServicesPerNamespace: 50,
	SlicesPerService:     2,
	EndpointsPerSlice:    4,
}

// syntheticMesh is a generated cluster with the mesh on: every even-numbered Service
// has a producer route with a header canary and a 90/10 split over the next two
// Services, and every tenth Service a TrafficPolicy that sets rule fields only (so
// that what the Gateways serve is the same with the mesh on or off). It returns the
// names of the routed Services.
func syntheticMesh(tb testing.TB, shape syntheticShape) (*Input, map[types.NamespacedName]bool) {
	tb.Helper()
	in, _ := syntheticCluster(tb, shape)
	in.Options.Mesh = true
	routed := map[types.NamespacedName]bool{}
	for n := range shape.Namespaces {
		ns := syntheticNamespace(n)
		for s := 0; s < shape.ServicesPerNamespace; s += 2 {
			in.HTTPRoutes = append(in.HTTPRoutes, syntheticMeshRoute(ns, s, shape.ServicesPerNamespace))
			routed[types.NamespacedName{Namespace: ns, Name: syntheticServiceName(s)}] = true
		}
		for s := 0; s < shape.ServicesPerNamespace; s += 10 {
			in.TrafficPolicies = append(in.TrafficPolicies, &v1alpha1.TrafficPolicy{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tp-" + syntheticServiceName(s), Generation: 1},
				Spec: v1alpha1.TrafficPolicySpec{
					TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{
						Kind: kindService, Name: gwv1.ObjectName(syntheticServiceName(s)),
					}}},
					Timeout: &v1alpha1.TimeoutPolicy{Request: ptrTo(gwv1.Duration("3s"))},
				},
			})
		}
	}
	return in, routed
}

// syntheticMeshRoute is the producer route of Service s of namespace ns.
func syntheticMeshRoute(ns string, s, services int) *gwv1.HTTPRoute {
	ref := func(i int, weight int32) gwv1.HTTPBackendRef {
		return gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{
			BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(syntheticServiceName(i % services)), Port: ptrTo(gwv1.PortNumber(80))},
			Weight:                 ptrTo(weight),
		}}
	}
	return &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mesh-" + syntheticServiceName(s), Generation: 1},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{
				Group: ptrTo(gwv1.Group(coreGroup)), Kind: ptrTo(gwv1.Kind(kindService)), Name: gwv1.ObjectName(syntheticServiceName(s)),
			}}},
			Rules: []gwv1.HTTPRouteRule{
				{
					Matches:     []gwv1.HTTPRouteMatch{{Headers: []gwv1.HTTPHeaderMatch{{Name: "X-Canary", Value: "true"}}}},
					BackendRefs: []gwv1.HTTPBackendRef{ref(s+2, 1)},
				},
				{BackendRefs: []gwv1.HTTPBackendRef{ref(s+1, 90), ref(s+2, 10)}},
			},
		},
	}
}

// TestSyntheticMeshTranslates checks the mesh of a generated cluster: every Service
// is there with its port and backend, routed ports carry their route and the others
// the default route, every mesh parentRef is accepted, the snapshot validates, and
// what the Gateways serve is exactly what they serve with the mesh off.
func TestSyntheticMeshTranslates(t *testing.T) {
	in, routed := syntheticMesh(t, mesh1k)
	out := Translate(in)
	snap := out.Snapshot
	if err := snap.Validate(); err != nil {
		t.Fatalf("snapshot does not validate: %v", err)
	}
	if snap.Mesh == nil || len(snap.Mesh.Services) != 1000 {
		t.Fatalf("the mesh has %d Services, want 1000", meshServiceCount(snap))
	}
	checkSyntheticMeshPorts(t, snap, routed)
	for key := range routed {
		st := out.HTTPRoutes[types.NamespacedName{Namespace: key.Namespace, Name: "mesh-" + key.Name}]
		if len(st.Parents) != 1 || !conditionTrue(st.Parents[0].Conditions, string(gwv1.RouteConditionAccepted)) {
			t.Errorf("mesh route of %s: status %+v, want one accepted parent", key, st.Parents)
		}
	}
	off := *in
	off.Options.Mesh = false
	edge := Translate(&off).Snapshot
	if edge.Mesh != nil {
		t.Fatal("the mesh is built with Options.Mesh off")
	}
	if !reflect.DeepEqual(edge.Listeners, snap.Listeners) || !reflect.DeepEqual(edge.Backends, snap.Backends) {
		t.Error("turning the mesh on changed what the Gateways serve")
	}
}

func meshServiceCount(s *config.Snapshot) int {
	if s.Mesh == nil {
		return 0
	}
	return len(s.Mesh.Services)
}

// checkSyntheticMeshPorts checks each Service's one port: its backend, in exactly
// one of the two backend lists with all its endpoints, and its routes.
func checkSyntheticMeshPorts(t *testing.T, snap *config.Snapshot, routed map[types.NamespacedName]bool) {
	t.Helper()
	backends := map[string]int{}
	for _, b := range allBackends(snap) {
		if _, dup := backends[b.Name]; dup {
			t.Errorf("backend %s is listed twice", b.Name)
		}
		backends[b.Name] = len(b.Endpoints)
	}
	for _, svc := range snap.Mesh.Services {
		key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
		if len(svc.Ports) != 1 {
			t.Fatalf("Service %s has %d ports, want 1", key, len(svc.Ports))
		}
		p := svc.Ports[0]
		want := fmt.Sprintf("%s:80", key)
		if p.Backend != want || backends[want] != mesh1k.SlicesPerService*mesh1k.EndpointsPerSlice {
			t.Errorf("Service %s: backend %q with %d endpoints, want %q with %d", key, p.Backend, backends[want], want, mesh1k.SlicesPerService*mesh1k.EndpointsPerSlice)
		}
		wantRoute := key.String()
		if routed[key] {
			wantRoute = key.Namespace + "/mesh-" + key.Name
		}
		if len(p.Routes) != 1 || p.Routes[0].Name != wantRoute {
			t.Errorf("Service %s: routes %v, want only %s", key, routeNames(p.Routes), wantRoute)
			continue
		}
		// Every tenth Service has a policy with a 3s timeout, which the rules of its
		// routes take (as their parent), and the rules that send to it.
		var n int
		if _, err := fmt.Sscanf(key.Name, "svc-%d", &n); err != nil {
			t.Fatal(err)
		}
		hasPolicy := func(s int) bool { return s%mesh1k.ServicesPerNamespace%10 == 0 }
		sendsTo := [][]int{{n}}
		if routed[key] {
			sendsTo = [][]int{{n, n + 2}, {n, n + 1, n + 2}}
		}
		for i, rule := range p.Routes[0].Rules {
			want := slices.ContainsFunc(sendsTo[i], hasPolicy)
			got := rule.Timeouts != nil && rule.Timeouts.Request == config.Duration(3*time.Second)
			if got != want {
				t.Errorf("Service %s rule %d: policy timeout %v, want %v", key, i, got, want)
			}
		}
	}
}

func routeNames(routes []config.Route) []string {
	out := make([]string, 0, len(routes))
	for _, r := range routes {
		out = append(out, r.Name)
	}
	return out
}

// TestMeshVersions checks what changes which version: endpoints change the snapshot
// version only; a mesh route changes the mesh's routes version too, never the
// Gateways' routes version; and input order changes nothing.
func TestMeshVersions(t *testing.T) {
	in, _ := syntheticMesh(t, clusterSmall)
	first := Translate(in).Snapshot
	if first.Mesh == nil || first.Mesh.RoutesVersion == "" {
		t.Fatal("the mesh has no routes version")
	}
	again := Translate(reversed(in)).Snapshot
	if again.Version != first.Version || again.Mesh.RoutesVersion != first.Mesh.RoutesVersion {
		t.Fatal("versions depend on input order")
	}
	moved := in.EndpointSlices[0].DeepCopy()
	moved.Endpoints[0].Addresses = []string{"10.250.0.1"}
	churned := *in
	churned.EndpointSlices = append([]*discoveryv1.EndpointSlice{moved}, in.EndpointSlices[1:]...)
	next := Translate(&churned).Snapshot
	if next.Version == first.Version || next.Mesh.RoutesVersion != first.Mesh.RoutesVersion || next.RoutesVersion != first.RoutesVersion {
		t.Errorf("an endpoint change: version %v, mesh routes version %v, routes version %v; want only the first changed",
			next.Version != first.Version, next.Mesh.RoutesVersion != first.Mesh.RoutesVersion, next.RoutesVersion != first.RoutesVersion)
	}
	edited := *in
	edited.HTTPRoutes = slices.Clone(in.HTTPRoutes)
	for i, r := range edited.HTTPRoutes {
		if r.Name == "mesh-svc-00" {
			r = r.DeepCopy()
			r.Spec.Rules[1].BackendRefs[0].Weight = ptrTo(int32(80))
			edited.HTTPRoutes[i] = r
		}
	}
	routed := Translate(&edited).Snapshot
	if routed.Version == first.Version || routed.Mesh.RoutesVersion == first.Mesh.RoutesVersion || routed.RoutesVersion != first.RoutesVersion {
		t.Errorf("a mesh route change: version %v, mesh routes version %v, routes version %v; want the first two changed",
			routed.Version != first.Version, routed.Mesh.RoutesVersion != first.Mesh.RoutesVersion, routed.RoutesVersion != first.RoutesVersion)
	}
	// The edge version is the version of the same snapshot without its mesh, so a
	// change to the mesh alone leaves it, and what edge replicas are sent, alone.
	withoutMesh := *first
	withoutMesh.Mesh = nil
	if first.EdgeVersion == "" || first.EdgeVersion == first.Version || first.EdgeVersion != snapshotVersions(&withoutMesh).version {
		t.Errorf("edge version %q, version %q: want the version of the snapshot without its mesh", first.EdgeVersion, first.Version)
	}
	if routed.EdgeVersion != first.EdgeVersion || next.EdgeVersion == first.EdgeVersion {
		t.Error("the edge version moved with a mesh route change, or did not move with an endpoint change")
	}
}

// BenchmarkTranslateMesh1kServices translates the 1,000-Service cluster with the
// mesh off and on, for the cost of the east-west translation.
func BenchmarkTranslateMesh1kServices(b *testing.B) {
	in, _ := syntheticMesh(b, mesh1k)
	for _, mesh := range []bool{false, true} {
		b.Run(fmt.Sprintf("mesh=%v", mesh), func(b *testing.B) {
			c := *in
			c.Options.Mesh = mesh
			b.ReportAllocs()
			for b.Loop() {
				Translate(&c)
			}
		})
	}
}
