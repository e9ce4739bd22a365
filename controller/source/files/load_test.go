package files

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles creates a folder holding the given files and returns its path.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const gatewayDocs = `# The class and its gateway.
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: switchyard
spec:
  controllerName: switchyard.dev/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
spec:
  gatewayClassName: switchyard
  listeners:
  - name: http
    port: 8080
    protocol: HTTP
---
`

const routeDocs = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: app
  namespace: apps
  generation: 7
spec:
  parentRefs:
  - name: gw
    namespace: default
  rules:
  - backendRefs:
    - name: app
      port: 80
--- # grants and more
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata:
  name: old
  namespace: default
spec:
  from:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    namespace: apps
  to:
  - group: ""
    kind: Service
---
apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata:
  name: new
  namespace: apps
spec:
  from:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    namespace: default
  to:
  - group: ""
    kind: Service
`

const coreDocs = `apiVersion: v1
kind: Namespace
metadata:
  name: apps
---
apiVersion: v1
kind: Service
metadata:
  name: app
  namespace: apps
spec:
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: app-1
  namespace: apps
  labels:
    kubernetes.io/service-name: app
addressType: IPv4
endpoints:
- addresses: ["127.0.0.1"]
ports:
- port: 8080
---
apiVersion: v1
kind: Secret
metadata:
  name: tls
type: kubernetes.io/tls
stringData:
  tls.crt: cert
  tls.key: key
`

func TestLoadFolder(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a-gateway.yaml":  gatewayDocs,
		"b-routes.yml":    routeDocs,
		"c-core.yaml":     coreDocs,
		"notes.txt":       "not: [yaml",
		".hidden.yaml":    "not: [yaml",
		"sub/nested.yaml": "not: [yaml",
	})
	in, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !in.Options.Standalone {
		t.Error("Options.Standalone is not set")
	}
	counts := map[string]int{
		"GatewayClasses": len(in.GatewayClasses), "Gateways": len(in.Gateways), "HTTPRoutes": len(in.HTTPRoutes),
		"ReferenceGrants": len(in.ReferenceGrants), "Services": len(in.Services),
		"EndpointSlices": len(in.EndpointSlices), "Secrets": len(in.Secrets), "Namespaces": len(in.Namespaces),
	}
	want := map[string]int{"GatewayClasses": 1, "Gateways": 1, "HTTPRoutes": 1, "ReferenceGrants": 2,
		"Services": 1, "EndpointSlices": 1, "Secrets": 1, "Namespaces": 1}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: got %d objects, want %d", k, counts[k], n)
		}
	}
	if gc := in.GatewayClasses[0]; gc.Namespace != "" || gc.Generation != 1 {
		t.Errorf("GatewayClass namespace %q generation %d, want cluster-scoped with generation 1", gc.Namespace, gc.Generation)
	}
	if gw := in.Gateways[0]; gw.Namespace != "default" || gw.Generation != 1 || gw.Spec.Listeners[0].Port != 8080 {
		t.Errorf("Gateway %s/%s generation %d port %d", gw.Namespace, gw.Name, gw.Generation, gw.Spec.Listeners[0].Port)
	}
	if r := in.HTTPRoutes[0]; r.Namespace != "apps" || r.Generation != 7 {
		t.Errorf("HTTPRoute %s/%s generation %d, want apps/app generation 7 (kept)", r.Namespace, r.Name, r.Generation)
	}
	old := in.ReferenceGrants[0]
	if old.Name != "old" || old.APIVersion != "gateway.networking.k8s.io/v1" || old.Spec.From[0].Namespace != "apps" {
		t.Errorf("v1beta1 ReferenceGrant converted to %s %s from %+v", old.APIVersion, old.Name, old.Spec.From)
	}
	if ns := in.Namespaces[0]; ns.Namespace != "" || ns.Name != "apps" {
		t.Errorf("Namespace %q/%q", ns.Namespace, ns.Name)
	}
	if s := in.Secrets[0]; s.Namespace != "default" || s.StringData["tls.key"] != "key" {
		t.Errorf("Secret %s/%s data %v", s.Namespace, s.Name, s.StringData)
	}
	if es := in.EndpointSlices[0]; es.Endpoints[0].Addresses[0] != "127.0.0.1" {
		t.Errorf("EndpointSlice endpoints %+v", es.Endpoints)
	}
}

func TestLoadSingleFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{"gw.yaml": gatewayDocs, "other.yaml": coreDocs})
	in, err := Load(filepath.Join(dir, "gw.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Gateways) != 1 || len(in.Services) != 0 {
		t.Errorf("got %d gateways and %d services, want only the named file's objects", len(in.Gateways), len(in.Services))
	}
}

func TestLoadEmptyFolderAndEmptyDocuments(t *testing.T) {
	in, err := Load(writeFiles(t, map[string]string{"empty.yaml": "---\n# nothing\n---\n\n---\n"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Gateways)+len(in.Services)+len(in.GatewayClasses) != 0 {
		t.Errorf("objects loaded from empty documents: %+v", in)
	}
}

func TestLoadMissingPath(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent"))
	if err == nil || !strings.Contains(err.Error(), "absent") {
		t.Fatalf("error %v does not name the missing path", err)
	}
}

func TestLoadErrors(t *testing.T) {
	service := func(name, extra string) string {
		return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\n" + extra
	}
	cases := []struct {
		name    string
		content string
		want    []string
	}{{
		name:    "malformed YAML",
		content: service("ok", "") + "---\napiVersion: v1\nkind: Service\nmetadata: {name: x\n  bad: [",
		want:    []string{"bad.yaml: document 2 (line 6)", "malformed YAML"},
	}, {
		name:    "unknown kind",
		content: "apiVersion: example.com/v1\nkind: Foo\nmetadata:\n  name: f\n",
		want: []string{"bad.yaml: document 1 (line 1) Foo f", "kind Foo is not supported; supported kinds are",
			"gateway.networking.k8s.io/v1 HTTPRoute", "discovery.k8s.io/v1 EndpointSlice"},
	}, {
		name:    "wrong apiVersion for a known kind",
		content: "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: HTTPRoute\nmetadata:\n  name: r\n",
		want:    []string{"HTTPRoute r", "apiVersion gateway.networking.k8s.io/v1alpha2 is not supported for kind HTTPRoute; use gateway.networking.k8s.io/v1"},
	}, {
		name:    "missing kind",
		content: "metadata:\n  name: r\n",
		want:    []string{"document 1", "apiVersion and kind are required"},
	}, {
		name:    "unknown field",
		content: service("typo", "spec:\n  portz: []\n"),
		want:    []string{"document 1 (line 1) Service default/typo", `unknown field "spec.portz"`},
	}, {
		name:    "duplicate object",
		content: service("twice", "") + "---\n" + service("twice", "  namespace: default\n"),
		want: []string{"bad.yaml: document 2 (line 6) Service default/twice: duplicate object",
			"already defined at", "bad.yaml: document 1 (line 1)"},
	}, {
		name:    "missing name",
		content: "apiVersion: v1\nkind: Namespace\nmetadata:\n  labels: {a: b}\n",
		want:    []string{"document 1 (line 1) Namespace: metadata.name is required"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"bad.yaml": tc.content})
			in, err := Load(dir)
			if err == nil {
				t.Fatalf("Load succeeded with %+v", in)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadDuplicateAcrossFilesAndVersions(t *testing.T) {
	grant := func(version string) string {
		return "apiVersion: gateway.networking.k8s.io/" + version +
			"\nkind: ReferenceGrant\nmetadata:\n  name: g\nspec:\n  from: []\n  to: []\n"
	}
	dir := writeFiles(t, map[string]string{"a.yaml": grant("v1"), "b.yaml": grant("v1beta1")})
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "b.yaml: document 1 (line 1) ReferenceGrant default/g: duplicate object") ||
		!strings.Contains(err.Error(), "a.yaml: document 1") {
		t.Fatalf("error %v, want a duplicate reported in b.yaml pointing at a.yaml", err)
	}
}

func TestLoadReportsEveryError(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml": "apiVersion: v1\nkind: Bogus\nmetadata: {name: a}\n",
		"b.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: b}\nspek: {}\n",
	})
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "a.yaml") || !strings.Contains(err.Error(), "b.yaml") {
		t.Fatalf("error %v should report both files", err)
	}
}

func TestSplitDocumentsLines(t *testing.T) {
	docs := splitDocuments([]byte("a: 1\n---\nb: 2\nc: 3\n--- # x\n\nd: 4"))
	var lines []int
	for _, d := range docs {
		lines = append(lines, d.line)
	}
	if len(docs) != 3 || lines[0] != 1 || lines[1] != 3 || lines[2] != 6 {
		t.Fatalf("lines %v, want [1 3 6]", lines)
	}
	if strings.TrimSpace(string(docs[2].text)) != "d: 4" {
		t.Errorf("third document %q", docs[2].text)
	}
}
