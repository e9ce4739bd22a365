package helm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/switchyard-dev/switchyard/e2e/cluster"
	"github.com/switchyard-dev/switchyard/e2e/proc"
	"github.com/switchyard-dev/switchyard/internal/testpki"
	"github.com/switchyard-dev/switchyard/internal/testport"
)

// controllerIP is where TestChartRunsOnNodes runs the controller's snapshot server:
// an address of the harness's namespace outside the nodes' subnets, which the test
// certificate names.
const controllerIP = "10.244.0.2"

// TestChartRunsOnNodes installs the chart on two nodes of the harness and lets its
// kubelet run the edge Deployment's and the node DaemonSet's Pods from our own binary,
// as rendered: their command lines, ServiceAccount tokens (projected, for the
// controller's TokenReview), controller CA, probes and host network. The one edit is
// the controller's address in the replicas' --controller flag, since the Service's DNS
// name does not resolve here; the controller itself runs as a process with the
// chart's command line and ServiceAccount. Then a request goes through each edge Pod
// to an echo Pod, and one from a client Pod through its node's replica, at the proxy
// address the chart's webhook gave the Pod, to the echo Service.
func TestChartRunsOnNodes(t *testing.T) {
	binary := os.Getenv(cluster.EnvBinary)
	if binary == "" {
		t.Fatal("no switchyard binary: TestMain must call cluster.MainWithBinary")
	}
	c := cluster.Start(t)
	c.StartKubelet(t, "node-a", 1)
	c.StartKubelet(t, "node-b", 2)
	a := newApplier(t, c.Config)
	const ns = "switchyard-system"
	a.createNamespace(t, ns, false)
	pki := testpki.New(t)
	dir := t.TempDir()
	createControllerTLS(t, a.kube, ns, pki)
	r := release{name: "sy", namespace: ns, values: "defaults", extra: []string{"--include-crds",
		"--set", "gatewayAPI.installCRDs=true", "--api-versions", "gateway.networking.k8s.io/v1/GatewayClass",
		"--set", "controller.placement.serviceType=ClusterIP", "--set", "controller.tls.existingSecret=test-tls"}}
	objs := objects(t, mustRender(t, r))
	snapAddr := net.JoinHostPort(controllerIP, "18000")
	var apply []*unstructured.Unstructured
	for _, o := range objs {
		switch {
		case o.GetKind() == "Deployment" && o.GetName() == "sy-switchyard-controller":
		case o.GetKind() == "Deployment" || o.GetKind() == "DaemonSet":
			setControllerURL(t, o, "https://"+snapAddr)
			apply = append(apply, o)
		default:
			apply = append(apply, o)
		}
	}
	a.apply(t, apply)
	hookPort := testport.Free(t)
	startChartController(t, c, a.kube, binary, objs, pki, snapAddr, hookPort, dir)

	edges := waitReadyPods(t, a.kube, ns, "app.kubernetes.io/component=edge", 2)
	gw := gwclient.NewForConfigOrDie(c.Config)
	createEcho(t, a.kube, "default", "web")
	createGatewayAndRoute(t, gw, "default", "web", "switchyard")
	port := waitManagedPort(t, a.kube, "default", "web")
	for _, p := range edges {
		addr := net.JoinHostPort(p.Status.PodIP, fmt.Sprint(port))
		waitFor(t, 60*time.Second, "a request through edge Pod "+p.Name+" reaches the echo Pod", func() bool {
			return echoPod(addr) != ""
		})
	}

	nodes := waitReadyPods(t, a.kube, ns, "app.kubernetes.io/component=node", 2)
	for _, p := range nodes {
		if p.Status.PodIP != p.Status.HostIP {
			t.Errorf("node replica %s runs at %s, not at its node's address %s", p.Name, p.Status.PodIP, p.Status.HostIP)
		}
	}

	routeWebhookService(t, a.kube, ns, "sy-switchyard-controller", int32(hookPort))
	client := createMeshClient(t, a.kube, "shop", "node-a")
	proxy := strings.ReplaceAll(proxyOf(client), "$(HOST_IP)", client.Status.HostIP)
	if want := "http://" + net.JoinHostPort(client.Status.HostIP, "15001"); proxy != want {
		t.Fatalf("the webhook gave the client Pod HTTP_PROXY %q, want %s", proxyOf(client), want)
	}
	waitFor(t, 60*time.Second, "a request from the client Pod through its node replica reaches the echo Pod", func() bool {
		return meshEchoPod(client.Status.PodIP, proxy, "http://web.default.svc.cluster.local/") != ""
	})
}

// createControllerTLS creates the Secret the chart's existingSecret names: a
// certificate for controllerIP, its key, and the CA the replicas verify it with.
func createControllerTLS(t testing.TB, kube kubernetes.Interface, ns string, pki *testpki.PKI) {
	t.Helper()
	certPEM, keyPEM := pki.Leaf(t, controllerIP)
	_, err := kube.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "test-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "ca.crt": pki.CAPEM}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// setControllerURL replaces the --controller flag of a workload's first container.
func setControllerURL(t testing.TB, o *unstructured.Unstructured, controller string) {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
	first := containers[0].(map[string]any)
	args, _ := first["args"].([]any)
	replaced := false
	for i, a := range args {
		if s, ok := a.(string); ok && strings.HasPrefix(s, "--controller=") {
			args[i], replaced = "--controller="+controller, true
		}
	}
	if !replaced {
		t.Fatalf("%s %s passes no --controller: %v", o.GetKind(), o.GetName(), args)
	}
	if err := unstructured.SetNestedSlice(o.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		t.Fatal(err)
	}
}

// startChartController runs the controller with the chart's command line and a
// token of the chart's controller ServiceAccount; files and addresses that only exist
// in its Pod are replaced, its snapshot server listens on snapAddr and its webhook on
// webhookEndpoint:hookPort.
func startChartController(t testing.TB, c *cluster.Cluster, kube kubernetes.Interface, binary string,
	objs []*unstructured.Unstructured, pki *testpki.PKI, snapAddr string, hookPort int, dir string) {
	t.Helper()
	certPEM, keyPEM := pki.Leaf(t, controllerIP)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, certFile, string(certPEM))
	writeFile(t, keyFile, string(keyPEM))
	token := serviceAccountToken(t, kube, "switchyard-system", "sy-switchyard-controller", nil)
	kubeconfig := filepath.Join(dir, "controller.kubeconfig")
	writeFile(t, kubeconfig, fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters: [{name: e2e, cluster: {server: %q, insecure-skip-tls-verify: true}}]\n"+
		"users: [{name: sa, user: {token: %q}}]\ncontexts: [{name: e2e, context: {cluster: e2e, user: sa}}]\ncurrent-context: e2e\n",
		c.Config.Host, token))
	args := rewriteArgs(t, containerArgs(t, objs, "sy-switchyard-controller"), map[string]string{
		"--tls-cert": certFile, "--tls-key": keyFile, "--snapshot-addr": snapAddr,
		"--metrics-addr":     fmt.Sprintf("127.0.0.1:%d", testport.Free(t)),
		"--webhook-addr":     fmt.Sprintf("%s:%d", webhookEndpoint, hookPort),
		"--webhook-cert-dir": writeWebhookCertificate(t, objs, "sy-switchyard-webhook-tls", dir),
	})
	admin := fmt.Sprintf("127.0.0.1:%d", testport.Free(t))
	proc.Start(t, binary, append(args, "--kubeconfig", kubeconfig, "--admin-addr", admin)...)
}

// waitReadyPods waits until n Pods matching selector are ready and returns them.
func waitReadyPods(t testing.TB, kube kubernetes.Interface, ns, selector string, n int) []corev1.Pod {
	t.Helper()
	var ready []corev1.Pod
	waitFor(t, 90*time.Second, fmt.Sprintf("%d ready Pods %s", n, selector), func() bool {
		pods, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false
		}
		ready = ready[:0]
		for _, p := range pods.Items {
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
					ready = append(ready, p)
				}
			}
		}
		return len(ready) == n
	})
	return ready
}

// createMeshClient creates a namespace opted in to east-west and a client Pod there
// on node, once the webhook has given it its proxy variables, and returns it running.
func createMeshClient(t testing.TB, kube kubernetes.Interface, ns, node string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{"switchyard.dev/east-west": "enabled"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var name string
	waitFor(t, 30*time.Second, "a client Pod with the webhook's proxy variables", func() bool {
		p, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "client-"},
			Spec: corev1.PodSpec{NodeSelector: map[string]string{corev1.LabelHostname: node},
				Containers: []corev1.Container{{Name: "client", Image: "client"}}}}, metav1.CreateOptions{})
		if err != nil {
			return false // refused until the namespace's default ServiceAccount exists
		}
		if proxyOf(p) == "" {
			_ = kube.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{})
			return false
		}
		name = p.Name
		return true
	})
	var running *corev1.Pod
	waitFor(t, 30*time.Second, "client Pod "+name+" running", func() bool {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		running = p
		return err == nil && p.Status.PodIP != ""
	})
	return running
}

// meshEchoPod sends one request from source through the proxy and returns the
// answering echo Pod's name, or "" on any failure.
func meshEchoPod(source, proxy, target string) string {
	proxyURL, err := url.Parse(proxy)
	if err != nil {
		return ""
	}
	dialer := &net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyURL(proxyURL), DialContext: dialer.DialContext, DisableKeepAlives: true}}
	resp, err := client.Get(target)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	return decodeEchoPod(resp)
}

// decodeEchoPod reads an echo reply's pod, "" for anything else.
func decodeEchoPod(resp *http.Response) string {
	var reply struct {
		Pod string `json:"pod"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&reply) != nil {
		return ""
	}
	return reply.Pod
}
