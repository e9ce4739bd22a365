package cluster_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/e2e/cluster"
)

// The switchyard binary is built for the kubelet, which runs it for Pods of our image.
func TestMain(m *testing.M) { cluster.MainWithBinary(m) }

// TestRealAPIServerValidatesAndTranslates installs the Gateway API CRDs into a real
// API server, checks that it enforces their schema, and translates what it stores.
func TestRealAPIServerValidatesAndTranslates(t *testing.T) {
	c := cluster.Start(t)
	c.InstallGatewayAPI(t)
	ctx := context.Background()
	gw := gwclient.NewForConfigOrDie(c.Config).GatewayV1()
	kube := kubernetes.NewForConfigOrDie(c.Config)

	class := &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "switchyard"},
		Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}}
	if _, err := gw.GatewayClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	gateway := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "default"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "switchyard", Listeners: []gwv1.Listener{
			{Name: "http", Protocol: gwv1.HTTPProtocolType, Port: 80},
		}}}
	if _, err := gw.Gateways("default").Create(ctx, gateway, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	if _, err := kube.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	port := gwv1.PortNumber(80)
	route := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
				BackendObjectReference: gwv1.BackendObjectReference{Name: "web", Port: &port}}}}}},
		}}
	if _, err := gw.HTTPRoutes("default").Create(ctx, route, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The CRD schema is enforced by the real server: a path without a leading slash is
	// refused with a message naming the field.
	bad := route.DeepCopy()
	bad.Name = "bad"
	bad.Spec.Rules[0].Matches = []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Value: ptr("no-slash")}}}
	_, err := gw.HTTPRoutes("default").Create(ctx, bad, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "path") {
		t.Fatalf("invalid HTTPRoute: err = %v, want a validation error about the path", err)
	}

	in := readInput(t, c)
	out := translate.Translate(in)
	status := out.Gateways[types.NamespacedName{Namespace: "default", Name: "gw"}]
	if !conditionTrue(status.Conditions, "Accepted") {
		t.Errorf("Gateway conditions %+v, want Accepted=True", status.Conditions)
	}
	rs := out.HTTPRoutes[types.NamespacedName{Namespace: "default", Name: "web"}]
	if len(rs.Parents) != 1 || !conditionTrue(rs.Parents[0].Conditions, "Accepted") {
		t.Errorf("HTTPRoute status %+v, want one parent with Accepted=True", rs)
	}
}

func conditionTrue(conds []metav1.Condition, typ string) bool {
	for _, c := range conds {
		if c.Type == typ {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }

// TestNamespaceIsPrivate checks the isolation every harness test relies on: the only
// interface is loopback, and pod addresses are local and bindable, port 80 included.
func TestNamespaceIsPrivate(t *testing.T) {
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifaces {
		if i.Flags&net.FlagLoopback == 0 {
			t.Errorf("interface %s exists inside the test namespace", i.Name)
		}
	}
	l, err := net.Listen("tcp", "10.244.3.7:80")
	if err != nil {
		t.Fatalf("binding a pod address: %v", err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.DialTimeout("tcp", "10.244.3.7:80", 2*time.Second)
	if err != nil {
		t.Fatalf("dialing a pod address: %v", err)
	}
	c.Close()
}

// TestControllerManagerMakesPods checks that the cluster's own controllers run: a
// Deployment becomes a ReplicaSet and Pods named <deployment>-<hash>-<suffix>, as the
// conformance suite expects.
func TestControllerManagerMakesPods(t *testing.T) {
	c := cluster.Start(t)
	kube := kubernetes.NewForConfigOrDie(c.Config)
	ctx := context.Background()
	labels := map[string]string{"app": "echo"}
	replicas := int32(2)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "echo", Image: "echo"}}},
			},
		},
	}
	if _, err := kube.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		pods, err := kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=echo"})
		if err == nil && len(pods.Items) == int(replicas) {
			for _, p := range pods.Items {
				if parts := strings.Split(p.Name, "-"); len(parts) != 3 || parts[0] != "echo" {
					t.Errorf("pod name %q is not <deployment>-<hash>-<suffix>", p.Name)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Deployment did not produce %d Pods (last error %v)", replicas, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
