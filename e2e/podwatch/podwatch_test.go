// Package podwatch_test runs a node replica's data plane, identifying its callers with
// the Pod watch against the e2e harness's real API server, with the harness kubelet's
// Pods as callers and backends, inside the harness's private network namespace.
package podwatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/switchyard-dev/switchyard/e2e/cluster"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/dataplane"
	"github.com/switchyard-dev/switchyard/gateway/podwatch"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// echoPort is where the harness kubelet's Pods serve the echo backend.
const echoPort = 3000

// TestNodeReplicaServesTheNodesPodsOnly runs a node replica for node-a whose callers
// come from a Pod watch on the real API server: a Pod of node-a reaches a Service
// through it and is named as its Deployment in the edge statistics, a Pod of node-b
// is refused, and a Pod that goes is refused from then on.
func TestNodeReplicaServesTheNodesPodsOnly(t *testing.T) {
	c := cluster.Start(t)
	nodeA := c.StartKubelet(t, "node-a", 1)
	c.StartKubelet(t, "node-b", 2)
	kube := kubernetes.NewForConfigOrDie(c.Config)
	ctx := context.Background()
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deploy(t, kube, "web", "node-a", 2)
	deploy(t, kube, "client", "node-a", 1)
	deploy(t, kube, "remote", "node-b", 1)
	web := runningPods(t, kube, "web", 2)
	client := runningPods(t, kube, "client", 1)[0]
	remote := runningPods(t, kube, "remote", 1)[0]

	watcher, err := podwatch.New(podwatch.Options{Client: kube, Node: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); watcher.Run(watchCtx) }()
	t.Cleanup(func() { stopWatch(); <-done })
	waitFor(t, "the watch to list node-a's three Pods", func() bool { return watcher.Synced() && watcher.Len() == 3 })
	if _, ok := watcher.Lookup(addrOf(t, remote)); ok {
		t.Errorf("a Pod of node-b (%s) is a caller of node-a", remote.Status.PodIP)
	}

	engine := dataplane.New(dataplane.Options{Node: &dataplane.NodeOptions{Address: nodeA.NodeIP(), Callers: watcher}})
	t.Cleanup(func() { _ = engine.Shutdown(context.Background()) })
	if err := engine.Apply(meshFor(web)); err != nil {
		t.Fatal(err)
	}
	if !engine.Ready() {
		t.Fatalf("node engine not ready: %v", engine.BindErrors())
	}
	proxy := "http://" + engine.Addr(dataplane.MeshListener)
	for range 4 {
		status, body := getFrom(t, client.Status.PodIP, proxy, "http://web.shop/hello")
		var reply struct{ Pod, Namespace string }
		if status != http.StatusOK || json.Unmarshal([]byte(body), &reply) != nil || reply.Namespace != "shop" {
			t.Fatalf("from the client Pod: %d %s", status, body)
		}
	}
	if status, body := getFrom(t, remote.Status.PodIP, proxy, "http://web.shop/hello"); status != http.StatusForbidden {
		t.Errorf("from a Pod of node-b: %d %s, want 403", status, body)
	}
	edges := engine.MeshEdges().Edges
	if len(edges) != 1 || edges[0].Caller() != "shop/client" || edges[0].Callee() != "shop/web" || edges[0].Totals.Requests != 4 {
		t.Errorf("edges %+v, want 4 requests from shop/client to shop/web", edges)
	}

	// The client Deployment scales to zero: its Pod's address stops being a caller.
	scale, err := kube.AppsV1().Deployments("shop").GetScale(ctx, "client", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 0
	if _, err := kube.AppsV1().Deployments("shop").UpdateScale(ctx, "client", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the client Pod to leave the watch", func() bool {
		_, ok := watcher.Lookup(addrOf(t, client))
		return !ok
	})
	if status, body := getFrom(t, client.Status.PodIP, proxy, "http://web.shop/hello"); status != http.StatusForbidden {
		t.Errorf("from the gone Pod's address: %d %s, want 403", status, body)
	}
}

// deploy creates a Deployment of the echo backend in namespace shop, pinned to node.
func deploy(t *testing.T, kube kubernetes.Interface, name, node string, replicas int32) {
	t.Helper()
	labels := map[string]string{"app": name}
	_, err := kube.AppsV1().Deployments("shop").Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{corev1.LabelHostname: node},
					Containers: []corev1.Container{{Name: "echo", Image: "echo",
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: echoPort}}}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// runningPods waits for n running Pods with addresses of Deployment app.
func runningPods(t *testing.T, kube kubernetes.Interface, app string, n int) []corev1.Pod {
	t.Helper()
	var running []corev1.Pod
	waitFor(t, fmt.Sprintf("%d running Pods of %s", n, app), func() bool {
		pods, err := kube.CoreV1().Pods("shop").List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return false
		}
		running = running[:0]
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && p.DeletionTimestamp == nil {
				running = append(running, p)
			}
		}
		return len(running) == n
	})
	return running
}

// meshFor is a node replica's snapshot with Service shop/web over the given Pods.
func meshFor(pods []corev1.Pod) *config.Snapshot {
	backend := config.Backend{Name: "shop/web:80", Protocol: config.AppProtocolHTTP1}
	for _, p := range pods {
		backend.Endpoints = append(backend.Endpoints, config.Endpoint{
			Address: net.JoinHostPort(p.Status.PodIP, fmt.Sprint(echoPort)), Ready: true, Serving: true, NodeName: p.Spec.NodeName})
	}
	return &config.Snapshot{SchemaVersion: config.SchemaVersion, Version: "e2e", Mesh: &config.Mesh{
		Services: []config.MeshService{{Namespace: "shop", Name: "web", Ports: []config.MeshPort{{
			Port: 80, Backend: backend.Name,
			Routes: []config.Route{{Name: "shop/web", Rules: []config.Rule{{
				Backends: []config.BackendRef{{Backend: backend.Name, Weight: 1}},
				Retry:    &config.Retry{Attempts: 2, On: []config.RetryCondition{config.RetryConnectFailure}},
			}}}},
		}}}},
		Backends: []config.Backend{backend},
	}}
}

// getFrom sends a GET for target through the proxy from the address source, as a Pod
// with HTTP_PROXY set would.
func getFrom(t *testing.T, source, proxy, target string) (int, string) {
	t.Helper()
	proxyURL, err := url.Parse(proxy)
	if err != nil {
		t.Fatal(err)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	tr := &http.Transport{Proxy: http.ProxyURL(proxyURL), DialContext: dialer.DialContext}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(target)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", target, source, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func addrOf(t *testing.T, p corev1.Pod) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(p.Status.PodIP)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// waitFor polls cond every 50ms for up to 60 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
