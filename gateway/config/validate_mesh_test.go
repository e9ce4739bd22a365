package config

import (
	"strings"
	"testing"
	"time"
)

// meshSnapshot is a valid snapshot with a mesh: a Service with a routed port that
// sends to a backend the Gateways use too, and a port with a default route to a
// mesh-only backend.
func meshSnapshot() *Snapshot {
	s := validSnapshot()
	s.Mesh = &Mesh{
		ClusterDomain: "cluster.local",
		Services: []MeshService{{
			Namespace: "ns", Name: "svc", ClusterIPs: []string{"10.96.0.1", "fd00::1"},
			Ports: []MeshPort{
				{Name: "http", Port: 80, Backend: "ns/svc:80", Routes: []Route{{
					Name:  "ns/r",
					Rules: []Rule{{Backends: []BackendRef{{Backend: "ns/svc:80", Weight: 1}}}},
				}}},
				{Name: "admin", Port: 9090, Backend: "ns/svc:9090", Routes: []Route{{
					Name: "ns/svc",
					Rules: []Rule{{
						Backends: []BackendRef{{Backend: "ns/svc:9090", Weight: 1}},
						Retry:    &Retry{Attempts: 2, On: []RetryCondition{RetryConnectFailure}},
					}},
				}}},
			},
		}},
		Backends:                []Backend{{Name: "ns/svc:9090", Protocol: AppProtocolHTTP1}},
		DefaultOutlierDetection: &OutlierDetection{ConsecutiveGatewayErrors: 5, BaseEjectionTime: Duration(30 * time.Second), MaxEjectionPercent: 50},
	}
	return s
}

func TestValidateAcceptsAGoodMesh(t *testing.T) {
	if err := meshSnapshot().Validate(); err != nil {
		t.Fatal(err)
	}
}

// Each case breaks one thing of the mesh and expects an error naming it.
func TestValidateNamesEachMeshProblem(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(m *Mesh, s *Snapshot)
		want   string
	}{
		{"duplicate service", func(m *Mesh, _ *Snapshot) {
			dup := m.Services[0]
			dup.ClusterIPs = nil
			m.Services = append(m.Services, dup)
		}, "mesh service ns/svc: is listed twice"},
		{"empty name", func(m *Mesh, _ *Snapshot) { m.Services[0].Name = "" }, "namespace and name must not be empty"},
		{"cluster IP", func(m *Mesh, _ *Snapshot) { m.Services[0].ClusterIPs = []string{"None"} }, `cluster IP "None" is not an IP address`},
		{"shared cluster IP", func(m *Mesh, _ *Snapshot) {
			m.Services = append(m.Services, MeshService{Namespace: "ns", Name: "other", ClusterIPs: []string{"10.96.0.1"}, Ports: []MeshPort{}})
		}, "cluster IP 10.96.0.1 is also Service ns/svc's"},
		{"port range", func(m *Mesh, _ *Snapshot) { m.Services[0].Ports[1].Port = 70000 }, "port 70000: port is out of range"},
		{"duplicate port", func(m *Mesh, _ *Snapshot) { m.Services[0].Ports[1].Port = 80 }, "port 80: port is listed twice"},
		{"undefined port backend", func(m *Mesh, _ *Snapshot) { m.Services[0].Ports[0].Backend = "ns/none:80" }, `backend "ns/none:80" is not defined`},
		{"undefined route backend", func(m *Mesh, _ *Snapshot) {
			m.Services[0].Ports[0].Routes[0].Rules[0].Backends[0].Backend = "ns/none:80"
		}, `route ns/r rule 0 backend 0: backend "ns/none:80" is not defined`},
		{"route checked like a Gateway's", func(m *Mesh, _ *Snapshot) {
			m.Services[0].Ports[0].Routes[0].Rules[0].Matches = []Match{{Path: &PathMatch{Type: PathRegularExpression, Value: "("}}}
		}, "invalid regular expression"},
		{"retry", func(m *Mesh, _ *Snapshot) {
			m.Services[0].Ports[1].Routes[0].Rules[0].Retry.On = []RetryCondition{"sometimes"}
		}, `condition "sometimes"`},
		{"hostnames", func(m *Mesh, _ *Snapshot) { m.Services[0].Ports[0].Routes[0].Hostnames = []string{"a.example.com"} }, "mesh routes have no hostnames"},
		{"duplicate route", func(m *Mesh, _ *Snapshot) {
			p := &m.Services[0].Ports[0]
			p.Routes = append(p.Routes, p.Routes[0])
		}, "route ns/r: name is used twice"},
		{"backend in both lists", func(m *Mesh, s *Snapshot) { m.Backends = append(m.Backends, s.Backends[0]) }, "backend ns/svc:80: name is used twice"},
		{"mesh backend checked", func(m *Mesh, _ *Snapshot) { m.Backends[0].Protocol = "gopher" }, `protocol "gopher"`},
		{"gateway route to a mesh-only backend", func(_ *Mesh, s *Snapshot) {
			s.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Backends[0].Backend = "ns/svc:9090"
		}, `backend "ns/svc:9090" is not defined`},
		{"cluster domain", func(m *Mesh, _ *Snapshot) { m.ClusterDomain = "Cluster.Local." }, `cluster domain "Cluster.Local."`},
		{"default outlier detection", func(m *Mesh, _ *Snapshot) { m.DefaultOutlierDetection.BaseEjectionTime = 0 }, "default outlier detection"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := meshSnapshot()
			c.mutate(s.Mesh, s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}
