package translate

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// TestRolloutResultNamesEveryCanaryBackend checks that a Rollout's result names
// every backend of the snapshot that stands for its canary, the variants that present
// a Gateway's client certificate included: the proxy counts outcomes by backend
// name, so an analysis that read the plain name alone would see no canary traffic
// through such a Gateway and wait forever.
func TestRolloutResultNamesEveryCanaryBackend(t *testing.T) {
	in := decodeGolden(t, "gateway-backend-client-cert")
	canary := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "secure-v2", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "https", Port: 443}}}}
	in.Services = append(in.Services, canary)
	for _, p := range in.BackendTLSPolicies {
		if p.Name == "secure" {
			p.Spec.TargetRefs = append(p.Spec.TargetRefs, gwv1.LocalPolicyTargetReferenceWithSectionName{
				LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Group: "", Kind: "Service", Name: "secure-v2"}})
		}
	}
	ro := &v1alpha1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "secure", Namespace: "default", Generation: 1},
		Spec: v1alpha1.RolloutSpec{
			TargetRef: gwv1.LocalPolicyTargetReferenceWithSectionName{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{
				Group: gatewayGroup, Kind: kindHTTPRoute, Name: "r"}},
			Stable: v1alpha1.RolloutBackend{Name: "secure", Port: 443},
			Canary: v1alpha1.RolloutBackend{Name: "secure-v2", Port: 443},
			Steps:  []v1alpha1.RolloutStep{{Weight: 50}},
		}}
	in.Rollouts = append(in.Rollouts, ro)
	out := Translate(in)
	res := out.Rollouts[types.NamespacedName{Namespace: "default", Name: "secure"}]
	if res.Accepted.Status != metav1.ConditionTrue {
		t.Fatalf("the Rollout was not accepted: %+v", res.Accepted)
	}
	var served []string
	for _, l := range out.Snapshot.Listeners {
		for _, vh := range l.VirtualHosts {
			for _, r := range vh.Routes {
				for _, rule := range r.Rules {
					for _, b := range rule.Backends {
						if strings.HasPrefix(b.Backend, res.CanaryBackend) && !slices.Contains(served, b.Backend) {
							served = append(served, b.Backend)
						}
					}
				}
			}
		}
	}
	if len(served) < 2 {
		t.Fatalf("the canary is served as %v; the case needs a client certificate variant", served)
	}
	slices.Sort(served)
	if !slices.Equal(res.CanaryBackends, served) {
		t.Fatalf("the result names the canary backends %v; the snapshot serves it as %v", res.CanaryBackends, served)
	}
}
