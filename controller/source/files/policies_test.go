package files

import (
	"strings"
	"testing"
)

const policyDocs = `apiVersion: switchyard.dev/v1alpha1
kind: TrafficPolicy
metadata:
  name: reviews
spec:
  targetRefs: [{group: "", kind: Service, name: reviews}]
  retry: {attempts: 2, retryOn: [connect-failure, "503"]}
status:
  ancestors: [{ancestorRef: {name: gw}, controllerName: example.com/other, conditions: []}]
---
apiVersion: switchyard.dev/v1alpha1
kind: Rollout
metadata:
  name: reviews
  namespace: shop
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: reviews}
  stable: {name: reviews-v1, port: 9080}
  canary: {name: reviews-v2, port: 9080}
  steps: [{weight: 10, pause: 1m}, {weight: 100}]
  analysis: {interval: 30s, minRequests: 50, maxErrorRate: "1%"}
status: {phase: Promoted, currentStep: 1, canaryWeight: 100}
`

func TestLoadPolicyKinds(t *testing.T) {
	in, err := Load(writeFiles(t, map[string]string{"policies.yaml": policyDocs}))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.TrafficPolicies) != 1 || len(in.Rollouts) != 1 {
		t.Fatalf("got %d TrafficPolicies and %d Rollouts, want 1 and 1", len(in.TrafficPolicies), len(in.Rollouts))
	}
	p := in.TrafficPolicies[0]
	if p.Namespace != "default" || p.Generation != 1 || *p.Spec.Retry.Attempts != 2 || p.Spec.Retry.RetryOn[1] != "503" {
		t.Errorf("TrafficPolicy %s/%s generation %d spec %+v", p.Namespace, p.Name, p.Generation, p.Spec.Retry)
	}
	if len(p.Status.Ancestors) != 0 {
		t.Errorf("a TrafficPolicy's status was read from its file: %+v", p.Status)
	}
	r := in.Rollouts[0]
	if r.Namespace != "shop" || r.Generation != 1 || len(r.Spec.Steps) != 2 || r.Spec.Analysis.MaxErrorRate != "1%" ||
		*r.Spec.Steps[0].Pause != "1m" || r.Spec.Canary.Port != 9080 {
		t.Errorf("Rollout %s/%s generation %d spec %+v", r.Namespace, r.Name, r.Generation, r.Spec)
	}
	if r.Status.Phase != "" || r.Status.CanaryWeight != 0 {
		t.Errorf("a Rollout's status was read from its file: %+v", r.Status)
	}
}

func TestLoadPolicyKindsStrictly(t *testing.T) {
	cases := map[string]string{
		"apiVersion: switchyard.dev/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec:\n  steps: [{weight: 10, pauze: 1m}]\n": `unknown field "spec.steps[0].pauze"`,
		"apiVersion: switchyard.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: p}\nspec:\n  retry: {Attempts: 2}\n":       `unknown field "spec.retry.Attempts"`,
		"apiVersion: switchyard.dev/v1\nkind: Rollout\nmetadata: {name: r}\n":                                                  "use switchyard.dev/v1alpha1",
	}
	for doc, want := range cases {
		_, err := Load(writeFiles(t, map[string]string{"bad.yaml": doc}))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("loading %q: error %v, want one containing %q", doc, err, want)
		}
	}
}
