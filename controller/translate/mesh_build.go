package translate

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// buildMesh renders Snapshot.Mesh once every route is attached: each Service with
// its ports, their routes (or default routes), and the backends that only the mesh
// uses (edge holds the snapshot's other backends). Nil when the mesh is off or there
// is no Service.
func (ix *index) buildMesh(edge []config.Backend) *config.Mesh {
	if ix.mesh == nil || len(ix.mesh.services) == 0 {
		return nil
	}
	m := &config.Mesh{
		ClusterDomain:           ix.clusterDomain(),
		Services:                make([]config.MeshService, 0, len(ix.mesh.services)),
		DefaultOutlierDetection: defaultMeshOutlierDetection(),
	}
	for _, ms := range ix.mesh.services {
		out := config.MeshService{
			Namespace:  ms.key.Namespace,
			Name:       ms.key.Name,
			ClusterIPs: ms.clusterIPs,
			Ports:      make([]config.MeshPort, 0, len(ms.ports)),
		}
		for _, p := range ms.ports {
			out.Ports = append(out.Ports, ix.meshPort(ms, p))
		}
		m.Services = append(m.Services, out)
	}
	m.Backends = ix.meshOnlyBackends(m.Services, edge)
	return m
}

// meshPort renders one Service port: its backend, and its routes sorted by name, or
// its default route when no route is attached.
func (ix *index) meshPort(ms *meshService, p *meshPort) config.MeshPort {
	ref := gwv1.BackendObjectReference{Name: gwv1.ObjectName(ms.key.Name), Port: ptrTo(gwv1.PortNumber(p.port))}
	res := ix.resolveBackend(ms.key.Namespace, ref)
	out := config.MeshPort{Name: p.name, Port: int(p.port), Backend: res.name}
	if len(p.routes) == 0 {
		out.Routes = []config.Route{ix.defaultMeshRoute(ms, p, ref, res)}
		return out
	}
	slices.SortStableFunc(p.routes, func(a, b config.Route) int { return strings.Compare(a.Name, b.Name) })
	out.Routes = p.routes
	return out
}

// defaultMeshRoute is the route of a port that no route is attached to: one rule
// that sends everything to the port's backend and retries connect failures, shifted
// by a Rollout of the Service and with the Service's TrafficPolicies applied, as a
// rule of an HTTPRoute with a backendRef to the port would be.
func (ix *index) defaultMeshRoute(ms *meshService, p *meshPort, ref gwv1.BackendObjectReference, res backendResolution) config.Route {
	spec := gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: ref}}}}
	rule := config.Rule{Retry: defaultMeshRetry()}
	if res.name != "" {
		rule.Backends = []config.BackendRef{{Backend: res.name, Weight: 1}}
		ix.shiftDefaultMeshRoute(ms, p, &rule, &spec)
	} else {
		rule.Backends = []config.BackendRef{{Weight: 1, Invalid: &config.InvalidBackend{
			StatusCode: invalidBackendStatus, Reason: res.detail + res.tlsProblem,
		}}}
	}
	where := func() string { return fmt.Sprintf("the default mesh route of Service %s port %d", ms.key, p.port) }
	rule = ix.traffic.defaultMeshRule(serviceParent(ms.key), rule, &spec, where)
	return config.Route{Name: ms.key.String(), Rules: []config.Rule{rule}}
}

// shiftDefaultMeshRoute applies the Rollout, if any, that shifts the default route
// of a Service port, exactly as it shifts an HTTPRoute rule that sends to the port.
func (ix *index) shiftDefaultMeshRoute(ms *meshService, p *meshPort, rule *config.Rule, spec *gwv1.HTTPRouteRule) {
	plan := ix.rollouts.byMeshDefault[backendOrigin{service: ms.key, port: p.port}]
	if plan == nil {
		return
	}
	c := &routeCompiler{
		ix:     ix,
		route:  &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ms.key.Namespace, Name: ms.key.Name}},
		result: &compiledRoute{},
	}
	c.shiftRule(rule, spec, plan)
}

// meshOnlyBackends lists the backends that the mesh names (ports and routes) and
// edge does not hold, sorted by name.
func (ix *index) meshOnlyBackends(services []config.MeshService, edge []config.Backend) []config.Backend {
	used := map[string]bool{}
	for i := range services {
		for j := range services[i].Ports {
			p := &services[i].Ports[j]
			if p.Backend != "" {
				used[p.Backend] = true
			}
			for k := range p.Routes {
				markRuleBackends(used, p.Routes[k].Rules)
			}
		}
	}
	for i := range edge {
		delete(used, edge[i].Name)
	}
	out := make([]config.Backend, 0, len(used))
	for _, name := range sortedKeys(used) {
		out = append(out, ix.backends[name])
	}
	return out
}

// allBackends is the snapshot's backends and the mesh's, sorted by name.
func allBackends(snap *config.Snapshot) []config.Backend {
	if snap.Mesh == nil || len(snap.Mesh.Backends) == 0 {
		return snap.Backends
	}
	out := slices.Concat(snap.Backends, snap.Mesh.Backends)
	slices.SortFunc(out, func(a, b config.Backend) int { return strings.Compare(a.Name, b.Name) })
	return out
}
