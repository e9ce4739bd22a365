package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/switchyard-dev/switchyard/e2e/echo"
)

// Kubelet is the harness's stand-in for a node agent: it registers a Node, binds
// unscheduled Pods to it, gives each Pod a unique address in PodCIDR, runs the echo
// backend on that address for each of the Pod's container ports (3000 when none is
// declared), reports the Pod Running and Ready, and finishes Pod deletions.
type Kubelet struct {
	client kubernetes.Interface
	node   string
	// subnet is the third octet of this node's Pod addresses (10.244.<subnet>.x).
	subnet int

	mu      sync.Mutex
	nextIP  int
	running map[types.UID]context.CancelFunc
}

// StartKubelet registers node and runs its loop until the test ends. subnet (1-254)
// picks the node's Pod address range, 10.244.<subnet>.0/24.
func (c *Cluster) StartKubelet(t testing.TB, node string, subnet int) *Kubelet {
	t.Helper()
	k := &Kubelet{client: kubernetes.NewForConfigOrDie(c.Config), node: node, subnet: subnet,
		nextIP: 2, running: map[types.UID]context.CancelFunc{}}
	if err := k.register(context.Background()); err != nil {
		t.Fatalf("registering node %s: %v", node, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); k.loop(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		k.mu.Lock()
		for _, stop := range k.running {
			stop()
		}
		k.mu.Unlock()
	})
	return k
}

func (k *Kubelet) register(ctx context.Context) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.node}}
	created, err := k.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	created.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
	}}
	created.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("10.244.%d.1", k.subnet)}}
	_, err = k.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	return err
}

// loop polls Pods; a list every 100 ms is plenty for tests and simpler than a watch.
func (k *Kubelet) loop(ctx context.Context) {
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		pods, err := k.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for i := range pods.Items {
			k.sync(ctx, &pods.Items[i])
		}
	}
}

func (k *Kubelet) sync(ctx context.Context, pod *corev1.Pod) {
	switch {
	case pod.Spec.NodeName == "":
		_ = k.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: k.node},
		}, metav1.CreateOptions{})
	case pod.Spec.NodeName != k.node:
	case pod.DeletionTimestamp != nil:
		k.stop(pod.UID)
		zero := int64(0)
		err := k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name,
			metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return
		}
	case pod.Status.PodIP == "":
		k.start(ctx, pod)
	}
}

// start runs the Pod's echo servers on a fresh address and reports the Pod ready.
func (k *Kubelet) start(ctx context.Context, pod *corev1.Pod) {
	k.mu.Lock()
	if _, ok := k.running[pod.UID]; ok {
		k.mu.Unlock()
		return
	}
	ip := fmt.Sprintf("10.244.%d.%d", k.subnet, k.nextIP)
	k.nextIP++
	podCtx, cancel := context.WithCancel(context.Background())
	k.running[pod.UID] = cancel
	k.mu.Unlock()

	opts := echo.Options{Pod: pod.Name, Namespace: pod.Namespace, LogWriter: io.Discard}
	for _, port := range podPorts(pod) {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		o := opts
		o.HTTPPort = port
		go func() { _ = echo.Serve(podCtx, l, o) }()
	}
	now := metav1.Now()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP, pod.Status.HostIP = ip, fmt.Sprintf("10.244.%d.1", k.subnet)
	pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	pod.Status.StartTime = &now
	pod.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: true, Started: ptrTo(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	if _, err := k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		// The Pod changed meanwhile; stop and let the next poll start it again.
		k.stop(pod.UID)
	}
}

func (k *Kubelet) stop(uid types.UID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if cancel, ok := k.running[uid]; ok {
		cancel()
		delete(k.running, uid)
	}
}

// podPorts lists the container ports to serve, 3000 (the echo server's default) when
// the Pod declares none.
func podPorts(pod *corev1.Pod) []int {
	var ports []int
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			ports = append(ports, int(p.ContainerPort))
		}
	}
	if len(ports) == 0 {
		ports = []int{3000}
	}
	return ports
}

func ptrTo[T any](v T) *T { return &v }
