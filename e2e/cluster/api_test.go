package cluster_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/e2e/cluster"
)

var (
	trafficPolicies = schema.GroupVersionResource{Group: "switchyard.dev", Version: "v1alpha1", Resource: "trafficpolicies"}
	rollouts        = schema.GroupVersionResource{Group: "switchyard.dev", Version: "v1alpha1", Resource: "rollouts"}
)

func object(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &obj.Object); err != nil {
		t.Fatal(err)
	}
	return obj
}

// TestSwitchyardCRDsValidateAndDefault installs the generated CRDs into a real API
// server: it must apply their defaults and reject what their schema forbids.
func TestSwitchyardCRDsValidateAndDefault(t *testing.T) {
	c := cluster.Start(t)
	c.InstallSwitchyardAPI(t)
	client := dynamic.NewForConfigOrDie(c.Config)
	ctx := context.Background()
	created, err := client.Resource(trafficPolicies).Namespace("default").Create(ctx, object(t, `
apiVersion: switchyard.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: reviews}
spec:
  targetRefs: [{group: "", kind: Service, name: reviews}]
  retry: {perTryTimeout: 250ms, budget: {}}
  rateLimit:
    mode: Global
    rules: [{key: {type: ClientIP}, requests: 100, per: 1s, burst: 20}]
`), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a valid TrafficPolicy was rejected: %v", err)
	}
	attempts, _, _ := unstructured.NestedInt64(created.Object, "spec", "retry", "attempts")
	percent, _, _ := unstructured.NestedInt64(created.Object, "spec", "retry", "budget", "percent")
	failure, _, _ := unstructured.NestedString(created.Object, "spec", "rateLimit", "failureMode")
	if attempts != 2 || percent != 20 || failure != "LocalFallback" {
		t.Errorf("defaults not applied: attempts %d, budget percent %d, failureMode %q", attempts, percent, failure)
	}
	invalid := map[string]string{
		"retryOn":    `{targetRefs: [{group: "", kind: Service, name: a}], retry: {retryOn: [sometimes]}}`,
		"attempts":   `{targetRefs: [{group: "", kind: Service, name: a}], retry: {attempts: 11}}`,
		"targetRefs": `{targetRefs: []}`,
		"type":       `{targetRefs: [{group: "", kind: Service, name: a}], rateLimit: {rules: [{key: {type: Cookie}, requests: 1, per: 1s}]}}`,
		"per":        `{targetRefs: [{group: "", kind: Service, name: a}], rateLimit: {rules: [{key: {type: Route}, requests: 1, per: soon}]}}`,
	}
	for field, spec := range invalid {
		obj := object(t, "apiVersion: switchyard.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: bad}\nspec: "+spec)
		_, err := client.Resource(trafficPolicies).Namespace("default").Create(ctx, obj, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("spec %s: error %v; want a rejection naming %s", spec, err, field)
		}
	}
	rollout := object(t, `
apiVersion: switchyard.dev/v1alpha1
kind: Rollout
metadata: {name: reviews}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: reviews}
  stable: {name: reviews-v1, port: 9080}
  canary: {name: reviews-v2, port: 9080}
  headerMatch: [{name: x-canary, value: always}]
  steps: [{weight: 10, pause: 10m}, {weight: 100}]
  analysis: {maxErrorRate: "1%", maxLatencyP99: 500ms}
`)
	if _, err := client.Resource(rollouts).Namespace("default").Create(ctx, rollout, metav1.CreateOptions{}); err != nil {
		t.Fatalf("a valid Rollout was rejected: %v", err)
	}
	bad := object(t, `
apiVersion: switchyard.dev/v1alpha1
kind: Rollout
metadata: {name: bad}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: reviews}
  stable: {name: a, port: 1}
  canary: {name: b, port: 1}
  steps: [{weight: 101}]
  analysis: {maxErrorRate: "lots"}
`)
	if _, err := client.Resource(rollouts).Namespace("default").Create(ctx, bad, metav1.CreateOptions{}); err == nil ||
		!strings.Contains(err.Error(), "weight") || !strings.Contains(err.Error(), "maxErrorRate") {
		t.Fatalf("an invalid Rollout: %v; want weight and maxErrorRate rejected", err)
	}
}
