package dataplane

import (
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/mesh"
	"github.com/switchyard-dev/switchyard/gateway/observe"
	"github.com/switchyard-dev/switchyard/gateway/server"
	"github.com/switchyard-dev/switchyard/plugins"
)

// MeshListener names the node socket in BindErrors and Addr.
const MeshListener = "mesh"

// NodeOptions make an Engine a node replica's: besides the snapshot's listeners it
// serves the snapshot's mesh (east-west) on a socket of its own, to the Pods of its
// node. Without them the engine ignores Snapshot.Mesh, as edge replicas do.
type NodeOptions struct {
	// Address and Port are where the node socket listens; an empty Address means
	// every interface, port 0 a free port (for tests; Addr tells which).
	Address string
	Port    int
	// Callers maps a request's source address to the Pod of this node that sent it.
	// Requests from any other address are refused. Required.
	Callers mesh.Callers
	// Egress governs requests to destinations outside the mesh. The engine fills in
	// Egress.ClusterIP from the mesh it serves.
	Egress mesh.EgressOptions
	// Tunnel tunes CONNECT tunnels to Services.
	Tunnel mesh.TunnelOptions
	// MaxEdges bounds the distinct edges of the service graph statistics
	// (MeshEdges); zero means mesh.DefaultMaxEdges.
	MaxEdges int
}

// node is the engine's node replica state; nil on other replicas.
type node struct {
	callers mesh.Callers
	tunnels *mesh.Tunnels
	egress  *mesh.Egress
	edges   *mesh.EdgeStats
	spec    server.Spec
	handler *meshHandler
}

// newNode builds the node state of e from opts.
func newNode(e *Engine, opts *NodeOptions) *node {
	n := &node{callers: opts.Callers, edges: mesh.NewEdgeStats(opts.MaxEdges)}
	if n.callers == nil {
		// Without a source of callers every request is refused, never proxied.
		e.logger.Warn("node replica has no source of callers: every east-west request will be refused")
		n.callers = mesh.StaticCallers(nil)
	}
	if opts.Tunnel.Logger == nil {
		opts.Tunnel.Logger = e.logger
	}
	n.tunnels = mesh.NewTunnels(opts.Tunnel)
	egress := opts.Egress
	if egress.Logger == nil {
		egress.Logger = e.logger
	}
	egress.ClusterIP = e.isMeshClusterIP
	n.egress = mesh.NewEgress(egress)
	n.handler = &meshHandler{engine: e, node: n}
	n.spec = server.Spec{Name: MeshListener, Address: opts.Address, Port: opts.Port, Handler: n.handler}
	return n
}

// isMeshClusterIP reports whether addr is a cluster IP of a Service the engine
// serves.
func (e *Engine) isMeshClusterIP(addr netip.Addr) bool {
	gen := e.current.Load()
	return gen != nil && gen.mesh != nil && gen.mesh.index.ClusterIP(addr)
}

// meshSet is the compiled form of a snapshot's mesh. It is immutable, and shared by
// every generation whose mesh has the same Services.
type meshSet struct {
	// routesVersion and domain are the Mesh.RoutesVersion and ClusterDomain it was
	// compiled from; see reusable.
	routesVersion, domain string
	index                 *mesh.Index
	// backendNames are the backends the Services' routes and ports refer to, sorted.
	backendNames []string
	// observer observes the node socket's requests; nil when the engine has no
	// Observer. It is resolved with every compilation, as listeners' are, so that
	// the metrics keep it among those in use.
	observer *observe.Listener
}

// reusable reports whether m's Services are those the set was compiled from: its
// producer promises that an unchanged RoutesVersion means unchanged Services. A mesh
// without a RoutesVersion is always compiled, and a nil set (no node role, or no
// mesh compiled yet) never reuses.
func (ms *meshSet) reusable(m *config.Mesh) bool {
	if ms == nil {
		return false
	}
	if m == nil {
		return ms.index.Spec() == nil || len(ms.index.Spec().Services) == 0
	}
	return m.RoutesVersion != "" && m.RoutesVersion == ms.routesVersion && m.ClusterDomain == ms.domain
}

// compileMesh builds the mesh set of m with the rule handlers of pctx.
func (e *Engine) compileMesh(pctx plugins.Context, m *config.Mesh) (*meshSet, error) {
	index, err := mesh.Compile(m, e.ruleFactory(pctx))
	if err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	ms := &meshSet{index: index, backendNames: meshReferencedBackends(m), observer: e.observer.Listener(MeshListener)}
	if m != nil {
		ms.routesVersion, ms.domain = m.RoutesVersion, m.ClusterDomain
	}
	return ms, nil
}

// meshReferencedBackends lists, sorted and once each, the backends the mesh's routes
// and ports refer to.
func meshReferencedBackends(m *config.Mesh) []string {
	if m == nil {
		return nil
	}
	seen := map[string]bool{}
	for i := range m.Services {
		for j := range m.Services[i].Ports {
			p := &m.Services[i].Ports[j]
			if p.Backend != "" {
				seen[p.Backend] = true
			}
			markRoutes(seen, p.Routes)
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// backendsOf returns the backends a snapshot's generation serves: on a node replica
// those of the snapshot and of its mesh, with the mesh's default outlier detection
// in those that have none of their own; elsewhere the snapshot's alone.
func (e *Engine) backendsOf(snap *config.Snapshot) []config.Backend {
	if e.node == nil || snap.Mesh == nil {
		return snap.Backends
	}
	m := snap.Mesh
	out := make([]config.Backend, 0, len(snap.Backends)+len(m.Backends))
	out = append(append(out, snap.Backends...), m.Backends...)
	if od := m.DefaultOutlierDetection; od != nil {
		for i := range out {
			if out[i].OutlierDetection == nil {
				out[i].OutlierDetection = od
			}
		}
	}
	return out
}

// validateNode checks what a node replica needs of snap beyond Validate.
func (e *Engine) validateNode(snap *config.Snapshot) error {
	if e.node == nil {
		return nil
	}
	return snap.ValidateMeshServing()
}

// checkMeshReferences reports the backends the serving mesh refers to that backends
// lacks.
func (ms *meshSet) checkReferences(backends []config.Backend) error {
	if ms == nil || len(ms.backendNames) == 0 {
		return nil
	}
	defined := make(map[string]bool, len(backends))
	for i := range backends {
		defined[backends[i].Name] = true
	}
	var missing []string
	for _, name := range ms.backendNames {
		if !defined[name] {
			missing = append(missing, fmt.Sprintf("%q", name))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("backends %s are referenced by mesh routes but not defined", strings.Join(missing, ", "))
	}
	return nil
}

// servedMesh is the mesh a generation that reuses old's compiled mesh reports: snap's
// backends and settings with the Services old's index was compiled from (and points
// into).
func servedMesh(old *meshSet, snap *config.Snapshot) *config.Mesh {
	if snap.Mesh == nil || old == nil || old.index.Spec() == nil {
		return snap.Mesh
	}
	m := *snap.Mesh
	m.Services = old.index.Spec().Services
	return &m
}

// MeshEdges returns the service graph statistics of a node replica: requests per
// calling workload and Service (or egress host), cumulative since start. It is
// empty on other replicas.
func (e *Engine) MeshEdges() mesh.EdgeReport {
	if e.node == nil {
		return mesh.EdgeReport{}
	}
	return e.node.edges.Report()
}

// MeshHandler returns the handler of the node socket, which serves the mesh of the
// current generation; nil when the engine is not a node replica's.
func (e *Engine) MeshHandler() http.Handler {
	if e.node == nil {
		return nil
	}
	return e.node.handler
}
