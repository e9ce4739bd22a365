package translate

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// versionFixture is a snapshot with two virtual hosts of a few routes each and one
// backend, built afresh on every call so that cases can change it freely.
func versionFixture() *config.Snapshot {
	route := func(name string) config.Route {
		return config.Route{Name: name, Rules: []config.Rule{{Backends: []config.BackendRef{{Backend: "ns/svc:80", Weight: 1}}}}}
	}
	return &config.Snapshot{
		SchemaVersion: config.SchemaVersion,
		Listeners: []config.Listener{{
			Name: ":80", Port: 80, Protocol: config.ProtocolHTTP,
			VirtualHosts: []config.VirtualHost{
				{Name: "ns/gw/a", Hostname: "a.example.com", Routes: []config.Route{route("ns/r1"), route("ns/r2")}},
				{Name: "ns/gw/b", Hostname: "b.example.com", Routes: []config.Route{route("ns/r3")}},
			},
		}},
		Backends: []config.Backend{{
			Name: "ns/svc:80", Protocol: config.AppProtocolHTTP1,
			Endpoints: []config.Endpoint{{Address: "10.0.0.1:8080", Ready: true, Serving: true}},
		}},
	}
}

func TestContentVersionsFollowContent(t *testing.T) {
	baseRoutes, baseVersion := contentVersions(versionFixture())
	if again, _ := contentVersions(versionFixture()); again != baseRoutes {
		t.Fatal("equal snapshots have different routes versions")
	}
	cases := []struct {
		name          string
		change        func(s *config.Snapshot)
		routesChanged bool
	}{
		{"endpoint address", func(s *config.Snapshot) { s.Backends[0].Endpoints[0].Address = "10.0.0.2:8080" }, false},
		{"endpoint readiness", func(s *config.Snapshot) { s.Backends[0].Endpoints[0].Ready = false }, false},
		{"backend protocol", func(s *config.Snapshot) { s.Backends[0].Protocol = config.AppProtocolH2C }, false},
		{"schema version", func(s *config.Snapshot) { s.SchemaVersion-- }, false},
		{"route name", func(s *config.Snapshot) { s.Listeners[0].VirtualHosts[1].Routes[0].Name = "ns/r4" }, true},
		{"listener port", func(s *config.Snapshot) { s.Listeners[0].Port = 8080 }, true},
		{"virtual host hostname", func(s *config.Snapshot) { s.Listeners[0].VirtualHosts[0].Hostname = "c.example.com" }, true},
		{"route moved to the next virtual host", func(s *config.Snapshot) {
			vhs := s.Listeners[0].VirtualHosts
			moved := vhs[0].Routes[1]
			vhs[0].Routes = vhs[0].Routes[:1]
			vhs[1].Routes = append([]config.Route{moved}, vhs[1].Routes...)
		}, true},
		{"rule weight", func(s *config.Snapshot) { s.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Backends[0].Weight = 2 }, true},
	}
	for _, c := range cases {
		s := versionFixture()
		c.change(s)
		routes, version := contentVersions(s)
		if version == baseVersion {
			t.Errorf("%s: the version did not change", c.name)
		}
		if (routes != baseRoutes) != c.routesChanged {
			t.Errorf("%s: routes version changed %v, want %v", c.name, routes != baseRoutes, c.routesChanged)
		}
	}
}

// TestContentVersionsIgnoreProcessors checks that the chunked, parallel hashing gives
// the same digest on one processor as on several, for inputs of many chunks.
func TestContentVersionsIgnoreProcessors(t *testing.T) {
	s := versionFixture()
	vh := &s.Listeners[0].VirtualHosts[0]
	for i := range 3 * hashChunk {
		vh.Routes = append(vh.Routes, config.Route{Name: fmt.Sprintf("ns/extra-%d", i), Rules: []config.Rule{{}}})
	}
	routes, version := contentVersions(s)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	if r1, v1 := contentVersions(s); r1 != routes || v1 != version {
		t.Fatalf("one processor gives %s/%s, several give %s/%s", r1, v1, routes, version)
	}
	// The pieces spell out the listeners: decoding their encodings rebuilds them.
	pieces := listenerPieces(s.Listeners)
	if len(pieces) <= 2*hashChunk {
		t.Fatalf("%d pieces do not fill several chunks", len(pieces))
	}
	var shell config.Listener
	roundTrip(t, pieces[1], &shell)
	if shell.Name != ":80" || shell.VirtualHosts != nil {
		t.Errorf("the listener piece is %+v, want the listener without virtual hosts", shell)
	}
}

func roundTrip(t *testing.T, in, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}
