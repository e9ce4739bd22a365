// Package helm_test checks the Helm chart in charts/switchyard: helm lint, golden
// renders of several values files, values the schema or the templates refuse, the
// CRD copies against their sources, every rendered object applied to the e2e
// harness's real kube-apiserver, and the controller and an edge replica run with the
// chart's command lines and RBAC.
package helm_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/e2e/cluster"
)

// envHelm holds the path of the helm binary. TestMain sets it before the tests move
// into the harness's network namespace, where nothing can be downloaded.
const envHelm = "SWITCHYARD_HELM"

// installScript builds helm once into the user cache and prints its path.
const installScript = "e2e/helm/install-helm.sh"

func TestMain(m *testing.M) {
	if os.Getenv(envHelm) == "" {
		path, err := installHelm()
		if err != nil {
			fmt.Fprintf(os.Stderr, "helm tests: no helm binary: %v\n"+
				"build it with `%s` (go install helm.sh/helm/v3/cmd/helm@v3.22.0 into the user cache), "+
				"or set %s to a helm v3 binary\n", err, installScript, envHelm)
			os.Exit(1)
		}
		os.Setenv(envHelm, path)
	}
	// The binary is built outside the namespace too: TestChartRunsFleet runs it.
	cluster.MainWithBinary(m)
}

// installHelm runs the install script, which builds helm the first time and then only
// prints the cached path.
func installHelm() (string, error) {
	cmd := exec.Command("bash", filepath.Join(repoRoot(), installScript))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", err
	}
	path := strings.TrimSpace(string(out))
	if _, err := os.Stat(path); err != nil {
		return "", err
	}
	return path, nil
}

// repoRoot is the repository's top folder, found from this file's place.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// chartDir is the chart under test.
func chartDir() string { return filepath.Join(repoRoot(), "charts", "switchyard") }

// helm runs the helm binary with a private configuration, cache and data folder, so
// that nothing of the user's (repositories, plugins) takes part, and no cluster; it
// returns its standard output, or its standard error as the error.
func helm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return helmWithCluster(t, "", args...)
}

// helmWithCluster is helm talking to the cluster of kubeconfig (none when empty).
func helmWithCluster(t testing.TB, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	if kubeconfig == "" {
		kubeconfig = filepath.Join(home, "no-kubeconfig")
	}
	cmd := exec.Command(os.Getenv(envHelm), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+kubeconfig,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// release names what one render installs.
type release struct {
	name, namespace string
	// values is a file under testdata/values, without ".yaml".
	values string
	// extra are more helm template flags (--set, --include-crds, --api-versions).
	extra []string
}

// render runs helm template for r. The Kubernetes version is the harness's (whose
// API server, built without version stamps, reports v0.0.0), so that renders do not
// depend on the default of the helm build.
func render(t testing.TB, r release) (string, error) {
	t.Helper()
	args := []string{"template", r.name, chartDir(),
		"--namespace", r.namespace,
		"--kube-version", harnessKubeVersion(t),
		"--values", valuesFile(r.values),
	}
	return helm(t, append(args, r.extra...)...)
}

// mustRender is render for values that must render.
func mustRender(t testing.TB, r release) string {
	t.Helper()
	out, err := render(t, r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func valuesFile(name string) string {
	return filepath.Join(repoRoot(), "e2e", "helm", "testdata", "values", name+".yaml")
}

// valuesCases are the values files that have golden renders and are installed on the
// harness.
var valuesCases = []string{"defaults", "ha", "node", "north-south"}

// harnessKubeVersion is the version of k8s.io/kubernetes that e2e/controlplane builds
// the harness's API server from.
func harnessKubeVersion(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "e2e", "controlplane", "kube", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 3 && fields[0] == "require" && fields[1] == "k8s.io/kubernetes" {
			return fields[2]
		}
	}
	t.Fatal("e2e/controlplane/kube/go.mod does not require k8s.io/kubernetes")
	return ""
}

// documents splits a multi-document YAML stream into its non-empty documents.
func documents(stream string) []string {
	var docs []string
	for _, doc := range strings.Split("\n"+stream, "\n---") {
		if strings.TrimSpace(stripComments(doc)) != "" {
			docs = append(docs, doc)
		}
	}
	return docs
}

// stripComments drops whole-line comments, which helm adds to name each source.
func stripComments(doc string) string {
	var kept []string
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}
