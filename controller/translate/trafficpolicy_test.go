package translate

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// decodeGolden reads a golden input.
func decodeGolden(t *testing.T, name string) *Input {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	in, errs := decodeManifests(data)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	in.Options.Now = goldenNow
	return in
}

// acceptedReason is the reason of the (single-controller) Accepted condition of a
// policy status, "" when there is none.
func acceptedReason(st gwv1.PolicyStatus) string {
	if len(st.Ancestors) == 0 {
		return ""
	}
	for _, c := range st.Ancestors[0].Conditions {
		if c.Type == string(gwv1.PolicyConditionAccepted) {
			return c.Reason
		}
	}
	return ""
}

// TestInvalidPoliciesContributeNothing translates the invalid-policy case without
// each rejected policy in turn: the snapshot must not change, since a rejected
// policy adds nothing to the configuration.
func TestInvalidPoliciesContributeNothing(t *testing.T) {
	for _, name := range []string{"trafficpolicy-invalid", "trafficpolicy-target-not-found", "trafficpolicy-conflicts"} {
		in := decodeGolden(t, name)
		out := Translate(in)
		rejected := 0
		for i, p := range in.TrafficPolicies {
			reason := acceptedReason(out.TrafficPolicies[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}])
			if reason == "" {
				t.Fatalf("%s: policy %s has no Accepted condition", name, p.Name)
			}
			if reason == string(gwv1.PolicyReasonAccepted) {
				continue
			}
			rejected++
			without := *in
			without.TrafficPolicies = slices.Delete(slices.Clone(in.TrafficPolicies), i, i+1)
			if got := Translate(&without).Snapshot.Version; got != out.Snapshot.Version {
				t.Errorf("%s: removing policy %s (%s) changed the snapshot", name, p.Name, reason)
			}
		}
		if rejected == 0 {
			t.Errorf("%s: no policy was rejected; the case no longer tests anything", name)
		}
	}
}

// TestRejectedRolloutsChangeNothing does the same for Rollouts.
func TestRejectedRolloutsChangeNothing(t *testing.T) {
	for _, name := range []string{"rollout-invalid", "rollout-conflicts"} {
		in := decodeGolden(t, name)
		out := Translate(in)
		rejected := 0
		for i, r := range in.Rollouts {
			res := out.Rollouts[types.NamespacedName{Namespace: r.Namespace, Name: r.Name}]
			if res.Accepted.Status == metav1.ConditionTrue {
				continue
			}
			rejected++
			without := *in
			without.Rollouts = slices.Delete(slices.Clone(in.Rollouts), i, i+1)
			if got := Translate(&without).Snapshot.Version; got != out.Snapshot.Version {
				t.Errorf("%s: removing rollout %s (%s) changed the snapshot", name, r.Name, res.Accepted.Reason)
			}
		}
		if rejected == 0 {
			t.Errorf("%s: no rollout was rejected; the case no longer tests anything", name)
		}
	}
}

func TestExactWeights(t *testing.T) {
	cases := []struct {
		in   []int64
		want []int32
	}{
		{[]int64{90, 10}, []int32{9, 1}},
		{[]int64{270, 100, 30}, []int32{27, 10, 3}},
		{[]int64{0, 100}, []int32{0, 1}},
		{[]int64{0, 0}, []int32{0, 0}},
		{[]int64{100}, []int32{1}},
	}
	for _, c := range cases {
		if got := exactWeights(slices.Clone(c.in)); !slices.Equal(got, c.want) {
			t.Errorf("exactWeights(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	// Weights beyond the API's maximum (from files) cannot overflow, and a small
	// non-zero weight stays non-zero.
	huge := []int64{math.MaxInt32 * 97, 3, 0}
	got := exactWeights(slices.Clone(huge))
	if got[0] <= 0 || got[1] != 1 || got[2] != 0 {
		t.Errorf("exactWeights(%v) = %v, want a positive first weight, 1 and 0", huge, got)
	}
}

// withSyntheticPolicies adds to a generated cluster a TrafficPolicy per Gateway
// (timeout, retry, rate limit, circuit breaker), per namespace a Service policy, an
// HTTPRoute policy and a rule policy, and per namespace a live Rollout.
func withSyntheticPolicies(in *Input, shape syntheticShape) {
	created := metav1.NewTime(time.Date(2024, 8, 1, 0, 0, 0, 0, time.UTC))
	meta := func(ns, name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1, CreationTimestamp: created}
	}
	target := func(group, kind, name, section string) []gwv1.LocalPolicyTargetReferenceWithSectionName {
		ref := gwv1.LocalPolicyTargetReferenceWithSectionName{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{
			Group: gwv1.Group(group), Kind: gwv1.Kind(kind), Name: gwv1.ObjectName(name)}}
		if section != "" {
			ref.SectionName = ptrTo(gwv1.SectionName(section))
		}
		return []gwv1.LocalPolicyTargetReferenceWithSectionName{ref}
	}
	for g := range shape.Gateways {
		in.TrafficPolicies = append(in.TrafficPolicies, &v1alpha1.TrafficPolicy{
			ObjectMeta: meta(syntheticInfraNamespace, fmt.Sprintf("gw%d-policy", g)),
			Spec: v1alpha1.TrafficPolicySpec{
				TargetRefs:     target(gatewayGroup, kindGateway, fmt.Sprintf("gw%d", g), ""),
				Timeout:        &v1alpha1.TimeoutPolicy{Request: ptrTo(gwv1.Duration("30s"))},
				Retry:          &v1alpha1.RetryPolicy{},
				CircuitBreaker: &v1alpha1.CircuitBreakerPolicy{MaxRequests: ptrTo(int32(1000))},
				RateLimit: &v1alpha1.RateLimitPolicy{Rules: []v1alpha1.RateLimitRule{{
					Key: v1alpha1.RateLimitKey{Type: "ClientIP"}, Requests: 100, Per: "1s"}}},
			},
		})
	}
	for n := range shape.Namespaces {
		ns := syntheticNamespace(n)
		in.TrafficPolicies = append(in.TrafficPolicies,
			&v1alpha1.TrafficPolicy{ObjectMeta: meta(ns, "service"), Spec: v1alpha1.TrafficPolicySpec{
				TargetRefs:       target(coreGroup, kindService, syntheticServiceName(0), ""),
				Retry:            &v1alpha1.RetryPolicy{Attempts: ptrTo(int32(3))},
				OutlierDetection: &v1alpha1.OutlierDetectionPolicy{Consecutive5xx: ptrTo(int32(5))},
			}},
			&v1alpha1.TrafficPolicy{ObjectMeta: meta(ns, "route"), Spec: v1alpha1.TrafficPolicySpec{
				TargetRefs: target(gatewayGroup, kindHTTPRoute, "route-001", ""),
				Timeout:    &v1alpha1.TimeoutPolicy{Request: ptrTo(gwv1.Duration("5s"))},
			}},
			&v1alpha1.TrafficPolicy{ObjectMeta: meta(ns, "rule"), Spec: v1alpha1.TrafficPolicySpec{
				TargetRefs: target(gatewayGroup, kindHTTPRoute, "route-002", "health"),
				Retry:      &v1alpha1.RetryPolicy{Attempts: ptrTo(int32(0))},
			}})
		in.Rollouts = append(in.Rollouts, &v1alpha1.Rollout{ObjectMeta: meta(ns, "canary"), Spec: v1alpha1.RolloutSpec{
			TargetRef:   target(gatewayGroup, kindHTTPRoute, "route-004", "")[0],
			Stable:      v1alpha1.RolloutBackend{Name: gwv1.ObjectName(syntheticServiceName(4)), Port: 80},
			Canary:      v1alpha1.RolloutBackend{Name: gwv1.ObjectName(syntheticServiceName(7)), Port: 80},
			HeaderMatch: []v1alpha1.RolloutHeaderMatch{{Name: "x-canary", Value: "1"}},
			Steps:       []v1alpha1.RolloutStep{{Weight: 10}, {Weight: 100}},
		}})
	}
}

// TestSyntheticClusterWithPolicies checks policies over a generated cluster: all are
// accepted, every served rule carries its Gateway's rate limit (nothing more
// specific sets one) with the Gateway-wide bucket ID, and every backend carries
// the circuit breaker that the Gateways' policies give.
func TestSyntheticClusterWithPolicies(t *testing.T) {
	in, _ := syntheticCluster(t, clusterSmall)
	withSyntheticPolicies(in, clusterSmall)
	out := Translate(in)
	if err := out.Snapshot.Validate(); err != nil {
		t.Fatalf("snapshot does not validate: %v", err)
	}
	for key, st := range out.TrafficPolicies {
		if reason := acceptedReason(st); reason != string(gwv1.PolicyReasonAccepted) {
			t.Errorf("policy %s: Accepted reason %q", key, reason)
		}
	}
	for key, res := range out.Rollouts {
		if res.Accepted.Status != metav1.ConditionTrue || res.Rules != 1 {
			t.Errorf("rollout %s: %+v", key, res)
		}
	}
	rules := 0
	for _, l := range out.Snapshot.Listeners {
		for _, vh := range l.VirtualHosts {
			gateway := strings.SplitN(vh.Name, "/", 3)[1]
			want := fmt.Sprintf("trafficpolicy/%s/%s-policy/gateway/%s", syntheticInfraNamespace, gateway, gateway)
			for _, r := range vh.Routes {
				for i, rule := range r.Rules {
					rules++
					if len(rule.Filters) == 0 || rule.Filters[0].RateLimit == nil || rule.Filters[0].RateLimit.ID != want {
						t.Fatalf("%s rule %d on %s does not start with rate limit %s: %+v", r.Name, i, vh.Name, want, rule.Filters)
					}
				}
			}
		}
	}
	if rules == 0 {
		t.Fatal("no rules served")
	}
	for _, b := range out.Snapshot.Backends {
		if b.CircuitBreaker == nil || b.CircuitBreaker.MaxRequests != 1000 {
			t.Errorf("backend %s: circuit breaker %+v", b.Name, b.CircuitBreaker)
		}
		if wantOutlier := strings.HasSuffix(b.Name, "/"+syntheticServiceName(0)+":80"); (b.OutlierDetection != nil) != wantOutlier {
			t.Errorf("backend %s: outlier detection %+v", b.Name, b.OutlierDetection)
		}
	}
}

// BenchmarkTranslate5kRoutesWithPolicies is BenchmarkTranslate5kRoutes with the
// policies and rollouts of withSyntheticPolicies (5 Gateway policies, 150
// namespace policies, 50 rollouts).
func BenchmarkTranslate5kRoutesWithPolicies(b *testing.B) {
	in, _ := syntheticCluster(b, cluster5k)
	withSyntheticPolicies(in, cluster5k)
	b.ReportAllocs()
	for b.Loop() {
		Translate(in)
	}
}
