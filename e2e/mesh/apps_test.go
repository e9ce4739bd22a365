package mesh_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/e2e/echo"
)

// app is a Deployment of echo Pods (served in the kubelet) with its labels.
type app struct {
	name     string
	labels   map[string]string
	replicas int32
	env      []corev1.EnvVar
	// node, when set, pins the Pods to that node.
	node string
}

// createApp creates the Deployment.
func (m *mesh) createApp(t *testing.T, a app) {
	t.Helper()
	_, err := m.kube.AppsV1().Deployments("default").Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: a.name},
		Spec: appsv1.DeploymentSpec{Replicas: &a.replicas, Selector: &metav1.LabelSelector{MatchLabels: a.labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: a.labels},
				Spec: corev1.PodSpec{NodeSelector: nodeSelector(a.node), Containers: []corev1.Container{{Name: "echo", Image: "echo", Env: a.env,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 3000}}}}}}},
	}, metav1.CreateOptions{})
	must(t, err)
}

func nodeSelector(node string) map[string]string {
	if node == "" {
		return nil
	}
	return map[string]string{corev1.LabelHostname: node}
}

// createService creates a Service on port 80 in front of the Pods with the label
// app=selector, and waits until its EndpointSlices list want ready endpoints.
func (m *mesh) createService(t *testing.T, name, selector string, want int) *corev1.Service {
	t.Helper()
	svc, err := m.kube.CoreV1().Services("default").Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": selector},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(3000)}}},
	}, metav1.CreateOptions{})
	must(t, err)
	waitFor(t, 60*time.Second, fmt.Sprintf("%d ready endpoints of %s", want, name), func() bool {
		return m.readyEndpoints(name) == want
	})
	return svc
}

func (m *mesh) readyEndpoints(service string) int {
	slices, err := m.kube.DiscoveryV1().EndpointSlices("default").List(context.Background(),
		metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + service})
	if err != nil {
		return 0
	}
	n := 0
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				n++
			}
		}
	}
	return n
}

// podNodes maps the names of the Pods with label app=selector to their nodes.
func (m *mesh) podNodes(t *testing.T, selector string) map[string]string {
	t.Helper()
	pods, err := m.kube.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + selector})
	must(t, err)
	out := map[string]string{}
	for _, p := range pods.Items {
		out[p.Name] = p.Spec.NodeName
	}
	return out
}

// reply is one response: its status, the echo Pod that answered ("" when the body
// is not an echo reply) and the body.
type reply struct {
	status int
	pod    string
	body   string
}

// get sends one GET with optional headers and reads the reply; transport errors
// are returned as such.
func get(client *http.Client, target string, headers map[string]string) (reply, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, target, nil)
	if err != nil {
		return reply{}, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	var r echo.Reply
	_ = json.Unmarshal(body, &r)
	return reply{status: resp.StatusCode, pod: r.Pod, body: string(body)}, nil
}

// mustGet is get for requests that must be answered (any status).
func mustGet(t *testing.T, client *http.Client, target string, headers map[string]string) reply {
	t.Helper()
	r, err := get(client, target, headers)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return r
}

// serviceURL is the URL of a default-namespace Service by its cluster DNS name.
func serviceURL(name, path string) string {
	return "http://" + name + ".default.svc.cluster.local" + path
}

// meshRoute is an HTTPRoute whose parent is the Service parent (the mesh pattern).
func meshRoute(name, parent string, rules []gwv1.HTTPRouteRule) *gwv1.HTTPRoute {
	group, kind := gwv1.Group(""), gwv1.Kind("Service")
	return &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{
			{Group: &group, Kind: &kind, Name: gwv1.ObjectName(parent)}}}, Rules: rules}}
}

// backend is a backendRef to a default-namespace Service's port 80 with a weight.
func backend(service string, weight int32) gwv1.HTTPBackendRef {
	port := gwv1.PortNumber(80)
	return gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{Weight: &weight,
		BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(service), Port: &port}}}
}

// waitRouteAccepted waits until the route's status accepts it under its Service
// parent, at its latest generation.
func (m *mesh) waitRouteAccepted(t *testing.T, name string) {
	t.Helper()
	waitFor(t, 30*time.Second, "HTTPRoute "+name+" accepted under its Service", func() bool {
		r, err := m.gw.GatewayV1().HTTPRoutes("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, p := range r.Status.Parents {
			for _, c := range p.Conditions {
				if c.Type == "Accepted" && c.Status == metav1.ConditionTrue && c.ObservedGeneration == r.Generation {
					return true
				}
			}
		}
		return false
	})
}

var trafficPolicies = schema.GroupVersionResource{Group: "switchyard.dev", Version: "v1alpha1", Resource: "trafficpolicies"}

// createTrafficPolicy creates a TrafficPolicy for the Service target with spec
// (the fields besides targetRefs) and waits until its status accepts it.
func (m *mesh) createTrafficPolicy(t *testing.T, name, target string, spec map[string]any) {
	t.Helper()
	spec["targetRefs"] = []any{map[string]any{"group": "", "kind": "Service", "name": target}}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "switchyard.dev/v1alpha1", "kind": "TrafficPolicy",
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"spec":     spec,
	}}
	_, err := m.dyn.Resource(trafficPolicies).Namespace("default").Create(context.Background(), obj, metav1.CreateOptions{})
	must(t, err)
	m.waitPolicyAccepted(t, name)
}

// updateTrafficPolicy replaces a TrafficPolicy's spec (besides targetRefs) and waits
// until its status accepts the new generation.
func (m *mesh) updateTrafficPolicy(t *testing.T, name string, spec map[string]any) {
	t.Helper()
	got, err := m.dyn.Resource(trafficPolicies).Namespace("default").Get(context.Background(), name, metav1.GetOptions{})
	must(t, err)
	targets, _, _ := unstructured.NestedSlice(got.Object, "spec", "targetRefs")
	spec["targetRefs"] = targets
	got.Object["spec"] = spec
	_, err = m.dyn.Resource(trafficPolicies).Namespace("default").Update(context.Background(), got, metav1.UpdateOptions{})
	must(t, err)
	m.waitPolicyAccepted(t, name)
}

// waitPolicyAccepted waits until a TrafficPolicy's status accepts its latest
// generation under some ancestor.
func (m *mesh) waitPolicyAccepted(t *testing.T, name string) {
	t.Helper()
	waitFor(t, 30*time.Second, "TrafficPolicy "+name+" accepted", func() bool {
		got, err := m.dyn.Resource(trafficPolicies).Namespace("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		ancestors, _, _ := unstructured.NestedSlice(got.Object, "status", "ancestors")
		for _, a := range ancestors {
			conds, _, _ := unstructured.NestedSlice(a.(map[string]any), "conditions")
			for _, c := range conds {
				cond := c.(map[string]any)
				generation, _ := cond["observedGeneration"].(int64)
				if cond["type"] == "Accepted" && cond["status"] == "True" && generation == got.GetGeneration() {
					return true
				}
			}
		}
		return false
	})
}

// podLog reads a default-namespace Pod's log through the API server.
func (m *mesh) podLog(t *testing.T, pod string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := m.kube.CoreV1().Pods("default").GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("pods/log of %s: %v", pod, err)
	}
	return string(body)
}

// countRequests counts the requests an echo Pod's log shows.
func countRequests(log string) int { return strings.Count(log, "Echoing back request made to") }
