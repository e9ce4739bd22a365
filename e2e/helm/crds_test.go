package helm_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/e2e/cluster"
)

// keepPolicy is the annotation that keeps the Gateway API CRDs on helm uninstall.
const keepPolicy = "helm.sh/resource-policy"

// TestChartCRDsMatchSources fails when the chart's CRD copies drift from their
// sources: charts/switchyard/crds from api/crds, and crds-gateway-api from the
// experimental channel of the gateway-api module in go.mod, for exactly the kinds the
// e2e harness installs. `make chart-crds` copies them again.
func TestChartCRDsMatchSources(t *testing.T) {
	t.Run("switchyard", func(t *testing.T) {
		src, err := filepath.Glob(filepath.Join(repoRoot(), "api", "crds", "*.yaml"))
		if err != nil || len(src) == 0 {
			t.Fatalf("no CRDs in api/crds (%v)", err)
		}
		compareFolder(t, filepath.Join(chartDir(), "crds"), src)
	})
	t.Run("gateway-api", func(t *testing.T) {
		dir := gatewayAPIModuleDir(t)
		var src []string
		for _, kind := range cluster.GatewayAPICRDs {
			src = append(src, filepath.Join(dir, "config", "crd", "experimental", "gateway.networking.k8s.io_"+kind+".yaml"))
		}
		compareFolder(t, filepath.Join(chartDir(), "crds-gateway-api"), src)
	})
}

// compareFolder checks that folder holds exactly the files of sources, by name, with
// the same bytes.
func compareFolder(t *testing.T, folder string, sources []string) {
	t.Helper()
	copies, err := filepath.Glob(filepath.Join(folder, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names, want []string
	for _, c := range copies {
		names = append(names, filepath.Base(c))
	}
	for _, s := range sources {
		want = append(want, filepath.Base(s))
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("%s holds %v, want %v (run `make chart-crds`)", folder, names, want)
	}
	for _, s := range sources {
		a, errA := os.ReadFile(s)
		b, errB := os.ReadFile(filepath.Join(folder, filepath.Base(s)))
		if errA != nil || errB != nil {
			t.Fatalf("reading %s: %v %v", filepath.Base(s), errA, errB)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s (run `make chart-crds`)", filepath.Join(folder, filepath.Base(s)), s)
		}
	}
}

// gatewayAPIModuleDir finds the gateway-api module in the module cache, offline (the
// tests run in a network namespace; building them downloaded the module).
func gatewayAPIModuleDir(t testing.TB) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api")
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("locating sigs.k8s.io/gateway-api: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestGatewayAPICRDsRendered checks gatewayAPI.installCRDs: off renders no CRD; on
// renders each vendored CRD unchanged but for the annotation that keeps it on
// uninstall, and holds the GatewayClass back until the API server serves the kind.
func TestGatewayAPICRDsRendered(t *testing.T) {
	base := release{name: "sy", namespace: "switchyard-system", values: "defaults"}
	off := objects(t, mustRender(t, base))
	if n := countKind(off, "CustomResourceDefinition"); n != 0 {
		t.Errorf("installCRDs off rendered %d CRDs", n)
	}
	if n := countKind(off, "GatewayClass"); n != 1 {
		t.Errorf("installCRDs off rendered %d GatewayClasses, want 1", n)
	}

	on := base
	on.extra = []string{"--set", "gatewayAPI.installCRDs=true"}
	rendered := objects(t, mustRender(t, on))
	if n := countKind(rendered, "GatewayClass"); n != 0 {
		t.Errorf("with the CRDs in the release and the kind not served yet, %d GatewayClasses were rendered", n)
	}
	byName := map[string]*unstructured.Unstructured{}
	for _, obj := range rendered {
		if obj.GetKind() == "CustomResourceDefinition" {
			byName[obj.GetName()] = obj
		}
	}
	vendored, err := filepath.Glob(filepath.Join(chartDir(), "crds-gateway-api", "*.yaml"))
	if err != nil || len(vendored) == 0 {
		t.Fatalf("no vendored Gateway API CRDs (%v)", err)
	}
	if len(byName) != len(vendored) {
		t.Errorf("rendered %d CRDs, want the %d vendored ones", len(byName), len(vendored))
	}
	for _, path := range vendored {
		src := readObject(t, path)
		got, ok := byName[src.GetName()]
		if !ok {
			t.Errorf("CRD %s was not rendered", src.GetName())
			continue
		}
		annotations := got.GetAnnotations()
		if annotations[keepPolicy] != "keep" {
			t.Errorf("CRD %s lacks %s: keep", src.GetName(), keepPolicy)
		}
		delete(annotations, keepPolicy)
		got.SetAnnotations(annotations)
		if !reflect.DeepEqual(got.Object, src.Object) {
			t.Errorf("rendered CRD %s differs from %s beyond the keep annotation", src.GetName(), filepath.Base(path))
		}
	}

	upgrade := on
	upgrade.extra = append(upgrade.extra, "--api-versions", "gateway.networking.k8s.io/v1/GatewayClass")
	if n := countKind(objects(t, mustRender(t, upgrade)), "GatewayClass"); n != 1 {
		t.Errorf("once the kind is served, %d GatewayClasses were rendered, want 1", n)
	}
}

// objects parses a render into objects.
func objects(t testing.TB, stream string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, doc := range documents(stream) {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		if len(obj.Object) == 0 {
			continue
		}
		objs = append(objs, obj)
	}
	return objs
}

func readObject(t testing.TB, path string) *unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs := objects(t, string(b))
	if len(objs) != 1 {
		t.Fatalf("%s holds %d objects, want 1", path, len(objs))
	}
	return objs[0]
}

func countKind(objs []*unstructured.Unstructured, kind string) int {
	n := 0
	for _, o := range objs {
		if o.GetKind() == kind {
			n++
		}
	}
	return n
}
