package cluster_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/e2e/cluster"
	"github.com/switchyard-dev/switchyard/gateway/dataplane"
	_ "github.com/switchyard-dev/switchyard/plugins/all"
)

// TestTrafficReachesClusterPods runs the whole path on real parts: a Deployment's Pods
// are made by the controller-manager and run by the harness kubelet, the cluster's own
// EndpointSlices list them, the objects read back from the API server are translated,
// and a gateway on a Gateway address inside the namespace forwards to the Pods.
func TestTrafficReachesClusterPods(t *testing.T) {
	c := cluster.Start(t)
	c.InstallGatewayAPI(t)
	c.StartKubelet(t, "node-a", 1)
	kube := kubernetes.NewForConfigOrDie(c.Config)
	gw := gwclient.NewForConfigOrDie(c.Config).GatewayV1()
	ctx := context.Background()
	createWebApp(t, kube)
	waitReadyEndpoints(t, kube, "web", 2)

	port := gwv1.PortNumber(80)
	must(t, create(gw.GatewayClasses().Create(ctx, &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "switchyard"},
		Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}}, metav1.CreateOptions{})))
	must(t, create(gw.Gateways("default").Create(ctx, &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "default"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "switchyard",
			Addresses: []gwv1.GatewaySpecAddress{{Type: ptr(gwv1.IPAddressType), Value: "10.244.0.10"}},
			Listeners: []gwv1.Listener{{Name: "http", Protocol: gwv1.HTTPProtocolType, Port: 80}}}}, metav1.CreateOptions{})))
	must(t, create(gw.HTTPRoutes("default").Create(ctx, &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
				BackendObjectReference: gwv1.BackendObjectReference{Name: "web", Port: &port}}}}}},
		}}, metav1.CreateOptions{})))

	out := translate.Translate(readInput(t, c))
	engine := dataplane.New(dataplane.Options{})
	t.Cleanup(func() { _ = engine.Shutdown(context.Background()) })
	if err := engine.Apply(out.Snapshot); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 20; i++ {
		resp, err := client.Get("http://10.244.0.10/hello")
		if err != nil {
			t.Fatal(err)
		}
		var reply struct {
			Pod, Namespace string
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &reply) != nil {
			t.Fatalf("status %d body %s", resp.StatusCode, body)
		}
		if !strings.HasPrefix(reply.Pod, "web-") || reply.Namespace != "default" {
			t.Fatalf("reply from pod %q in %q, want a web-... pod in default", reply.Pod, reply.Namespace)
		}
		seen[reply.Pod] = true
	}
	if len(seen) != 2 {
		t.Errorf("traffic reached pods %v, want both replicas", seen)
	}
}

func createWebApp(t *testing.T, kube kubernetes.Interface) {
	ctx := context.Background()
	labels := map[string]string{"app": "web"}
	replicas := int32(2)
	must(t, create(kube.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromInt32(3000)}}},
	}, metav1.CreateOptions{})))
	must(t, create(kube.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "echo", Image: "echo",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 3000}}}}},
			},
		},
	}, metav1.CreateOptions{})))
}

// waitReadyEndpoints waits for the endpointslice controller to list n ready endpoints.
func waitReadyEndpoints(t *testing.T, kube kubernetes.Interface, service string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		slices, err := kube.DiscoveryV1().EndpointSlices("default").List(context.Background(),
			metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
		ready := 0
		if err == nil {
			for _, s := range slices.Items {
				for _, e := range s.Endpoints {
					if e.Conditions.Ready != nil && *e.Conditions.Ready {
						ready++
					}
				}
			}
		}
		if ready == n {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("service %s did not get %d ready endpoints", service, n)
}

// readInput lists what the translator reads, as a controller's informers would.
func readInput(t *testing.T, c *cluster.Cluster) *translate.Input {
	t.Helper()
	ctx := context.Background()
	kube := kubernetes.NewForConfigOrDie(c.Config)
	gw := gwclient.NewForConfigOrDie(c.Config).GatewayV1()
	in := &translate.Input{}
	classes, err := gw.GatewayClasses().List(ctx, metav1.ListOptions{})
	must(t, err)
	for i := range classes.Items {
		in.GatewayClasses = append(in.GatewayClasses, &classes.Items[i])
	}
	gateways, err := gw.Gateways("").List(ctx, metav1.ListOptions{})
	must(t, err)
	for i := range gateways.Items {
		in.Gateways = append(in.Gateways, &gateways.Items[i])
	}
	routes, err := gw.HTTPRoutes("").List(ctx, metav1.ListOptions{})
	must(t, err)
	for i := range routes.Items {
		in.HTTPRoutes = append(in.HTTPRoutes, &routes.Items[i])
	}
	services, err := kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	must(t, err)
	for i := range services.Items {
		in.Services = append(in.Services, &services.Items[i])
	}
	slices, err := kube.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
	must(t, err)
	for i := range slices.Items {
		in.EndpointSlices = append(in.EndpointSlices, &slices.Items[i])
	}
	return in
}

func create[T any](_ T, err error) error { return err }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
