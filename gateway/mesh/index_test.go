package mesh

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// nameFactory builds handlers that answer with the route's name.
func nameFactory(_ *config.VirtualHost, route *config.Route, _ int) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(route.Name)) }), nil
}

func testMesh() *config.Mesh {
	defaultRoute := func(ns, name string) []config.Route {
		return []config.Route{{Name: ns + "/" + name, Rules: []config.Rule{{}}}}
	}
	return &config.Mesh{
		ClusterDomain: "Corp.Example.",
		Services: []config.MeshService{
			{Namespace: "shop", Name: "web", ClusterIPs: []string{"10.96.0.10", "fd00::10"},
				Ports: []config.MeshPort{{Port: 80, Routes: defaultRoute("shop", "web")}, {Port: 8080, Routes: defaultRoute("shop", "web-admin")}}},
			{Namespace: "shop", Name: "db", Ports: []config.MeshPort{{Port: 5432}}},
			{Namespace: "billing", Name: "web", ClusterIPs: []string{"10.96.0.20"}, Ports: []config.MeshPort{{Port: 80}}},
			{Namespace: "svc", Name: "foo", ClusterIPs: []string{"10.96.0.30"}, Ports: []config.MeshPort{{Port: 80}}},
		},
	}
}

func TestIndexResolvesEveryNameForm(t *testing.T) {
	ix, err := Compile(testMesh(), nameFactory)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		authority, callerNS string
		want                string
	}{
		{"web", "shop", "shop/web"},
		{"web", "billing", "billing/web"},
		{"web", "other", ""},
		{"db:5432", "shop", "shop/db"},
		{"web.shop", "billing", "shop/web"},
		{"web.shop.svc", "billing", "shop/web"},
		{"WEB.shop.svc.corp.example.", "billing", "shop/web"},
		{"web.shop.svc.cluster.local", "billing", ""},
		{"web.billing:80", "shop", "billing/web"},
		{"foo.svc", "shop", "svc/foo"},
		{"foo.svc.svc", "shop", "svc/foo"},
		{"10.96.0.10:8080", "x", "shop/web"},
		{"[fd00::10]:80", "x", "shop/web"},
		{"[::ffff:10.96.0.20]", "x", "billing/web"},
		{"10.96.0.99", "shop", ""},
		{"example.com", "shop", ""},
		{"web.shop.example.com", "shop", ""},
	}
	for _, c := range cases {
		d, err := ParseDestination(c.authority, 80)
		if err != nil {
			t.Fatalf("%q: %v", c.authority, err)
		}
		got := ""
		if svc := ix.Resolve(d, c.callerNS); svc != nil {
			got = svc.Key
		}
		if got != c.want {
			t.Errorf("%q from namespace %q resolved to %q, want %q", c.authority, c.callerNS, got, c.want)
		}
	}
	web := ix.Resolve(Destination{Host: "web"}, "shop")
	if p := web.Port(8080); p == nil || p.Name != "shop/web:8080" || p.Table.VirtualHostFor("anything") == nil {
		t.Errorf("port 8080: %+v", p)
	}
	if web.Port(81) != nil {
		t.Error("an unknown port was found")
	}
	for _, d := range []Destination{{Host: "web.shop.svc.corp.example"}, {Host: "web"}, {Host: "10.96.0.10", Addr: netip.MustParseAddr("10.96.0.10")}} {
		if n := testing.AllocsPerRun(100, func() { _ = ix.Resolve(d, "shop") }); n != 0 {
			t.Errorf("resolving %+v allocates %v times", d, n)
		}
	}
}

func TestCompileRefusesAmbiguousMeshes(t *testing.T) {
	dupIP := testMesh()
	dupIP.Services[2].ClusterIPs = []string{"10.96.0.10"}
	dupSvc := testMesh()
	dupSvc.Services = append(dupSvc.Services, dupSvc.Services[0])
	badIP := testMesh()
	badIP.Services[0].ClusterIPs = []string{"ten"}
	dotted := testMesh()
	dotted.Services[0].Name = "a.b"
	for name, m := range map[string]*config.Mesh{"shared cluster IP": dupIP, "service twice": dupSvc, "bad IP": badIP, "dotted name": dotted} {
		if _, err := Compile(m, nameFactory); err == nil {
			t.Errorf("%s: compiled", name)
		}
	}
	empty, err := Compile(nil, nameFactory)
	if err != nil || empty.Resolve(Destination{Host: "web"}, "shop") != nil {
		t.Errorf("nil mesh: %v", err)
	}
	var none *Index
	if none.Resolve(Destination{Host: "web"}, "shop") != nil || none.ClusterIP(Destination{}.Addr) {
		t.Error("a nil index resolved something")
	}
}

func TestValidateMeshServing(t *testing.T) {
	snap := &config.Snapshot{SchemaVersion: config.SchemaVersion, Mesh: testMesh(),
		Backends: []config.Backend{{Name: "shop/web:80", Protocol: config.AppProtocolHTTP1}}}
	// Snapshots carry the cluster domain in canonical form; Compile accepts others.
	snap.Mesh.ClusterDomain = "corp.example"
	snap.Mesh.Services[0].Ports[0].Backend = "shop/web:80"
	snap.Mesh.Services[0].Ports[0].Routes[0].Rules[0].Backends = []config.BackendRef{{Backend: "mesh-only", Weight: 1}}
	snap.Mesh.Backends = []config.Backend{{Name: "mesh-only", Protocol: config.AppProtocolHTTP1}}
	if err := snap.ValidateMeshServing(); err != nil {
		t.Fatalf("valid mesh refused: %v", err)
	}
	snap.Mesh.Backends = append(snap.Mesh.Backends, config.Backend{Name: "shop/web:80", Protocol: config.AppProtocolHTTP1})
	snap.Mesh.Services[1].Ports[0].Backend = "missing"
	snap.Mesh.Services[2].ClusterIPs = []string{"fd00::10"}
	snap.Mesh.Services[3].Ports = append(snap.Mesh.Services[3].Ports, config.MeshPort{Port: 80}, config.MeshPort{Port: 70000})
	snap.Mesh.DefaultOutlierDetection = &config.OutlierDetection{MaxEjectionPercent: 200}
	err := snap.ValidateMeshServing()
	if err == nil {
		t.Fatal("invalid mesh accepted")
	}
	for _, want := range []string{"shop/web:80: name is used twice", `"missing"`, "fd00::10", "listed twice", "out of range", "default outlier detection"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}
