package helm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/switchyard-dev/switchyard/controller/placement"
	"github.com/switchyard-dev/switchyard/e2e/cluster"
	"github.com/switchyard-dev/switchyard/e2e/proc"
	"github.com/switchyard-dev/switchyard/internal/testpki"
	"github.com/switchyard-dev/switchyard/internal/testport"
)

// TestChartRunsFleet runs the real controller and an edge replica with the command
// lines the chart renders, each with a token of the ServiceAccount the chart gives
// it, against the real API server with the chart's RBAC applied: the controller must
// work within the permissions the chart grants (list and watch everything it
// translates, lead through its Lease, write status, create a Gateway's Service, review
// the replica's token), and a request must go through the replica to an echo Pod.
// Only what cannot exist outside a Pod is replaced: file paths, listen addresses and
// the controller's address (a loopback one with a test certificate, as the Service's
// DNS name does not resolve here); the Deployments themselves are not applied. The
// API server reaches the controller's east-west webhook through the chart's webhook
// configuration and controller Service, with the chart's generated certificate.
func TestChartRunsFleet(t *testing.T) {
	binary := os.Getenv(cluster.EnvBinary)
	if binary == "" {
		t.Fatal("no switchyard binary: TestMain must call cluster.MainWithBinary")
	}
	c := cluster.Start(t)
	c.StartKubelet(t, "node-a", 1)
	a := newApplier(t, c.Config)
	const ns = "switchyard-system"
	a.createNamespace(t, ns, false)
	r := release{name: "sy", namespace: ns, values: "defaults", extra: []string{"--include-crds",
		"--set", "gatewayAPI.installCRDs=true", "--api-versions", "gateway.networking.k8s.io/v1/GatewayClass",
		"--set", "controller.placement.serviceType=ClusterIP", "--set", "controller.tls.existingSecret=test-tls"}}
	objs := objects(t, mustRender(t, r))
	var apply []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() != "Deployment" && o.GetKind() != "DaemonSet" {
			apply = append(apply, o)
		}
	}
	a.apply(t, apply)

	dir := t.TempDir()
	caFile, certFile, keyFile := testpki.New(t).WriteFiles(t, dir)
	snapAddr := fmt.Sprintf("127.0.0.1:%d", testport.Free(t))
	ctlAdmin := fmt.Sprintf("127.0.0.1:%d", testport.Free(t))
	ctlToken := serviceAccountToken(t, a.kube, ns, "sy-switchyard-controller", nil)
	kubeconfig := filepath.Join(dir, "controller.kubeconfig")
	writeFile(t, kubeconfig, fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters: [{name: e2e, cluster: {server: %q, insecure-skip-tls-verify: true}}]\n"+
		"users: [{name: sa, user: {token: %q}}]\ncontexts: [{name: e2e, context: {cluster: e2e, user: sa}}]\ncurrent-context: e2e\n",
		c.Config.Host, ctlToken))
	hookPort := testport.Free(t)
	ctlArgs := rewriteArgs(t, containerArgs(t, objs, "sy-switchyard-controller"), map[string]string{
		"--tls-cert": certFile, "--tls-key": keyFile, "--snapshot-addr": snapAddr,
		"--metrics-addr":     fmt.Sprintf("127.0.0.1:%d", testport.Free(t)),
		"--webhook-addr":     fmt.Sprintf("%s:%d", webhookEndpoint, hookPort),
		"--webhook-cert-dir": writeWebhookCertificate(t, objs, "sy-switchyard-webhook-tls", dir),
	})
	controller := proc.Start(t, binary, append(ctlArgs, "--kubeconfig", kubeconfig, "--admin-addr", ctlAdmin)...)

	tokenFile := filepath.Join(dir, "gateway-token")
	writeFile(t, tokenFile, serviceAccountToken(t, a.kube, ns, "sy-switchyard-gateway", []string{"switchyard"}))
	gwAdmin := fmt.Sprintf("127.0.0.1:%d", testport.Free(t))
	gwArgs := rewriteArgs(t, containerArgs(t, objs, "sy-switchyard-edge"), map[string]string{
		"--controller": "https://" + snapAddr, "--token-file": tokenFile, "--ca-file": caFile,
		"--state-path":   filepath.Join(dir, "snapshot.json"),
		"--metrics-addr": fmt.Sprintf("127.0.0.1:%d", testport.Free(t)),
	})
	proc.Start(t, binary, append(gwArgs, "--node", "node-a", "--admin-addr", gwAdmin)...)

	gw := gwclient.NewForConfigOrDie(c.Config)
	createEcho(t, a.kube, "default", "web")
	createGatewayAndRoute(t, gw, "default", "web", "switchyard")
	port := waitManagedPort(t, a.kube, "default", "web")
	waitFor(t, 60*time.Second, "a request through the replica reaches the echo Pod", func() bool {
		return echoPod(fmt.Sprintf("127.0.0.1:%d", port)) != ""
	})
	waitFor(t, 30*time.Second, "GatewayClass, Gateway and HTTPRoute status written", func() bool {
		return statusWritten(gw, "switchyard", "default", "web")
	})
	lease, err := a.kube.CoordinationV1().Leases(ns).Get(context.Background(), "switchyard-controller", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("the controller holds no Lease in %s: %v", ns, err)
	}
	if replicas := countReplicas(t, "http://"+ctlAdmin); replicas != 1 {
		t.Errorf("the controller lists %d replicas, want the one whose token it reviewed", replicas)
	}
	routeWebhookService(t, a.kube, ns, "sy-switchyard-controller", int32(hookPort))
	checkWebhookInjects(t, a.kube)
	for _, line := range strings.Split(controller.Output(), "\n") {
		if strings.Contains(line, "forbidden") {
			t.Errorf("the controller was refused by RBAC: %s", line)
		}
	}
}

// containerArgs returns the first container's args of the named Deployment.
func containerArgs(t testing.TB, objs []*unstructured.Unstructured, name string) []string {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetName() != name {
			continue
		}
		var d appsv1.Deployment
		b, _ := json.Marshal(o.Object)
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Spec.Containers[0].Args
	}
	t.Fatalf("the chart rendered no Deployment %s", name)
	return nil
}

// rewriteArgs replaces the values of --flag=value arguments; every flag to replace
// must be among the args, so that a chart that stops passing one fails here.
func rewriteArgs(t testing.TB, args []string, values map[string]string) []string {
	t.Helper()
	out := make([]string, len(args))
	seen := map[string]bool{}
	for i, arg := range args {
		out[i] = arg
		flag, _, ok := strings.Cut(arg, "=")
		if v, replace := values[flag]; ok && replace {
			out[i] = flag + "=" + v
			seen[flag] = true
		}
	}
	for flag := range values {
		if !seen[flag] {
			t.Fatalf("the chart no longer passes %s: %v", flag, args)
		}
	}
	return out
}

// serviceAccountToken asks the API server for a token of the ServiceAccount, as the
// kubelet does for a Pod's projected token.
func serviceAccountToken(t testing.TB, kube kubernetes.Interface, ns, name string, audiences []string) string {
	t.Helper()
	seconds := int64(3600)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &seconds}}
	res, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name, req, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of ServiceAccount %s/%s: %v", ns, name, err)
	}
	return res.Status.Token
}

// createEcho creates a Service on port 80 and one echo Pod behind it (the harness's
// kubelet runs it).
func createEcho(t testing.TB, kube kubernetes.Interface, ns, name string) {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": name}
	one := int32(1)
	_, err := kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(3000)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "echo", Image: "echo",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 3000}}}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// createGatewayAndRoute creates a Gateway of class with an HTTP listener on port 80,
// and an HTTPRoute of the same name sending everything to the Service of that name.
func createGatewayAndRoute(t testing.TB, gw gwclient.Interface, ns, name, class string) {
	t.Helper()
	ctx := context.Background()
	port := gwv1.PortNumber(80)
	_, err := gw.GatewayV1().Gateways(ns).Create(ctx, &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: gwv1.GatewaySpec{GatewayClassName: gwv1.ObjectName(class),
			Listeners: []gwv1.Listener{{Name: "http", Protocol: gwv1.HTTPProtocolType, Port: port}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = gw.GatewayV1().HTTPRoutes(ns).Create(ctx, &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: gwv1.ObjectName(name)}}},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
				BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(name), Port: &port}}}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// waitManagedPort waits for the Service the controller makes for the Gateway and
// returns the container port its listener got.
func waitManagedPort(t testing.TB, kube kubernetes.Interface, ns, gateway string) int32 {
	t.Helper()
	var port int32
	waitFor(t, 60*time.Second, "the controller creates the Service of Gateway "+gateway, func() bool {
		svc, err := kube.CoreV1().Services(ns).Get(context.Background(), placement.ServiceName(gateway), metav1.GetOptions{})
		if err != nil || len(svc.Spec.Ports) == 0 {
			return false
		}
		port = svc.Spec.Ports[0].TargetPort.IntVal
		return port != 0
	})
	return port
}

// echoPod sends one request to addr and returns the answering echo Pod's name, or ""
// on any failure.
func echoPod(addr string) string {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var reply struct {
		Pod string `json:"pod"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&reply) != nil {
		return ""
	}
	return reply.Pod
}

// statusWritten reports whether the controller has accepted the class, programmed
// the Gateway and accepted the route, each at its latest generation.
func statusWritten(gw gwclient.Interface, class, ns, name string) bool {
	ctx := context.Background()
	gc, err1 := gw.GatewayV1().GatewayClasses().Get(ctx, class, metav1.GetOptions{})
	g, err2 := gw.GatewayV1().Gateways(ns).Get(ctx, name, metav1.GetOptions{})
	r, err3 := gw.GatewayV1().HTTPRoutes(ns).Get(ctx, name, metav1.GetOptions{})
	if err1 != nil || err2 != nil || err3 != nil || len(r.Status.Parents) == 0 {
		return false
	}
	return conditionTrue(gc.Status.Conditions, "Accepted", gc.Generation) &&
		conditionTrue(g.Status.Conditions, "Programmed", g.Generation) &&
		conditionTrue(r.Status.Parents[0].Conditions, "Accepted", r.Generation)
}

func conditionTrue(conds []metav1.Condition, typ string, generation int64) bool {
	for _, c := range conds {
		if c.Type == typ {
			return c.Status == metav1.ConditionTrue && c.ObservedGeneration == generation
		}
	}
	return false
}

// countReplicas reads the controller's admin API: how many replicas are connected.
func countReplicas(t testing.TB, admin string) int {
	t.Helper()
	resp, err := http.Get(admin + "/api/v1/replicas")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var v struct {
		Replicas []json.RawMessage `json:"replicas"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("/api/v1/replicas: %v: %s", err, body)
	}
	return len(v.Replicas)
}

func writeFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond every 50 ms until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
