package translate

import (
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// Translate turns the input objects into a data-plane snapshot and the status of every
// object this controller owns. It reads nothing but its input, never panics, and gives
// byte-identical output for equal input whatever the order of the input slices.
func Translate(in *Input) *Output {
	if in == nil {
		in = &Input{}
	}
	ix := newIndex(in)
	gateways := ix.ownedGateways()
	claimSockets(gateways)
	out := &Output{
		GatewayClasses: ix.gatewayClassStatuses(),
		Gateways:       map[types.NamespacedName]gwv1.GatewayStatus{},
		HTTPRoutes:     ix.attachRoutes(gateways),
		ListenerSets:   listenerSetStatuses(gateways, ix.opts.Now),
	}
	for _, gs := range gateways {
		st := ix.btls.withResolvedRefs(gs, gs.status(ix.opts.Now), ix.opts.Now)
		gs.reportListenerSets(&st)
		out.Gateways[gs.key] = st
	}
	out.BackendTLSPolicies = ix.btls.statuses(ix.opts.Now)
	snap := &config.Snapshot{SchemaVersion: config.SchemaVersion, Listeners: buildListeners(gateways)}
	snap.Backends = ix.referencedBackends(snap.Listeners)
	// The mesh's default routes take TrafficPolicies too, so the mesh is built
	// before policies settle the backends and report.
	snap.Mesh = ix.buildMesh(snap.Backends)
	ix.traffic.applyToBackends(snap.Backends)
	if snap.Mesh != nil {
		ix.traffic.applyToBackends(snap.Mesh.Backends)
	}
	out.TrafficPolicies = ix.traffic.statuses(ix.opts.Now)
	out.Rollouts = ix.rollouts.results(ix, allBackends(snap), ix.opts.Now)
	v := snapshotVersions(snap)
	snap.RoutesVersion, snap.Version = v.routes, v.version
	if snap.Mesh != nil {
		snap.Mesh.RoutesVersion = v.meshRoutes
		snap.EdgeVersion = v.edge
	}
	out.Snapshot = snap
	return out
}
