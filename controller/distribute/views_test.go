package distribute

import (
	"reflect"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

func TestForRoleEdgeIsTheSnapshotItself(t *testing.T) {
	snap := snapshotWith("/a", "127.0.0.1:1")
	view, err := ForRole(snap, RoleEdge)
	mustNotErr(t, err)
	if view != snap {
		t.Error("the edge view should be the published snapshot, not a copy")
	}
}

func TestForRoleEdgeHashesAnUnversionedSnapshot(t *testing.T) {
	snap := snapshotWith("/a", "127.0.0.1:1")
	snap.Version = ""
	view, err := ForRole(snap, RoleEdge)
	mustNotErr(t, err)
	if view.Version == "" || snap.Version != "" {
		t.Errorf("view version %q, input version %q: want a hash on the view and the input untouched", view.Version, snap.Version)
	}
	again, _ := ForRole(snap, RoleEdge)
	if again.Version != view.Version {
		t.Error("the same content got two versions")
	}
}

func TestForRoleNodeCarriesBackendsOnly(t *testing.T) {
	snap := snapshotWith("/a", "127.0.0.1:1")
	view, err := ForRole(snap, RoleNode)
	mustNotErr(t, err)
	if len(view.Listeners) != 0 {
		t.Errorf("node view has %d listeners", len(view.Listeners))
	}
	if !reflect.DeepEqual(view.Backends, snap.Backends) {
		t.Error("node view backends differ from the snapshot's")
	}
	if view.Version == "" || view.Version == snap.Version {
		t.Errorf("node view version %q: want its own content hash", view.Version)
	}
	if view.RoutesVersion == "" || view.RoutesVersion == snap.RoutesVersion {
		t.Errorf("node view routesVersion %q: want the hash of its (empty) listeners", view.RoutesVersion)
	}
	if err := view.Validate(); err != nil {
		t.Errorf("node view does not validate: %v", err)
	}
}

func TestForRoleNodeVersionFollowsBackendsOnly(t *testing.T) {
	base, _ := ForRole(snapshotWith("/a", "127.0.0.1:1"), RoleNode)
	routeChange, _ := ForRole(snapshotWith("/b", "127.0.0.1:1"), RoleNode)
	backendChange, _ := ForRole(snapshotWith("/a", "127.0.0.1:2"), RoleNode)
	if routeChange.Version != base.Version {
		t.Error("a route-only change changed the node view's version")
	}
	if backendChange.Version == base.Version {
		t.Error("a backend change did not change the node view's version")
	}
}

func TestForRoleRejectsBadInput(t *testing.T) {
	if _, err := ForRole(nil, RoleEdge); err == nil {
		t.Error("nil snapshot: want an error")
	}
	if _, err := ForRole(snapshotWith("/", "127.0.0.1:1"), "mesh"); err == nil {
		t.Error("unknown role: want an error")
	}
}

func TestBuildViewDowngradesForOlderReplicas(t *testing.T) {
	snap := snapshotWith("/a", "127.0.0.1:1")
	// Schema 4 added the mesh, which a schema 3 replica must not get.
	snap.Mesh = &config.Mesh{Services: []config.MeshService{{Namespace: "ns", Name: "svc"}}}
	v := buildView(snap, viewKey{role: RoleEdge, schema: config.SchemaVersion - 1})
	mustNotErr(t, v.err)
	if v.snap.SchemaVersion != config.SchemaVersion-1 {
		t.Errorf("got schema %d", v.snap.SchemaVersion)
	}
	if v.snap.Mesh != nil {
		t.Error("downgraded view keeps the mesh")
	}
	if v.version != snap.Version {
		t.Errorf("downgraded view version %q, want %q", v.version, snap.Version)
	}
	if snap.Mesh == nil {
		t.Error("downgrading changed the published snapshot")
	}
}

func TestViewCacheReusesEncodingOfUnchangedViews(t *testing.T) {
	c := viewCache{newest: map[viewKey]cachedView{}}
	key := viewKey{role: RoleNode, schema: config.SchemaVersion}
	g1 := &generation{seq: 1, snap: snapshotWith("/a", "127.0.0.1:1"), views: map[viewKey]*view{}}
	g2 := &generation{seq: 2, snap: snapshotWith("/b", "127.0.0.1:1"), views: map[viewKey]*view{}}
	v1 := c.viewOf(g1, key)
	_, f1, err := v1.encoded()
	mustNotErr(t, err)
	v2 := c.viewOf(g2, key)
	_, f2, err := v2.encoded()
	mustNotErr(t, err)
	if v1 != v2 || &f1[0] != &f2[0] {
		t.Error("an unchanged node view was encoded again")
	}
	if c.viewOf(g2, key) != v2 {
		t.Error("a generation computed its view twice")
	}
}

func TestForRoleSendsTheMeshToNodeReplicasOnly(t *testing.T) {
	snap := snapshotWith("/a", "127.0.0.1:1")
	snap.Mesh = &config.Mesh{Services: []config.MeshService{{Namespace: "ns", Name: "svc"}}}
	snap.Version = contentVersion(snap)
	edge, err := ForRole(snap, RoleEdge)
	mustNotErr(t, err)
	if edge.Mesh != nil || len(edge.Listeners) != len(snap.Listeners) || edge.Version == snap.Version {
		t.Errorf("edge view: mesh %v, %d listeners, version %s (snapshot's %s)", edge.Mesh, len(edge.Listeners), edge.Version, snap.Version)
	}
	node, err := ForRole(snap, RoleNode)
	mustNotErr(t, err)
	if node.Mesh != snap.Mesh || len(node.Listeners) != 0 || len(node.Backends) != len(snap.Backends) {
		t.Errorf("node view: mesh %v, %d listeners, %d backends", node.Mesh, len(node.Listeners), len(node.Backends))
	}
	// A mesh-only change leaves the edge view's version alone.
	changed := *snap
	changed.Version = "other"
	changed.Mesh = &config.Mesh{Services: []config.MeshService{{Namespace: "ns", Name: "other"}}}
	edge2, err := ForRole(&changed, RoleEdge)
	mustNotErr(t, err)
	if edge2.Version != edge.Version {
		t.Errorf("a mesh-only change moved the edge version from %s to %s", edge.Version, edge2.Version)
	}
}
