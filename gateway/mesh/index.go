package mesh

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/router"
)

// DefaultClusterDomain is the cluster's DNS suffix when config.Mesh names none.
const DefaultClusterDomain = "cluster.local"

// Index is the compiled form of a config.Mesh: every Service by each name a Pod may
// call it by and by its cluster IPs, with one route table per Service port. It is
// immutable and safe for concurrent use; the data plane builds one per mesh routes
// version and swaps it in whole.
type Index struct {
	// spec is the mesh compiled; the index keeps pointers into it.
	spec *config.Mesh
	// qualified maps "<service>.<namespace>" to its Service. The longer forms
	// ("….svc" and "….svc.<domain>") are looked up here once their suffix is
	// stripped, so each Service has one key.
	qualified map[string]*Service
	// bare maps a namespace, then a Service name within it, to the Service, for
	// destinations named without a namespace.
	bare map[string]map[string]*Service
	// byIP maps each cluster IP to its Service.
	byIP map[netip.Addr]*Service
	// svcSuffix is ".svc" and domainSuffix ".svc.<cluster domain>".
	svcSuffix, domainSuffix string
	services                []*Service
}

// Service is one cluster Service of the mesh.
type Service struct {
	// Spec is the Service as the mesh configuration describes it.
	Spec *config.MeshService
	// Key is "<namespace>/<name>", for logs and edge statistics.
	Key string
	// Ports are the Service's ports, in the order of Spec.Ports.
	Ports []*Port
}

// Port is one port of a Service: what its HTTP requests are routed with and where
// its CONNECT tunnels go.
type Port struct {
	// Spec is the port as the mesh configuration describes it.
	Spec *config.MeshPort
	// Service is the Service the port belongs to.
	Service *Service
	// Name is "<namespace>/<service>:<port>", the name of the port's synthetic
	// virtual host, for logs.
	Name string
	// Table routes the port's HTTP requests; every request selects its only virtual
	// host, which holds Spec.Routes.
	Table *router.Table
}

// Port returns the Service's port numbered n, or nil.
func (s *Service) Port(n int) *Port {
	for _, p := range s.Ports {
		if p.Spec.Port == n {
			return p
		}
	}
	return nil
}

// Compile builds the index of m, compiling each port's routes with f exactly as a
// listener's routes are compiled. The index keeps pointers into m, which must not
// change afterwards. A nil m gives an empty index. Compile does not validate m (see
// config.Snapshot.ValidateMeshServing) beyond what it needs: two Services claiming
// one cluster IP, or a Service listed twice, is an error.
func Compile(m *config.Mesh, f router.HandlerFactory) (*Index, error) {
	if m == nil {
		m = &config.Mesh{}
	}
	domain := strings.ToLower(strings.TrimSuffix(m.ClusterDomain, "."))
	if domain == "" {
		domain = DefaultClusterDomain
	}
	ix := &Index{
		spec:         m,
		qualified:    make(map[string]*Service, len(m.Services)),
		bare:         map[string]map[string]*Service{},
		byIP:         map[netip.Addr]*Service{},
		svcSuffix:    ".svc",
		domainSuffix: ".svc." + domain,
		services:     make([]*Service, 0, len(m.Services)),
	}
	for i := range m.Services {
		spec := &m.Services[i]
		svc, err := compileService(spec, f)
		if err != nil {
			return nil, err
		}
		if err := ix.add(svc); err != nil {
			return nil, err
		}
	}
	return ix, nil
}

// compileService compiles the route tables of one Service's ports.
func compileService(spec *config.MeshService, f router.HandlerFactory) (*Service, error) {
	svc := &Service{Spec: spec, Key: spec.Namespace + "/" + spec.Name, Ports: make([]*Port, 0, len(spec.Ports))}
	for j := range spec.Ports {
		ps := &spec.Ports[j]
		name := fmt.Sprintf("%s:%d", svc.Key, ps.Port)
		// The port's routes live in a synthetic listener with one virtual host that
		// every host selects: the destination has chosen the Service already.
		l := &config.Listener{Name: name, Port: ps.Port, Protocol: config.ProtocolHTTP,
			VirtualHosts: []config.VirtualHost{{Name: name, Routes: ps.Routes}}}
		table, err := router.Compile(l, f)
		if err != nil {
			return nil, fmt.Errorf("service %s port %d: %w", svc.Key, ps.Port, err)
		}
		svc.Ports = append(svc.Ports, &Port{Spec: ps, Service: svc, Name: name, Table: table})
	}
	return svc, nil
}

// add makes svc reachable by its names and cluster IPs.
func (ix *Index) add(svc *Service) error {
	ns, name := strings.ToLower(svc.Spec.Namespace), strings.ToLower(svc.Spec.Name)
	if ns == "" || name == "" || strings.Contains(ns, ".") || strings.Contains(name, ".") {
		return fmt.Errorf("service %q: namespace and name must be non-empty DNS labels", svc.Key)
	}
	key := name + "." + ns
	if _, dup := ix.qualified[key]; dup {
		return fmt.Errorf("service %s is listed twice", svc.Key)
	}
	ix.qualified[key] = svc
	inNS := ix.bare[ns]
	if inNS == nil {
		inNS = map[string]*Service{}
		ix.bare[ns] = inNS
	}
	inNS[name] = svc
	for _, text := range svc.Spec.ClusterIPs {
		addr, err := netip.ParseAddr(text)
		if err != nil {
			return fmt.Errorf("service %s: cluster IP %q: %w", svc.Key, text, err)
		}
		addr = addr.Unmap()
		if other, dup := ix.byIP[addr]; dup {
			return fmt.Errorf("service %s: cluster IP %s is also service %s's", svc.Key, addr, other.Key)
		}
		ix.byIP[addr] = svc
	}
	ix.services = append(ix.services, svc)
	return nil
}

// Resolve returns the Service a destination names, or nil when it names none of the
// mesh (egress). A name without a dot is a Service of the caller's namespace; the
// others are "<service>.<namespace>", optionally followed by ".svc" and the cluster
// domain, as cluster DNS resolves them. It does not allocate.
func (ix *Index) Resolve(d Destination, callerNamespace string) *Service {
	if ix == nil {
		return nil
	}
	if d.Addr.IsValid() {
		return ix.byIP[d.Addr]
	}
	host := d.Host
	if !strings.Contains(host, ".") {
		return ix.bare[callerNamespace][host]
	}
	// The name as given first: "foo.svc" is Service foo of namespace svc, as the
	// DNS search path of a Pod finds it, before it is "foo.svc" with the suffix.
	if svc := ix.qualified[host]; svc != nil {
		return svc
	}
	switch {
	case strings.HasSuffix(host, ix.domainSuffix):
		host = host[:len(host)-len(ix.domainSuffix)]
	case strings.HasSuffix(host, ix.svcSuffix):
		host = host[:len(host)-len(ix.svcSuffix)]
	default:
		return nil
	}
	return ix.qualified[host]
}

// ClusterIP reports whether addr is a cluster IP of a Service of the mesh.
func (ix *Index) ClusterIP(addr netip.Addr) bool {
	if ix == nil {
		return false
	}
	_, ok := ix.byIP[addr.Unmap()]
	return ok
}

// Services returns the Services of the index in the mesh's order. The slice is
// shared and must not be modified.
func (ix *Index) Services() []*Service {
	if ix == nil {
		return nil
	}
	return ix.services
}

// Spec returns the mesh the index was compiled from.
func (ix *Index) Spec() *config.Mesh {
	if ix == nil {
		return nil
	}
	return ix.spec
}
