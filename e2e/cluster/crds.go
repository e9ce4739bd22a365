package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// GatewayAPICRDs are the Gateway API CRDs the tests install, from the experimental
// channel of the gateway-api module this project builds on, with their bundle-version
// and channel annotations as published.
var GatewayAPICRDs = []string{"gatewayclasses", "gateways", "httproutes", "listenersets", "referencegrants", "backendtlspolicies"}

// InstallGatewayAPI creates the Gateway API CRDs and waits until they are established.
func (c *Cluster) InstallGatewayAPI(t testing.TB) {
	t.Helper()
	c.InstallGatewayAPIKinds(t, GatewayAPICRDs...)
}

// InstallGatewayAPIKinds creates the named Gateway API CRDs only (plural resource
// names, as in GatewayAPICRDs), as in a cluster with an older Gateway API bundle.
func (c *Cluster) InstallGatewayAPIKinds(t testing.TB, names ...string) {
	t.Helper()
	dir, err := gatewayAPIModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	client := dynamic.NewForConfigOrDie(c.Config)
	ctx := context.Background()
	for _, name := range names {
		path := filepath.Join(dir, "config", "crd", "experimental", "gateway.networking.k8s.io_"+name+".yaml")
		obj, err := readObject(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Resource(crdResource).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating CRD %s: %v", obj.GetName(), err)
		}
		c.waitEstablished(t, client, obj.GetName())
	}
}

func (c *Cluster) waitEstablished(t testing.TB, client dynamic.Interface, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		obj, err := client.Resource(crdResource).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
			for _, raw := range conds {
				cond, _ := raw.(map[string]any)
				if cond["type"] == "Established" && cond["status"] == "True" {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("CRD %s was not established", name)
}

// gatewayAPIModuleDir finds the gateway-api module in the module cache. It runs the go
// command offline, which works inside the namespace because building the tests already
// downloaded the module.
func gatewayAPIModuleDir() (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api")
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locating sigs.k8s.io/gateway-api: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func readObject(path string) (*unstructured.Unstructured, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(b, &obj.Object); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return obj, nil
}
