package translate

import (
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestSyntheticClusterTranslates proves that the benchmark input is what it claims
// to be: every generated route is accepted and attached where the generator says, the
// snapshot validates, and every Service and endpoint reaches it.
func TestSyntheticClusterTranslates(t *testing.T) {
	in, exp := syntheticCluster(t, cluster5k)
	if got := len(in.HTTPRoutes); got != 5000 {
		t.Fatalf("generated %d routes, want 5000", got)
	}
	out := Translate(in)
	snap := out.Snapshot
	if err := snap.Validate(); err != nil {
		t.Fatalf("snapshot does not validate: %v", err)
	}
	entries := 0
	for _, l := range snap.Listeners {
		for _, vh := range l.VirtualHosts {
			entries += len(vh.Routes)
		}
	}
	if entries != exp.RouteEntries {
		t.Errorf("snapshot holds %d route entries, want %d", entries, exp.RouteEntries)
	}
	if len(snap.Listeners) != cluster5k.Gateways*2 {
		t.Errorf("snapshot has %d sockets, want %d", len(snap.Listeners), cluster5k.Gateways*2)
	}
	checkSyntheticBackends(t, out, exp)
	checkSyntheticGateways(t, out, exp)
	checkSyntheticRoutes(t, in, out, exp)
}

func checkSyntheticBackends(t *testing.T, out *Output, exp syntheticExpectation) {
	t.Helper()
	endpoints := 0
	for _, b := range out.Snapshot.Backends {
		endpoints += len(b.Endpoints)
	}
	if len(out.Snapshot.Backends) != exp.Backends || endpoints != exp.Endpoints {
		t.Errorf("snapshot has %d backends with %d endpoints, want %d with %d",
			len(out.Snapshot.Backends), endpoints, exp.Backends, exp.Endpoints)
	}
}

func checkSyntheticGateways(t *testing.T, out *Output, exp syntheticExpectation) {
	t.Helper()
	if len(out.Gateways) != cluster5k.Gateways {
		t.Fatalf("%d Gateway statuses, want %d", len(out.Gateways), cluster5k.Gateways)
	}
	for key, st := range out.Gateways {
		if !conditionTrue(st.Conditions, string(gwv1.GatewayConditionProgrammed)) {
			t.Errorf("Gateway %s is not programmed: %+v", key, st.Conditions)
		}
		for _, l := range st.Listeners {
			want := exp.AttachedRoutes[key.Name+"/"+string(l.Name)]
			if l.AttachedRoutes != want {
				t.Errorf("listener %s/%s has %d attached routes, want %d", key, l.Name, l.AttachedRoutes, want)
			}
			if !conditionTrue(l.Conditions, string(gwv1.ListenerConditionProgrammed)) {
				t.Errorf("listener %s/%s is not programmed: %+v", key, l.Name, l.Conditions)
			}
		}
	}
}

func checkSyntheticRoutes(t *testing.T, in *Input, out *Output, exp syntheticExpectation) {
	t.Helper()
	if len(out.HTTPRoutes) != len(in.HTTPRoutes) {
		t.Fatalf("%d route statuses, want %d", len(out.HTTPRoutes), len(in.HTTPRoutes))
	}
	unresolved := 0
	for key, st := range out.HTTPRoutes {
		if len(st.Parents) != 1 {
			t.Fatalf("route %s has %d parent statuses, want 1", key, len(st.Parents))
		}
		conds := st.Parents[0].Conditions
		if !conditionTrue(conds, string(gwv1.RouteConditionAccepted)) {
			t.Errorf("route %s is not accepted: %+v", key, conds)
		}
		resolved := conditionTrue(conds, string(gwv1.RouteConditionResolvedRefs))
		if resolved == exp.UnresolvedRoutes[key] {
			t.Errorf("route %s: ResolvedRefs %v, want %v", key, resolved, !exp.UnresolvedRoutes[key])
		}
		if !resolved {
			unresolved++
		}
	}
	if unresolved == 0 || unresolved != len(exp.UnresolvedRoutes) {
		t.Errorf("%d routes have unresolved references, want %d (and more than none)", unresolved, len(exp.UnresolvedRoutes))
	}
	if _, ok := out.HTTPRoutes[types.NamespacedName{Namespace: "team-00", Name: "route-000"}]; !ok {
		t.Error("route team-00/route-000 has no status")
	}
}

func conditionTrue(conds []metav1.Condition, condType string) bool {
	for _, c := range conds {
		if c.Type == condType {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

// clusterSmall is a cluster large enough that its listeners are hashed in several
// chunks, and small enough to translate quickly under the race detector.
var clusterSmall = syntheticShape{
	Namespaces:           10,
	Gateways:             3,
	RoutesPerNamespace:   30,
	ServicesPerNamespace: 10,
	SlicesPerService:     2,
	EndpointsPerSlice:    2,
}

// TestSyntheticClusterIsDeterministic checks that a generated cluster translates to
// the same versions whatever the order of the input lists, and that changing one
// endpoint changes the snapshot version but not the routes version.
func TestSyntheticClusterIsDeterministic(t *testing.T) {
	in, _ := syntheticCluster(t, clusterSmall)
	if pieces := len(listenerPieces(Translate(in).Snapshot.Listeners)); pieces <= hashChunk {
		t.Fatalf("the listeners make %d pieces, too few to be hashed in several chunks", pieces)
	}
	first := Translate(in).Snapshot
	flipped := *in
	flipped.HTTPRoutes = reverseList(in.HTTPRoutes)
	flipped.EndpointSlices = reverseList(in.EndpointSlices)
	flipped.Services = reverseList(in.Services)
	again := Translate(&flipped).Snapshot
	if first.Version != again.Version || first.RoutesVersion != again.RoutesVersion {
		t.Fatalf("versions depend on input order: %s/%s then %s/%s", first.Version, first.RoutesVersion, again.Version, again.RoutesVersion)
	}
	moved := in.EndpointSlices[0].DeepCopy()
	moved.Endpoints[0].Addresses = []string{"10.250.0.1"}
	churned := *in
	churned.EndpointSlices = append([]*discoveryv1.EndpointSlice{moved}, in.EndpointSlices[1:]...)
	next := Translate(&churned).Snapshot
	if next.Version == first.Version {
		t.Error("an endpoint change left the snapshot version unchanged")
	}
	if next.RoutesVersion != first.RoutesVersion {
		t.Error("an endpoint change changed the routes version")
	}
}

func reverseList[T any](s []T) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// BenchmarkTranslate5kRoutes translates a cluster of 5,000 HTTPRoutes over 5
// Gateways and 2,500 Services with 20,000 endpoints.
func BenchmarkTranslate5kRoutes(b *testing.B) {
	in, _ := syntheticCluster(b, cluster5k)
	b.ReportAllocs()
	for b.Loop() {
		Translate(in)
	}
}
