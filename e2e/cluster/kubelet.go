package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// KubeletPort is the port of the kubelet API that the API server calls for pods/log;
// the kubelet serves it on the node's InternalIP.
const KubeletPort = 10250

// retryInterval spaces the attempts to start a Pod whose volumes or environment
// cannot be prepared yet, such as one whose Secret does not exist yet.
const retryInterval = time.Second

// Kubelet is the harness's stand-in for a node agent: it registers a Node, binds
// unscheduled Pods that fit it (spreading them over the ready nodes), gives each Pod
// a unique address in PodCIDR (host-network Pods get the node's), materialises the
// Pod's volumes, and runs each container: our own binary for containers of our image
// (see IsOurImage), the echo backend for any other (see containerServers). It
// reports each Pod Running, and Ready as its readiness probes say, and stops the
// containers when the Pod is deleted (SIGTERM, then SIGKILL after the grace period)
// before finishing the deletion. It also serves container logs over the kubelet API
// so that the API server can answer pods/log.
type Kubelet struct {
	t      testing.TB
	client kubernetes.Interface
	// apiServer is the API server's URL, for the kubeconfig of processes that use
	// their Pod's ServiceAccount credentials.
	apiServer string
	node      string
	// subnet is the third octet of this node's addresses (10.244.<subnet>.x).
	subnet int
	// root holds one folder per Pod for its materialised volumes.
	root string
	// background counts the goroutines finishing Pod deletions.
	background sync.WaitGroup

	mu      sync.Mutex
	usedIPs map[int]bool
	running map[types.UID]*podRuntime
	retryAt map[types.UID]time.Time
	// stopped keeps the last output of the processes of stopped Pods, for failure
	// messages.
	stopped []string
}

// StartKubelet registers node and runs its loop and its API until the test ends.
// subnet (1-254) picks the node's address range, 10.244.<subnet>.0/24: the node is
// 10.244.<subnet>.1 and its Pods get the other addresses.
func (c *Cluster) StartKubelet(t testing.TB, node string, subnet int) *Kubelet {
	t.Helper()
	if subnet < 1 || subnet > 254 {
		t.Fatalf("kubelet %s: subnet %d is outside 1-254", node, subnet)
	}
	k := &Kubelet{t: t, client: kubernetes.NewForConfigOrDie(c.Config), apiServer: c.Config.Host, node: node,
		subnet: subnet, root: t.TempDir(), usedIPs: map[int]bool{}, running: map[types.UID]*podRuntime{},
		retryAt: map[types.UID]time.Time{}}
	stopAPI, err := k.serveAPI()
	if err != nil {
		t.Fatalf("kubelet %s: %v", node, err)
	}
	if err := k.register(context.Background()); err != nil {
		stopAPI()
		t.Fatalf("registering node %s: %v", node, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); k.loop(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		k.stopAll()
		stopAPI()
		if t.Failed() {
			k.logProcessOutput()
		}
	})
	return k
}

// NodeIP is the node's InternalIP, where its kubelet API listens.
func (k *Kubelet) NodeIP() string { return fmt.Sprintf("10.244.%d.1", k.subnet) }

// labels are the well-known labels a kubelet puts on its Node.
func (k *Kubelet) labels() map[string]string {
	return map[string]string{corev1.LabelHostname: k.node, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64"}
}

func (k *Kubelet) register(ctx context.Context) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.node, Labels: k.labels()}}
	created, err := k.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	created.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
	}}
	// Only an InternalIP is listed, so that the API server's default address
	// preference (Hostname first) still reaches the kubelet API at this address.
	created.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: k.NodeIP()}}
	created.Status.DaemonEndpoints.KubeletEndpoint.Port = KubeletPort
	updated, err := k.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	// The API server taints a new Node not-ready; the node lifecycle controller (not
	// run here: it would find no heartbeats) lifts the taint once the Node is Ready.
	// The DaemonSet controller does not place Pods on a node with that taint.
	updated.Spec.Taints = slices.DeleteFunc(updated.Spec.Taints, func(t corev1.Taint) bool {
		return t.Key == corev1.TaintNodeNotReady
	})
	_, err = k.client.CoreV1().Nodes().Update(ctx, updated, metav1.UpdateOptions{})
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
		k.bindClaimed(ctx, pods.Items)
		for i := range pods.Items {
			k.sync(ctx, &pods.Items[i])
		}
		k.stopOrphans(pods.Items)
	}
}

// sync brings one Pod bound to this node to its wanted state.
func (k *Kubelet) sync(ctx context.Context, pod *corev1.Pod) {
	switch {
	case pod.Spec.NodeName != k.node:
	case pod.DeletionTimestamp != nil:
		k.finishDeletion(ctx, pod)
	case pod.Status.PodIP == "":
		k.start(ctx, pod)
	}
}

// start prepares the Pod's volumes and environment, runs its containers at its
// address and reports the Pod running. When preparing fails it reports why on the
// Pod and tries again later, as a kubelet does for a missing Secret.
func (k *Kubelet) start(ctx context.Context, pod *corev1.Pod) {
	k.mu.Lock()
	_, isRunning := k.running[pod.UID]
	waiting := time.Now().Before(k.retryAt[pod.UID])
	k.mu.Unlock()
	if isRunning || waiting {
		return
	}
	ip, octet := k.NodeIP(), 0
	if !pod.Spec.HostNetwork {
		var err error
		if octet, err = k.allocateIP(); err != nil {
			k.reportWaiting(ctx, pod, err)
			return
		}
		ip = fmt.Sprintf("10.244.%d.%d", k.subnet, octet)
	}
	dir := filepath.Join(k.root, string(pod.UID))
	plans, err := k.prepare(ctx, pod, ip, dir)
	if err != nil {
		k.releaseIP(octet)
		_ = os.RemoveAll(dir)
		k.reportWaiting(ctx, pod, err)
		return
	}
	rt := newPodRuntime(pod, ip, k.NodeIP(), octet, dir, plans)
	k.mu.Lock()
	k.running[pod.UID] = rt
	delete(k.retryAt, pod.UID)
	k.mu.Unlock()
	rt.launch(plans)
	if _, err := k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, rt.status(pod), metav1.UpdateOptions{}); err != nil {
		// The Pod changed meanwhile; stop and let the next poll start it again.
		k.terminate(rt, 0)
		return
	}
	rt.watchers.Add(1)
	go func() { defer rt.watchers.Done(); k.writeStatuses(rt.watchCtx, rt) }()
}

// reportWaiting records on the Pod why its containers are not running yet, once
// per distinct reason, and schedules the next attempt.
func (k *Kubelet) reportWaiting(ctx context.Context, pod *corev1.Pod, cause error) {
	k.mu.Lock()
	k.retryAt[pod.UID] = time.Now().Add(retryInterval)
	k.mu.Unlock()
	message := cause.Error()
	if len(pod.Status.ContainerStatuses) > 0 {
		if w := pod.Status.ContainerStatuses[0].State.Waiting; w != nil && w.Message == message {
			return
		}
	}
	pod = pod.DeepCopy()
	pod.Status.Phase = corev1.PodPending
	pod.Status.HostIP = k.NodeIP()
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating", Message: message}},
		})
	}
	_, _ = k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
}

// allocateIP takes the lowest free host number of the node's /24; 1 is the node's.
func (k *Kubelet) allocateIP() (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for octet := 2; octet <= 254; octet++ {
		if !k.usedIPs[octet] {
			k.usedIPs[octet] = true
			return octet, nil
		}
	}
	return 0, fmt.Errorf("node %s has no free Pod address left in 10.244.%d.0/24", k.node, k.subnet)
}

func (k *Kubelet) releaseIP(octet int) {
	if octet == 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.usedIPs, octet)
}

// lookup finds a running Pod's container log by the Pod's namespace and name.
func (k *Kubelet) lookup(namespace, pod, container string) (*containerLog, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, rt := range k.running {
		if rt.namespace == namespace && rt.name == pod {
			logs, ok := rt.logs[container]
			return logs, ok
		}
	}
	return nil, false
}

func ptrTo[T any](v T) *T { return &v }
