package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/switchyard-dev/switchyard/e2e/cluster"
)

// ourImage is an image reference the kubelet runs with our own binary.
const ourImage = "ghcr.io/switchyard-dev/switchyard:e2e"

// TestKubeletRunsOurImage runs Pods of our image through the harness's kubelet on two
// nodes, with our own binary: a Pod whose args use the downward API and a projected
// ServiceAccount token, ready only once its readiness probe passes; then a
// host-network DaemonSet, one Pod per node at the node's address, rolled with a
// surge Pod beside the old one on each node.
func TestKubeletRunsOurImage(t *testing.T) {
	c := cluster.Start(t)
	a := c.StartKubelet(t, "node-a", 1)
	b := c.StartKubelet(t, "node-b", 2)
	kube := kubernetes.NewForConfigOrDie(c.Config)
	t.Run("Pod", func(t *testing.T) { testOurPod(t, kube) })
	t.Run("DaemonSet", func(t *testing.T) {
		testOurDaemonSet(t, kube, map[string]string{"node-a": a.NodeIP(), "node-b": b.NodeIP()})
	})
}

// testOurPod runs `switchyard echo` whose --pod names the projected token's path: the
// reply then carries that path as the kubelet rewrote it, which must hold a token of
// the Pod's ServiceAccount for the asked audience, bound to the Pod.
func testOurPod(t *testing.T, kube kubernetes.Interface) {
	ctx := context.Background()
	expiry := int64(1200)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "ours", Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "echo", Image: ourImage,
				Args: []string{"echo", "--listen=$(POD_IP):8080", "--pod", "/var/run/tokens/echo", "--namespace=$(NS)"},
				Env: []corev1.EnvVar{
					{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
					{Name: "NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "token", MountPath: "/var/run/tokens", ReadOnly: true}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromString("http")}}},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			}},
			Volumes: []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
					Audience: "e2e-audience", ExpirationSeconds: &expiry, Path: "echo"}}},
			}}}},
		},
	}
	must(t, create(kube.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})))
	running := waitPodReady(t, kube, "default", "ours")
	if !strings.HasPrefix(running.Status.PodIP, "10.244.") || running.Status.PodIP == running.Status.HostIP {
		t.Errorf("pod address %s, node address %s: want a Pod address of its own", running.Status.PodIP, running.Status.HostIP)
	}
	reply := getEcho(t, &http.Client{Timeout: 5 * time.Second}, "http://"+running.Status.PodIP+":8080/hello")
	if reply.Namespace != "default" || reply.Path != "/hello" {
		t.Errorf("reply namespace %q path %q, want default and /hello", reply.Namespace, reply.Path)
	}
	if reply.Pod == "/var/run/tokens/echo" || !strings.HasSuffix(reply.Pod, "/echo") {
		t.Fatalf("--pod reached the process as %q, want the path rewritten into the Pod's volume", reply.Pod)
	}
	token, err := os.ReadFile(reply.Pod)
	if err != nil {
		t.Fatalf("the projected token: %v", err)
	}
	review, err := kube.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: string(token), Audiences: []string{"e2e-audience"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := review.Status
	if !st.Authenticated || st.User.Username != "system:serviceaccount:default:default" ||
		!strings.Contains(fmt.Sprint(st.User.Extra["authentication.kubernetes.io/pod-uid"]), string(running.UID)) {
		t.Errorf("token review: %+v, want the default ServiceAccount bound to pod %s", st, running.UID)
	}
	if logs := podLogs(t, kube, "ours", &corev1.PodLogOptions{}); !strings.Contains(logs, "Echoing back request made to /hello") {
		t.Errorf("pods/log of our process lacks the request line:\n%s", logs)
	}
	must(t, kube.CoreV1().Pods("default").Delete(ctx, "ours", metav1.DeleteOptions{}))
	waitGone(t, kube, "default", "ours", 20*time.Second)
	if _, err := (&http.Client{Timeout: time.Second}).Get("http://" + running.Status.PodIP + ":8080/"); err == nil {
		t.Error("the process still answers after its Pod was deleted")
	}
}

// testOurDaemonSet runs a host-network DaemonSet of our image: one Pod per node,
// whose address is its node's, ready by its probe. Changing the port in the template
// rolls it with maxSurge 1: on each node the new Pod runs beside the old one (no host
// port is declared, so nothing keeps it out) until it is ready, and then the old one
// is stopped.
func testOurDaemonSet(t *testing.T, kube kubernetes.Interface, nodeIPs map[string]string) {
	ctx := context.Background()
	labels := map[string]string{"app": "node-echo"}
	one := intstr.FromInt32(1)
	zero := intstr.FromInt32(0)
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "node-echo", Namespace: "default"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxSurge: &one, MaxUnavailable: &zero}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: nodeEchoSpec("8181")},
		},
	}
	must(t, create(kube.AppsV1().DaemonSets("default").Create(ctx, ds, metav1.CreateOptions{})))
	first := waitPodsReady(t, kube, "app=node-echo", 2)
	for _, p := range first {
		if want := nodeIPs[p.Spec.NodeName]; p.Status.PodIP != want || p.Status.HostIP != want {
			t.Errorf("pod %s on %s: podIP %s hostIP %s, want both %s", p.Name, p.Spec.NodeName, p.Status.PodIP, p.Status.HostIP, want)
		}
		if r := getEcho(t, &http.Client{Timeout: 5 * time.Second}, "http://"+p.Status.PodIP+":8181/"); r.Pod != p.Name {
			t.Errorf("%s:8181 answered as %q, want %s", p.Status.PodIP, r.Pod, p.Name)
		}
	}

	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": nodeEchoSpec("8182")}}})
	must(t, create(kube.AppsV1().DaemonSets("default").Patch(ctx, "node-echo", types.StrategicMergePatchType, patch, metav1.PatchOptions{})))
	surged := map[string]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for {
		pods, err := kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=node-echo"})
		must(t, err)
		perNode, done := map[string]int{}, len(pods.Items) == 2
		for _, p := range pods.Items {
			perNode[p.Spec.NodeName]++
			done = done && podReady(&p) && p.Spec.Containers[0].Env[0].Value == "8182"
		}
		for node, n := range perNode {
			surged[node] = surged[node] || n > 1
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the DaemonSet did not roll within 60s; pods per node %v", perNode)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !surged["node-a"] || !surged["node-b"] {
		t.Errorf("nodes where a new Pod ran beside the old: %v, want both", surged)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for node, ip := range nodeIPs {
		if r := getEcho(t, client, "http://"+ip+":8182/"); !strings.HasPrefix(r.Pod, "node-echo-") {
			t.Errorf("node %s: the new Pod answered as %q", node, r.Pod)
		}
		if resp, err := client.Get("http://" + ip + ":8181/"); err == nil {
			resp.Body.Close()
			t.Errorf("node %s: the old Pod still answers after the roll", node)
		}
	}
}

// nodeEchoSpec is a host-network Pod running `switchyard echo` on its node's address
// and port, with a readiness probe on it and no declared port.
func nodeEchoSpec(port string) corev1.PodSpec {
	grace := int64(5)
	return corev1.PodSpec{
		HostNetwork:                   true,
		TerminationGracePeriodSeconds: &grace,
		Containers: []corev1.Container{{
			Name: "echo", Image: "switchyard:dev",
			Command: []string{"/usr/local/bin/switchyard"},
			Args:    []string{"echo", "--listen", "$(HOST_IP):$(PORT)"},
			Env: []corev1.EnvVar{
				{Name: "PORT", Value: port},
				{Name: "HOST_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
				{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			},
			ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.Parse(port)}}},
		}},
	}
}

// waitGone waits until a Pod no longer exists.
func waitGone(t *testing.T, kube kubernetes.Interface, ns, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{}); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s/%s still exists after %v", ns, name, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
