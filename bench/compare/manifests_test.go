package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/controller/source/files"
	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/router"
)

// translateManifests loads the generated manifests with the standalone file
// loader and translates them, as `switchyard standalone` does at start.
func translateManifests(t *testing.T, s peerSetup, policies bool) *translate.Output {
	t.Helper()
	text, err := switchyardManifests(s, policies)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "gateway.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := files.Load(dir)
	if err != nil {
		t.Fatalf("the standalone loader refuses the manifests: %v", err)
	}
	return translate.Translate(in)
}

// compileListener compiles the snapshot's only listener into a route table.
func compileListener(t *testing.T, snap *config.Snapshot, port int) *router.Table {
	t.Helper()
	if len(snap.Listeners) != 1 || snap.Listeners[0].Port != port || snap.Listeners[0].Address != "127.0.0.1" {
		t.Fatalf("listeners %+v, want one on 127.0.0.1:%d", snap.Listeners, port)
	}
	noop := func(*config.VirtualHost, *config.Route, int) (http.Handler, error) {
		return http.NotFoundHandler(), nil
	}
	table, err := router.Compile(&snap.Listeners[0], noop)
	if err != nil {
		t.Fatal(err)
	}
	return table
}

func lookup(table *router.Table, host, path string) *router.Entry {
	req := httptest.NewRequest(http.MethodGet, "http://"+host+path, nil)
	return table.Lookup(req)
}

func TestSwitchyardManifestsRouteTheRequestToTheLastRoute(t *testing.T) {
	s := peerSetup{Listen: 28080, Backend: 29090, Table: manyRoutes(300, 6)}
	out := translateManifests(t, s, false)
	table := compileListener(t, out.Snapshot, s.Listen)
	entry := lookup(table, s.Table.Host, s.Table.Path)
	if entry == nil {
		t.Fatal("the benchmark request matches no route")
	}
	if want := "default/route-" + strconv.Itoa(len(s.Table.Routes)-1); entry.Route.Name != want {
		t.Errorf("the benchmark request matches %s, want %s", entry.Route.Name, want)
	}
	if lookup(table, s.Table.Host, s.Table.MissPath) != nil {
		t.Error("the miss path matches a route")
	}
	// Every kind of route is served as written, not only the last one.
	for i, r := range s.Table.Routes[:30] {
		entry := lookup(table, r.Host, requestPath(r))
		if entry == nil || entry.Route.Name != "default/route-"+strconv.Itoa(i) {
			t.Errorf("route %d (%s %s%s) is not what its request matches: %+v", i, r.Kind, r.Host, r.Path, entry)
		}
	}
	if len(out.Snapshot.Backends) != 1 {
		t.Errorf("%d backends, want the one Service", len(out.Snapshot.Backends))
	}
}

func TestSwitchyardManifestsPolicySetIsAccepted(t *testing.T) {
	s := peerSetup{Listen: 28081, Backend: 29091, Table: catchAll()}
	out := translateManifests(t, s, true)
	status, ok := out.TrafficPolicies[types.NamespacedName{Namespace: manifestNamespace, Name: "typical"}]
	if !ok || len(status.Ancestors) == 0 {
		t.Fatalf("the TrafficPolicy has no status: %+v", out.TrafficPolicies)
	}
	for _, ancestor := range status.Ancestors {
		if !meta.IsStatusConditionTrue(ancestor.Conditions, string(gwv1.PolicyConditionAccepted)) {
			t.Errorf("the TrafficPolicy is not accepted: %+v", ancestor.Conditions)
		}
	}
	table := compileListener(t, out.Snapshot, s.Listen)
	entry := lookup(table, "any.test", "/x")
	if entry == nil {
		t.Fatal("the catch-all route does not match")
	}
	rule := entry.Route.Rules[entry.RuleIndex]
	limited := false
	for _, f := range rule.Filters {
		limited = limited || f.Type == config.FilterRateLimit
	}
	if !limited || rule.Retry == nil || rule.Timeouts == nil {
		t.Errorf("the rule lacks the policy set: rate limit %v, retry %+v, timeouts %+v", limited, rule.Retry, rule.Timeouts)
	}
	if b := out.Snapshot.Backends; len(b) != 1 || b[0].CircuitBreaker == nil {
		t.Errorf("the backend has no circuit breaker: %+v", b)
	}

	bare := translateManifests(t, s, false)
	if len(bare.TrafficPolicies) != 0 || bare.Snapshot.Backends[0].CircuitBreaker != nil {
		t.Error("the bare run carries policies")
	}
}
