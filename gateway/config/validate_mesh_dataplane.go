package config

import (
	"errors"
	"fmt"
	"net/netip"
)

// ValidateMeshServing checks what a node replica needs of s.Mesh to serve it: the
// mesh's own backends (named apart from s.Backends), and Services with names, valid
// and unshared cluster IPs, distinct ports from 1 to 65535, and routes and port
// backends that refer only to backends of s.Backends or Mesh.Backends. It does not
// check s.Backends or s.Listeners; Validate does. A nil Mesh is valid.
func (s *Snapshot) ValidateMeshServing() error {
	m := s.Mesh
	if m == nil {
		return nil
	}
	v := &validator{backends: make(map[string]bool, len(s.Backends)+len(m.Backends))}
	for i := range s.Backends {
		v.backends[s.Backends[i].Name] = true
	}
	for i := range m.Backends {
		v.backend(&m.Backends[i])
	}
	if od := m.DefaultOutlierDetection; od != nil && (od.Consecutive5xx < 0 || od.ConsecutiveGatewayErrors < 0 ||
		od.Interval < 0 || od.BaseEjectionTime <= 0 || od.MaxEjectionPercent < 0 || od.MaxEjectionPercent > 100) {
		v.add("mesh", "default outlier detection needs a positive baseEjectionTime, counts not negative and maxEjectionPercent 0-100")
	}
	names := map[string]bool{}
	ips := map[netip.Addr]string{}
	for i := range m.Services {
		svc := &m.Services[i]
		where := fmt.Sprintf("mesh service %s/%s", svc.Namespace, svc.Name)
		if svc.Namespace == "" || svc.Name == "" {
			v.add(where, "namespace and name are required")
		}
		if names[svc.Namespace+"/"+svc.Name] {
			v.add(where, "the service is listed twice")
		}
		names[svc.Namespace+"/"+svc.Name] = true
		v.meshClusterIPs(where, svc, ips)
		v.meshPorts(where, svc.Ports)
	}
	return errors.Join(v.errs...)
}

// meshClusterIPs checks that a Service's cluster IPs are addresses no other Service
// has; seen maps those of the Services checked so far to their Service.
func (v *validator) meshClusterIPs(where string, svc *MeshService, seen map[netip.Addr]string) {
	for _, text := range svc.ClusterIPs {
		addr, err := netip.ParseAddr(text)
		if err != nil || addr.Zone() != "" {
			v.add(where, "cluster IP %q is not an IP address", text)
			continue
		}
		addr = addr.Unmap()
		if other, dup := seen[addr]; dup {
			v.add(where, "cluster IP %s is also service %s's", addr, other)
		}
		seen[addr] = svc.Namespace + "/" + svc.Name
	}
}

// meshPorts checks a Service's ports and their routes.
func (v *validator) meshPorts(where string, ports []MeshPort) {
	seen := map[int]bool{}
	for i := range ports {
		p := &ports[i]
		pwhere := fmt.Sprintf("%s port %d", where, p.Port)
		if p.Port < 1 || p.Port > 65535 {
			v.add(pwhere, "port is out of range")
		}
		if seen[p.Port] {
			v.add(pwhere, "the port is listed twice")
		}
		seen[p.Port] = true
		if p.Backend != "" && !v.backends[p.Backend] {
			v.add(pwhere, "backend %q is not defined", p.Backend)
		}
		for j := range p.Routes {
			v.route(pwhere, &p.Routes[j])
		}
	}
}
