package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
)

// InstallSwitchyardAPI creates Switchyard's own CRDs (api/crds: TrafficPolicy,
// Rollout) and waits until they are established.
func (c *Cluster) InstallSwitchyardAPI(t testing.TB) {
	t.Helper()
	dir, err := switchyardCRDDir()
	if err != nil {
		t.Fatal(err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no CRDs in %s (%v)", dir, err)
	}
	client := dynamic.NewForConfigOrDie(c.Config)
	for _, path := range paths {
		obj, err := readObject(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Resource(crdResource).Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating CRD %s: %v", obj.GetName(), err)
		}
		c.waitEstablished(t, client, obj.GetName())
	}
}

// switchyardCRDDir finds api/crds of this repository from this source file's place.
func switchyardCRDDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the source tree")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "api", "crds")
	if _, err := os.Stat(dir); err != nil {
		return "", err
	}
	return dir, nil
}
