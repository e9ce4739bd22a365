// Package webhook_test runs the controller's east-west admission webhook behind the
// e2e harness's real kube-apiserver: the API server calls the webhook served by the
// real controller binary for Pod creations in labelled namespaces only, Pods get the
// proxy variables from it, and Pods are still admitted, unchanged, while no
// controller answers.
package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/switchyard-dev/switchyard/controller/webhook"
	"github.com/switchyard-dev/switchyard/e2e/cluster"
	"github.com/switchyard-dev/switchyard/e2e/proc"
	"github.com/switchyard-dev/switchyard/internal/testpki"
	"github.com/switchyard-dev/switchyard/internal/testport"
)

func TestMain(m *testing.M) { cluster.MainWithBinary(m) }

const (
	optedIn  = "opted-in"
	plain    = "plain"
	extraNP  = "kubernetes.default.svc.cluster.local"
	hookName = "east-west.switchyard.dev"
)

// TestWebhookOnAPIServer registers the webhook as the chart does (a namespace
// selector on the label, an object selector for opted-out Pods, failurePolicy
// Ignore) but reached by URL, since the controller runs as a process of the test.
func TestWebhookOnAPIServer(t *testing.T) {
	binary := os.Getenv(cluster.EnvBinary)
	if binary == "" {
		t.Fatal("no switchyard binary: TestMain must call cluster.MainWithBinary")
	}
	c := cluster.Start(t)
	c.InstallGatewayAPI(t)
	kube := kubernetes.NewForConfigOrDie(c.Config)
	pki := testpki.New(t)
	controller, hookAddr, metricsAddr := startController(t, binary, c, pki)
	registerWebhook(t, kube, "https://"+hookAddr+webhook.Path, pki.CAPEM)
	createNamespace(t, kube, optedIn, map[string]string{webhook.Label: webhook.LabelEnabled})
	createNamespace(t, kube, plain, nil)
	waitWebhookActive(t, kube)

	t.Run("opted-in namespace", func(t *testing.T) {
		pod := createPod(t, kube, optedIn, newPod("app", nil, nil))
		checkInjected(t, pod)
	})
	t.Run("Deployment's Pods", func(t *testing.T) {
		pod := deploymentPod(t, kube, optedIn, "shop")
		checkInjected(t, pod)
	})
	t.Run("namespace without the label", func(t *testing.T) {
		checkUnchanged(t, createPod(t, kube, plain, newPod("app", nil, nil)))
	})
	t.Run("Pod annotated disabled", func(t *testing.T) {
		checkUnchanged(t, createPod(t, kube, optedIn, newPod("annotated", nil, map[string]string{webhook.Annotation: webhook.AnnotationDisabled})))
	})
	t.Run("Pod labelled disabled", func(t *testing.T) {
		checkUnchanged(t, createPod(t, kube, optedIn, newPod("labelled", map[string]string{webhook.Label: webhook.AnnotationDisabled}, nil)))
	})
	t.Run("host network", func(t *testing.T) {
		p := newPod("host", nil, nil)
		p.Spec.HostNetwork = true
		checkUnchanged(t, createPod(t, kube, optedIn, p))
	})
	if got := injectedCount(t, metricsAddr); got < 3 {
		t.Errorf("the controller's metrics count %v injections, want at least 3", got)
	}

	// With the controller gone the API server cannot reach the webhook: Pods are still
	// admitted (failurePolicy Ignore), without the variables.
	if !controller.Stop(20 * time.Second) {
		t.Error("the controller did not stop within 20s of SIGTERM")
	}
	started := time.Now()
	pod := createPod(t, kube, optedIn, newPod("after", nil, nil))
	checkUnchanged(t, pod)
	t.Logf("Pod admitted without the webhook in %v", time.Since(started).Round(time.Millisecond))
}

// startController runs the controller binary with its webhook on a loopback port
// (the API server runs in the same network namespace), its certificate signed by the
// test's CA; it returns the process, the webhook's and the metrics' addresses.
func startController(t *testing.T, binary string, c *cluster.Cluster, pki *testpki.PKI) (*proc.Process, string, string) {
	t.Helper()
	dir := t.TempDir()
	_, certFile, keyFile := pki.WriteFiles(t, dir)
	token := filepath.Join(dir, "gateway-token")
	if err := os.WriteFile(token, []byte("webhook-test-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hookAddr := fmt.Sprintf("127.0.0.1:%d", testport.Free(t))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testport.Free(t))
	p := proc.Start(t, binary, "controller",
		"--kubeconfig", c.Kubeconfig,
		"--snapshot-addr", fmt.Sprintf("127.0.0.1:%d", testport.Free(t)),
		"--tls-cert", certFile, "--tls-key", keyFile,
		"--gateway-token-file", token,
		"--leader-elect=false",
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", testport.Free(t)),
		"--metrics-addr", metricsAddr,
		"--webhook-addr", hookAddr,
		"--webhook-cert-dir", dir,
		"--webhook-no-proxy", extraNP,
		"--log-level", "debug",
	)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: pki.Client}}
	waitFor(t, 60*time.Second, "the webhook answers", func() bool {
		resp, err := client.Get("https://" + hookAddr + webhook.Path)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusMethodNotAllowed
	})
	return p, hookAddr, metricsAddr
}

// registerWebhook creates the MutatingWebhookConfiguration, shaped like the chart's.
func registerWebhook(t *testing.T, kube kubernetes.Interface, url string, caBundle []byte) {
	t.Helper()
	ignore := admissionregistrationv1.Ignore
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(5)
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "switchyard-east-west"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    hookName,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			FailurePolicy:           &ignore,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{webhook.Label: webhook.LabelEnabled}},
			ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: webhook.Label, Operator: metav1.LabelSelectorOpNotIn, Values: []string{webhook.AnnotationDisabled}}}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
		}},
	}
	if _, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(context.Background(), cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitWebhookActive creates probe Pods in the labelled namespace until the API server
// has picked up the configuration and one comes back changed.
func waitWebhookActive(t *testing.T, kube kubernetes.Interface) {
	t.Helper()
	n := 0
	waitFor(t, 30*time.Second, "the API server calls the webhook", func() bool {
		n++
		pod := createPod(t, kube, optedIn, newPod(fmt.Sprintf("probe-%d", n), nil, nil))
		return pod.Annotations[webhook.Annotation] == webhook.AnnotationInjected
	})
}

func createNamespace(t *testing.T, kube kubernetes.Interface, name string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Pods are refused until kube-controller-manager has made the default ServiceAccount.
	waitFor(t, 30*time.Second, "ServiceAccount "+name+"/default", func() bool {
		_, err := kube.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})
}

// newPod is a Pod with an init container and an app container that has a variable of
// its own.
func newPod(name string, labels, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: "echo"}},
			Containers:     []corev1.Container{{Name: "app", Image: "echo", Env: []corev1.EnvVar{{Name: "MODE", Value: "test"}}}},
		},
	}
}

func createPod(t *testing.T, kube kubernetes.Interface, ns string, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	created, err := kube.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating Pod %s/%s: %v", ns, pod.Name, err)
	}
	return created
}

// deploymentPod creates a one-replica Deployment and returns the Pod that
// kube-controller-manager creates for it.
func deploymentPod(t *testing.T, kube kubernetes.Interface, ns, name string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": name}
	one := int32(1)
	_, err := kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: newPod("", nil, nil).Spec}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	waitFor(t, 30*time.Second, "the Deployment's Pod", func() bool {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil || len(pods.Items) == 0 {
			return false
		}
		pod = &pods.Items[0]
		return true
	})
	return pod
}

// checkInjected checks every container of an admitted Pod: the node's address from
// the downward API before the proxy variables that refer to it, NO_PROXY with the
// built-in and the configured entries, its own variables kept, and the annotation.
func checkInjected(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if pod.Annotations[webhook.Annotation] != webhook.AnnotationInjected {
		t.Errorf("Pod %s: annotation %q", pod.Name, pod.Annotations[webhook.Annotation])
	}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		env := map[string]int{}
		for i, v := range c.Env {
			env[v.Name] = i
		}
		host, hasHost := env["HOST_IP"]
		proxy, hasProxy := env["HTTP_PROXY"]
		if !hasHost || !hasProxy || host > proxy || c.Env[host].ValueFrom == nil || c.Env[host].ValueFrom.FieldRef == nil ||
			c.Env[host].ValueFrom.FieldRef.FieldPath != "status.hostIP" {
			t.Errorf("container %s: no HOST_IP from status.hostIP before HTTP_PROXY: %+v", c.Name, c.Env)
			continue
		}
		for _, name := range []string{"HTTP_PROXY", "http_proxy"} {
			if i, ok := env[name]; !ok || c.Env[i].Value != "http://$(HOST_IP):15001" {
				t.Errorf("container %s: %s is %+v", c.Name, name, c.Env)
			}
		}
		for _, name := range []string{"NO_PROXY", "no_proxy"} {
			i, ok := env[name]
			if !ok || !strings.Contains(c.Env[i].Value, "kubernetes.default.svc,") || !strings.HasSuffix(c.Env[i].Value, ","+extraNP) {
				t.Errorf("container %s: %s lacks the API server's names: %+v", c.Name, name, c.Env)
			}
		}
		if c.Name == "app" && c.Env[0].Name != "MODE" {
			t.Errorf("container app lost its own variable: %+v", c.Env)
		}
	}
}

// checkUnchanged checks that a Pod was admitted as created.
func checkUnchanged(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if pod.Annotations[webhook.Annotation] == webhook.AnnotationInjected {
		t.Errorf("Pod %s/%s was changed: annotations %v", pod.Namespace, pod.Name, pod.Annotations)
	}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, v := range c.Env {
			if v.Name != "MODE" {
				t.Errorf("Pod %s/%s container %s got %s", pod.Namespace, pod.Name, c.Name, v.Name)
			}
		}
	}
}

// injectedCount reads switchyard_webhook_pod_admissions_total{outcome="injected"} from
// the controller's metrics.
func injectedCount(t *testing.T, addr string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, `switchyard_webhook_pod_admissions_total{outcome="injected"} `); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return 0
}

// waitFor polls cond every 100 ms until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
