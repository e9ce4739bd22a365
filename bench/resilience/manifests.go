package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/bench/internal/benchkit"
)

// The manifests are built from the real API types and marshalled, so that a field
// renamed in api/v1alpha1 or in the Gateway API breaks the build of this benchmark
// instead of producing YAML the gateway rejects at run time.

const (
	namespace = "default"
	// probePath is served by a route of its own without policies, so that waiting
	// for a gateway to serve spends no rate-limit token and feeds no analysis.
	probePath = "/probe"
)

// manifests collects the objects of one gateway's configuration.
type manifests struct {
	objects []any
}

// add appends objects.
func (m *manifests) add(objs ...any) { m.objects = append(m.objects, objs...) }

// write marshals the objects as one multi-document YAML file in dir.
func (m *manifests) write(dir string) error {
	docs := make([]string, 0, len(m.objects))
	for _, obj := range m.objects {
		doc, err := benchkit.Manifest(obj)
		if err != nil {
			return err
		}
		docs = append(docs, doc)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(strings.Join(docs, "---\n")), 0o644)
}

func meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace}
}

func ptr[T any](v T) *T { return &v }

// routeObject is an HTTPRoute of the bench Gateway sending the path prefix to one
// Service (port 80).
func routeObject(name, pathPrefix, service string) *gwv1.HTTPRoute {
	return &gwv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1", Kind: "HTTPRoute"},
		ObjectMeta: meta(name),
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "bench"}}},
			Rules: []gwv1.HTTPRouteRule{{
				Matches: []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{
					Type: ptr(gwv1.PathMatchPathPrefix), Value: ptr(pathPrefix)}}},
				BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
					Name: gwv1.ObjectName(service), Port: ptr(gwv1.PortNumber(80))}}}},
			}},
		},
	}
}

// serviceObjects are a Service (port 80, named http) and one EndpointSlice per
// backend, since each backend listens on a port of its own.
func serviceObjects(name string, backends ...*backend) []any {
	out := []any{&corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(name),
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}}
	for i, b := range backends {
		slice := &discoveryv1.EndpointSlice{
			TypeMeta:    metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
			ObjectMeta:  meta(fmt.Sprintf("%s-%d", name, i)),
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{{
				Name: ptr("http"), Port: ptr(int32(b.port())), Protocol: ptr(corev1.ProtocolTCP)}},
			Endpoints: []discoveryv1.Endpoint{{
				Addresses: []string{"127.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}},
		}
		slice.Labels = map[string]string{discoveryv1.LabelServiceName: name}
		out = append(out, slice)
	}
	return out
}

// baseManifests are the bench Gateway on gatewayPort, the route "main" (path "/")
// to the Service "main" with the given backends, and the policy-free probe route to
// the Service "probe" (backed by probeBackend).
func baseManifests(gatewayPort int, probeBackend *backend, mainBackends ...*backend) *manifests {
	m := &manifests{}
	m.add(benchkit.Gateway(namespace, gatewayPort), routeObject("main", "/", "main"), routeObject("probe", probePath, "probe"))
	m.add(serviceObjects("main", mainBackends...)...)
	m.add(serviceObjects("probe", probeBackend)...)
	return m
}

// trafficPolicy is a TrafficPolicy named name attached to the HTTPRoute route.
func trafficPolicy(name, route string, spec v1alpha1.TrafficPolicySpec) *v1alpha1.TrafficPolicy {
	spec.TargetRefs = []gwv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{
		Group: gwv1.GroupName, Kind: "HTTPRoute", Name: gwv1.ObjectName(route)}}}
	return &v1alpha1.TrafficPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "TrafficPolicy"},
		ObjectMeta: meta(name),
		Spec:       spec,
	}
}

// retryPolicy retries gateway errors attempts times, with an optional budget.
func retryPolicy(attempts int32, budget *v1alpha1.RetryBudgetPolicy) *v1alpha1.RetryPolicy {
	return &v1alpha1.RetryPolicy{
		Attempts: ptr(attempts),
		RetryOn:  []v1alpha1.RetryOn{"gateway-error"},
		Backoff:  &v1alpha1.BackoffPolicy{Base: ptr(gwv1.Duration("5ms")), Max: ptr(gwv1.Duration("20ms"))},
		Budget:   budget,
	}
}

// globalRateLimit is a Global rate limit keyed by route.
func globalRateLimit(requests int64, per string, burst int64, failure v1alpha1.RateLimitFailureMode) *v1alpha1.RateLimitPolicy {
	return &v1alpha1.RateLimitPolicy{
		Mode:        "Global",
		FailureMode: failure,
		Rules: []v1alpha1.RateLimitRule{{
			Key:      v1alpha1.RateLimitKey{Type: "Route"},
			Requests: requests, Per: gwv1.Duration(per), Burst: burst,
		}},
	}
}

// rolloutObject shifts the route "main" from the Service stable to canary.
func rolloutObject(name string, steps []v1alpha1.RolloutStep, analysis *v1alpha1.RolloutAnalysis) *v1alpha1.Rollout {
	return &v1alpha1.Rollout{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Rollout"},
		ObjectMeta: meta(name),
		Spec: v1alpha1.RolloutSpec{
			TargetRef: gwv1.LocalPolicyTargetReferenceWithSectionName{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{
				Group: gwv1.GroupName, Kind: "HTTPRoute", Name: "main"}},
			Stable:   v1alpha1.RolloutBackend{Name: "stable", Port: 80},
			Canary:   v1alpha1.RolloutBackend{Name: "canary", Port: 80},
			Steps:    steps,
			Analysis: analysis,
		},
	}
}
