package cluster_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/switchyard-dev/switchyard/e2e/cluster"
	"github.com/switchyard-dev/switchyard/e2e/echo"
)

// echoBasicImage is the conformance suite's echo server image; the harness kubelet
// recognises it by name.
const echoBasicImage = "gcr.io/k8s-staging-gateway-api/echo-basic:v20240412-v1.0.0-394-g40c666fd"

// downwardEnv is the environment every conformance echo Pod gets.
var downwardEnv = []corev1.EnvVar{
	{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	{Name: "NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
}

// TestKubeletEnvAndLogs runs a conformance echo Pod and checks that its reply carries
// what the downward API and its env give it, that it serves the echo server's HTTP
// and h2c ports, and that the API server's pods/log, served by the kubelet, returns
// the per-request line the mirror tests look for, with since, tail and timestamps.
func TestKubeletEnvAndLogs(t *testing.T) {
	c := cluster.Start(t)
	c.StartKubelet(t, "node-a", 1)
	kube := kubernetes.NewForConfigOrDie(c.Config)
	ctx := context.Background()
	env := append(append([]corev1.EnvVar{}, downwardEnv...),
		corev1.EnvVar{Name: "INGRESS_NAME", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['tier']"}}},
		corev1.EnvVar{Name: "SERVICE_NAME", Value: "$(NAMESPACE)-svc"})
	must(t, create(kube.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "echo-logs", Namespace: "default", Labels: map[string]string{"tier": "front"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "echo", Image: echoBasicImage, Env: env}}},
	}, metav1.CreateOptions{})))
	pod := waitPodReady(t, kube, "default", "echo-logs")

	reply := getEcho(t, &http.Client{Timeout: 5 * time.Second}, "http://"+pod.Status.PodIP+":3000/first?n=1")
	if reply.Pod != "echo-logs" || reply.Namespace != "default" || reply.Ingress != "front" || reply.Service != "default-svc" {
		t.Errorf("reply identity pod=%q namespace=%q ingress=%q service=%q, want echo-logs, default, front, default-svc",
			reply.Pod, reply.Namespace, reply.Ingress, reply.Service)
	}
	if r := getEcho(t, &http.Client{Timeout: 5 * time.Second}, "http://"+pod.Status.PodIP+":3001/second"); r.Path != "/second" {
		t.Errorf("the h2c port answered for path %q", r.Path)
	}

	logs := podLogs(t, kube, "echo-logs", &corev1.PodLogOptions{Container: "echo"})
	for _, want := range []string{"Echoing back request made to /first?n=1 to client (", "Echoing back request made to /second to client ("} {
		if !strings.Contains(logs, want) {
			t.Errorf("pods/log lacks %q; got:\n%s", want, logs)
		}
	}
	if tail := podLogs(t, kube, "echo-logs", &corev1.PodLogOptions{TailLines: ptr(int64(1))}); strings.Count(tail, "\n") != 1 ||
		!strings.Contains(tail, "/second") {
		t.Errorf("tailLines=1 gave %q, want only the /second line", tail)
	}
	future := metav1.NewTime(time.Now().Add(time.Hour))
	if later := podLogs(t, kube, "echo-logs", &corev1.PodLogOptions{SinceTime: &future}); later != "" {
		t.Errorf("sinceTime an hour ahead gave %q, want nothing", later)
	}
	stamped := podLogs(t, kube, "echo-logs", &corev1.PodLogOptions{Timestamps: true, TailLines: ptr(int64(1))})
	stamp, rest, _ := strings.Cut(stamped, " ")
	if at, err := time.Parse(time.RFC3339Nano, stamp); err != nil || time.Since(at) > time.Minute ||
		!strings.HasPrefix(rest, "Echoing back request made to /second") {
		t.Errorf("timestamped line %q: %v", stamped, err)
	}
}

// TestKubeletSecretVolumeServesTLS runs the conformance TLS backend: its Secret
// volume is written out, TLS_SERVER_CERT and TLS_SERVER_PRIVKEY point into it, and
// the Pod serves HTTPS on 8443 with that certificate. The Secret is created after
// the Pod, so the kubelet must wait for it as a real one does.
func TestKubeletSecretVolumeServesTLS(t *testing.T) {
	c := cluster.Start(t)
	c.StartKubelet(t, "node-a", 1)
	kube := kubernetes.NewForConfigOrDie(c.Config)
	ctx := context.Background()
	env := append(append([]corev1.EnvVar{}, downwardEnv...),
		corev1.EnvVar{Name: "TLS_SERVER_CERT", Value: "/etc/secret-volume/crt"},
		corev1.EnvVar{Name: "TLS_SERVER_PRIVKEY", Value: "/etc/secret-volume/key"})
	must(t, create(kube.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "tls-backend", Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "tls-backend", Image: echoBasicImage, Env: env,
				VolumeMounts: []corev1.VolumeMount{{Name: "secret-volume", MountPath: "/etc/secret-volume"}}}},
			Volumes: []corev1.Volume{{Name: "secret-volume", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: "backend-cert",
				Items:      []corev1.KeyToPath{{Key: "tls.crt", Path: "crt"}, {Key: "tls.key", Path: "key"}},
			}}}},
		},
	}, metav1.CreateOptions{})))
	time.Sleep(500 * time.Millisecond) // let the kubelet find the Secret missing first
	certPEM, keyPEM := testCertificate(t, "tls-backend.example")
	must(t, create(kube.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "backend-cert", Namespace: "default"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
	}, metav1.CreateOptions{})))
	pod := waitPodReady(t, kube, "default", "tls-backend")

	var served *x509.Certificate
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		ServerName:         "backend.example",
		InsecureSkipVerify: true, // the certificate is checked by subject below
		VerifyConnection: func(cs tls.ConnectionState) error {
			served = cs.PeerCertificates[0]
			return nil
		},
	}}}
	reply := getEcho(t, client, "https://"+pod.Status.PodIP+":8443/secure")
	if served == nil || served.Subject.CommonName != "tls-backend.example" {
		t.Fatalf("served certificate %v, want subject CN=tls-backend.example", served)
	}
	if reply.TLS == nil || reply.SNI != "backend.example" || reply.Pod != "tls-backend" {
		t.Errorf("reply over TLS: pod %q sni %q tls %+v", reply.Pod, reply.SNI, reply.TLS)
	}
	if r := getEcho(t, &http.Client{Timeout: 5 * time.Second}, "http://"+pod.Status.PodIP+":3000/plain"); r.TLS != nil {
		t.Errorf("the HTTP port reported TLS %+v", r.TLS)
	}
}

// TestKubeletsSplitDeployment runs two kubelets: they share a Deployment's Pods
// without fighting over them, each runs only its own, on its own subnet, and the API
// server reaches each node's kubelet for logs.
func TestKubeletsSplitDeployment(t *testing.T) {
	c := cluster.Start(t)
	c.StartKubelet(t, "node-a", 1)
	c.StartKubelet(t, "node-b", 2)
	kube := kubernetes.NewForConfigOrDie(c.Config)
	ctx := context.Background()
	labels := map[string]string{"app": "split"}
	must(t, create(kube.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "split", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr(int32(4)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "split", Image: echoBasicImage, Env: downwardEnv}}}}},
	}, metav1.CreateOptions{})))
	pods := waitPodsReady(t, kube, "app=split", 4)
	perNode := map[string]int{}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, p := range pods {
		perNode[p.Spec.NodeName]++
		subnet := map[string]string{"node-a": "10.244.1.", "node-b": "10.244.2."}[p.Spec.NodeName]
		if subnet == "" || !strings.HasPrefix(p.Status.PodIP, subnet) {
			t.Errorf("pod %s on node %q has address %s", p.Name, p.Spec.NodeName, p.Status.PodIP)
			continue
		}
		if r := getEcho(t, client, "http://"+p.Status.PodIP+":3000/whoami"); r.Pod != p.Name {
			t.Errorf("pod %s at %s answered as %q", p.Name, p.Status.PodIP, r.Pod)
		}
		if logs := podLogs(t, kube, p.Name, &corev1.PodLogOptions{}); !strings.Contains(logs, "request made to /whoami") {
			t.Errorf("logs of %s on %s: %q", p.Name, p.Spec.NodeName, logs)
		}
	}
	t.Logf("pods per node: %v", perNode)
	if perNode["node-a"] == 0 || perNode["node-b"] == 0 {
		t.Errorf("pods per node %v, want both nodes to run some", perNode)
	}
}

// waitPodReady waits for a Pod's Ready condition and returns it.
func waitPodReady(t *testing.T, kube kubernetes.Interface, ns, name string) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pod, err := kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && podReady(pod) {
			return pod
		}
		if time.Now().After(deadline) {
			var status corev1.PodStatus
			if pod != nil {
				status = pod.Status
			}
			t.Fatalf("pod %s/%s not ready (last error %v, status %+v)", ns, name, err, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitPodsReady waits for n ready Pods in default matching selector.
func waitPodsReady(t *testing.T, kube kubernetes.Interface, selector string, n int) []corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		list, err := kube.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		ready := 0
		if err == nil {
			for i := range list.Items {
				if podReady(&list.Items[i]) {
					ready++
				}
			}
			if ready == n && len(list.Items) == n {
				return list.Items
			}
		}
		if time.Now().After(deadline) {
			var states []string
			if list != nil {
				for _, p := range list.Items {
					states = append(states, fmt.Sprintf("%s on %q: %s %+v", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.ContainerStatuses))
				}
			}
			t.Fatalf("%d of %d pods %s ready (last error %v): %v", ready, n, selector, err, states)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue && p.Status.PodIP != ""
		}
	}
	return false
}

// getEcho sends a GET and decodes the echo reply, failing on anything else.
func getEcho(t *testing.T, client *http.Client, url string) echo.Reply {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r echo.Reply
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &r) != nil {
		t.Fatalf("GET %s: status %d body %s", url, resp.StatusCode, body)
	}
	return r
}

// podLogs reads a default-namespace Pod's log through the API server.
func podLogs(t *testing.T, kube kubernetes.Interface, pod string, opts *corev1.PodLogOptions) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := kube.CoreV1().Pods("default").GetLogs(pod, opts).DoRaw(ctx)
	if err != nil {
		t.Fatalf("pods/log of %s: %v (%s)", pod, err, body)
	}
	return string(body)
}

// testCertificate makes a self-signed certificate and key, PEM-encoded, whose
// subject is commonName.
func testCertificate(t *testing.T, commonName string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: commonName},
		DNSNames: []string{commonName}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
