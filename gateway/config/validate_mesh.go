package config

import (
	"fmt"
	"net"
	"strings"
)

// mesh checks the east-west configuration. It runs after the listeners are checked,
// so that a Gateway route naming a backend that only the mesh holds is reported (edge
// replicas are sent no mesh); mesh routes may name the backends of both lists.
func (v *validator) mesh(m *Mesh) {
	for i := range m.Backends {
		v.backend(&m.Backends[i])
	}
	if m.ClusterDomain != "" && !validDomain(m.ClusterDomain) {
		v.add("mesh", "cluster domain %q is not a lower-case DNS name", m.ClusterDomain)
	}
	if od := m.DefaultOutlierDetection; od != nil && !validOutlierDetection(od) {
		v.add("mesh", "default outlier detection needs a positive baseEjectionTime, counts not negative and maxEjectionPercent 0-100")
	}
	services := make(map[string]bool, len(m.Services))
	clusterIPs := map[string]string{}
	for i := range m.Services {
		s := &m.Services[i]
		name := s.Namespace + "/" + s.Name
		where := "mesh service " + name
		if s.Namespace == "" || s.Name == "" {
			v.add(where, "namespace and name must not be empty")
		}
		if services[name] {
			v.add(where, "is listed twice")
		}
		services[name] = true
		for _, ip := range s.ClusterIPs {
			if net.ParseIP(ip) == nil {
				v.add(where, "cluster IP %q is not an IP address", ip)
				continue
			}
			if other, taken := clusterIPs[ip]; taken {
				v.add(where, "cluster IP %s is also Service %s's", ip, other)
			}
			clusterIPs[ip] = name
		}
		v.meshPorts(where, s.Ports)
	}
}

// meshPorts checks the ports of one Service and their routes.
func (v *validator) meshPorts(where string, ports []MeshPort) {
	seen := make(map[int]bool, len(ports))
	for i := range ports {
		p := &ports[i]
		pwhere := fmt.Sprintf("%s port %d", where, p.Port)
		if p.Port < 1 || p.Port > 65535 {
			v.add(pwhere, "port is out of range")
		}
		if seen[p.Port] {
			v.add(pwhere, "port is listed twice")
		}
		seen[p.Port] = true
		if p.Backend != "" && !v.backends[p.Backend] {
			v.add(pwhere, "backend %q is not defined", p.Backend)
		}
		routes := make(map[string]bool, len(p.Routes))
		for j := range p.Routes {
			r := &p.Routes[j]
			if routes[r.Name] {
				v.add(pwhere+" route "+r.Name, "name is used twice")
			}
			routes[r.Name] = true
			if len(r.Hostnames) > 0 {
				v.add(pwhere+" route "+r.Name, "mesh routes have no hostnames")
			}
			v.route(pwhere, r)
		}
	}
}

// validOutlierDetection applies the rules that Validate applies to a backend's
// outlier detection.
func validOutlierDetection(od *OutlierDetection) bool {
	return od.Consecutive5xx >= 0 && od.ConsecutiveGatewayErrors >= 0 && od.Interval >= 0 && od.BaseEjectionTime > 0 &&
		od.MaxEjectionPercent >= 0 && od.MaxEjectionPercent <= 100
}

// validDomain reports whether s is a lower-case DNS name without a trailing dot.
func validDomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}
