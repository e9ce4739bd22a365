package cluster

import (
	"context"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchyard-dev/switchyard/e2e/echo"
)

// podRuntime is what the kubelet keeps for a Pod it runs.
type podRuntime struct {
	uid             types.UID
	namespace, name string
	ip, hostIP      string
	// hostOctet is the last octet of the Pod's own address; 0 for host-network Pods,
	// which use their node's.
	hostOctet int
	dir       string
	// logs holds each container's output by container name.
	logs       map[string]*containerLog
	containers []*containerRuntime
	policy     corev1.RestartPolicy

	// stopEcho stops the echo servers; stopWatch ends watchCtx, which the probes
	// and the status writer run under.
	stopEcho, stopWatch context.CancelFunc
	watchCtx            context.Context
	// supervisors counts the process supervisors; watchers the probes and the status
	// writer.
	supervisors, watchers sync.WaitGroup
	// dirty holds a token when the Pod's status must be written again.
	dirty       chan struct{}
	terminating atomic.Bool
}

// newPodRuntime sets up the runtime state of a Pod from its container plans.
func newPodRuntime(pod *corev1.Pod, ip, hostIP string, hostOctet int, dir string, plans []containerPlan) *podRuntime {
	rt := &podRuntime{uid: pod.UID, namespace: pod.Namespace, name: pod.Name, ip: ip, hostIP: hostIP,
		hostOctet: hostOctet, dir: dir, logs: map[string]*containerLog{}, policy: pod.Spec.RestartPolicy,
		dirty: make(chan struct{}, 1)}
	images := map[string]string{}
	for _, c := range pod.Spec.Containers {
		images[c.Name] = c.Image
	}
	for _, plan := range plans {
		logs := newContainerLog(maxLogBytes)
		rt.logs[plan.container] = logs
		c := &containerRuntime{name: plan.container, image: images[plan.container], readiness: plan.readiness,
			process: plan.process, logs: logs, stop: make(chan struct{})}
		if plan.process != nil {
			c.exited = make(chan struct{})
		}
		rt.containers = append(rt.containers, c)
	}
	return rt
}

// markDirty asks the status writer to write the Pod's status again.
func (rt *podRuntime) markDirty() {
	select {
	case rt.dirty <- struct{}{}:
	default:
	}
}

// launch starts the Pod's containers and their readiness probes.
func (rt *podRuntime) launch(plans []containerPlan) {
	echoCtx, stopEcho := context.WithCancel(context.Background())
	watchCtx, stopWatch := context.WithCancel(context.Background())
	rt.stopEcho, rt.stopWatch, rt.watchCtx = stopEcho, stopWatch, watchCtx
	for i, plan := range plans {
		c := rt.containers[i]
		if plan.process != nil {
			rt.supervisors.Add(1)
			go func() { defer rt.supervisors.Done(); c.supervise(rt.policy, rt.markDirty) }()
		} else {
			serveEcho(echoCtx, rt.ip, plan, c.logs)
			c.running, c.startedAt, c.ready = true, metav1.Now(), c.readiness == nil
		}
		if c.readiness != nil {
			rt.watchers.Add(1)
			go func() { defer rt.watchers.Done(); rt.probe(watchCtx, c) }()
		}
	}
}

// serveEcho serves each of the container's ports. A port that cannot be bound, for
// instance because another container of the Pod took it, is skipped, noted in the
// container's log.
func serveEcho(ctx context.Context, ip string, plan containerPlan, logs *containerLog) {
	for _, srv := range plan.servers {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(srv.port)))
		if err != nil {
			logs.Write([]byte("cannot listen on port " + strconv.Itoa(srv.port) + ": " + err.Error() + "\n"))
			continue
		}
		o := plan.options
		o.HTTPPort, o.TLSConfig, o.LogWriter = srv.port, srv.tls, logs
		go func() { _ = echo.Serve(ctx, l, o) }()
	}
}

// probe runs a container's readiness probe until ctx ends.
func (rt *podRuntime) probe(ctx context.Context, c *containerRuntime) {
	for {
		ready, running := c.isReady()
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.readiness.interval(ready)):
		}
		if !running {
			continue
		}
		if c.probed(c.readiness.run(ctx)) {
			rt.markDirty()
		}
	}
}

// status is pod's status as the Pod's containers now stand.
func (rt *podRuntime) status(pod *corev1.Pod) *corev1.Pod {
	pod = pod.DeepCopy()
	now := metav1.Now()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP, pod.Status.HostIP = rt.ip, rt.hostIP
	pod.Status.PodIPs = []corev1.PodIP{{IP: rt.ip}}
	pod.Status.HostIPs = []corev1.HostIP{{IP: rt.hostIP}}
	if pod.Status.StartTime == nil {
		pod.Status.StartTime = &now
	}
	ready := corev1.ConditionTrue
	pod.Status.ContainerStatuses = nil
	for _, c := range rt.containers {
		st := c.status()
		if !st.Ready {
			ready = corev1.ConditionFalse
		}
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, st)
	}
	pod.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: ready, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: ready, LastTransitionTime: now},
	}
	return pod
}

// writeStatuses writes the Pod's status each time it changes, until ctx ends.
func (k *Kubelet) writeStatuses(ctx context.Context, rt *podRuntime) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-rt.dirty:
		}
		k.writeStatus(ctx, rt)
	}
}

// writeStatus writes the Pod's current status, reading the Pod again when another
// writer got there first.
func (k *Kubelet) writeStatus(ctx context.Context, rt *podRuntime) {
	for range 5 {
		pod, err := k.client.CoreV1().Pods(rt.namespace).Get(ctx, rt.name, metav1.GetOptions{})
		if err != nil || pod.UID != rt.uid {
			return
		}
		_, err = k.client.CoreV1().Pods(rt.namespace).UpdateStatus(ctx, rt.status(pod), metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			return
		}
	}
}

// gracePeriod is how long a deleted Pod's processes get between SIGTERM and SIGKILL.
func gracePeriod(pod *corev1.Pod) time.Duration {
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return 30 * time.Second
}

// terminate stops a Pod the kubelet runs, unless another call already does (then it
// returns false at once): echo servers stop at once, processes get SIGTERM and,
// after grace, SIGKILL. Then the Pod's address and files are released.
func (k *Kubelet) terminate(rt *podRuntime, grace time.Duration) bool {
	if !rt.terminating.CompareAndSwap(false, true) {
		return false
	}
	if rt.stopEcho != nil {
		rt.stopEcho()
	}
	var wg sync.WaitGroup
	for _, c := range rt.containers {
		if c.process != nil {
			wg.Add(1)
			go func() { defer wg.Done(); c.terminate(grace) }()
		}
	}
	wg.Wait()
	rt.supervisors.Wait()
	if rt.stopWatch != nil {
		rt.stopWatch()
	}
	rt.watchers.Wait()
	k.remember(rt)
	for _, logs := range rt.logs {
		logs.Close()
	}
	_ = os.RemoveAll(rt.dir)
	k.mu.Lock()
	if k.running[rt.uid] == rt {
		delete(k.running, rt.uid)
	}
	if rt.hostOctet != 0 {
		delete(k.usedIPs, rt.hostOctet)
	}
	k.mu.Unlock()
	return true
}

// finishDeletion stops a deleted Pod's containers in the background, within its
// grace period, and then removes the Pod from the API (grace period 0), as a kubelet
// does once its containers are gone.
func (k *Kubelet) finishDeletion(ctx context.Context, pod *corev1.Pod) {
	k.mu.Lock()
	rt := k.running[pod.UID]
	delete(k.retryAt, pod.UID)
	k.mu.Unlock()
	if rt == nil {
		k.deletePod(ctx, pod)
		return
	}
	if rt.terminating.Load() {
		return
	}
	k.background.Add(1)
	go func() {
		defer k.background.Done()
		if k.terminate(rt, gracePeriod(pod)) {
			k.deletePod(ctx, pod)
		}
	}()
}

// deletePod removes a Pod whose containers have stopped; a failed delete is tried
// again at the next poll.
func (k *Kubelet) deletePod(ctx context.Context, pod *corev1.Pod) {
	zero := int64(0)
	_ = k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name,
		metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID}})
}

// shutdownGrace bounds the grace period of the Pods still running when a test ends.
const shutdownGrace = 5 * time.Second

// stopOrphans stops the Pods the kubelet runs that are no longer in the API (removed
// with a zero grace period by someone else), as a kubelet does.
func (k *Kubelet) stopOrphans(pods []corev1.Pod) {
	listed := make(map[types.UID]bool, len(pods))
	for i := range pods {
		listed[pods[i].UID] = true
	}
	k.mu.Lock()
	var orphans []*podRuntime
	for uid, rt := range k.running {
		if !listed[uid] && !rt.terminating.Load() {
			orphans = append(orphans, rt)
		}
	}
	k.mu.Unlock()
	for _, rt := range orphans {
		k.background.Add(1)
		go func() { defer k.background.Done(); k.terminate(rt, shutdownGrace) }()
	}
}

// stopAll stops every Pod when the test ends, in parallel, and waits for the
// deletions in progress.
func (k *Kubelet) stopAll() {
	k.mu.Lock()
	all := make([]*podRuntime, 0, len(k.running))
	for _, rt := range k.running {
		all = append(all, rt)
	}
	k.mu.Unlock()
	for _, rt := range all {
		k.background.Add(1)
		go func() { defer k.background.Done(); k.terminate(rt, shutdownGrace) }()
	}
	k.background.Wait()
}

// maxStoppedLogs and stoppedLogBytes bound what remember keeps.
const (
	maxStoppedLogs  = 16
	stoppedLogBytes = 4000
)

// remember keeps the end of the output of a stopping Pod's processes, so that a
// failed test can show what a replaced Pod said.
func (k *Kubelet) remember(rt *podRuntime) {
	for _, c := range rt.containers {
		if c.process == nil {
			continue
		}
		entry := "pod " + rt.namespace + "/" + rt.name + " container " + c.name + ":\n" + c.logs.tail(stoppedLogBytes)
		k.mu.Lock()
		k.stopped = append(k.stopped, entry)
		if len(k.stopped) > maxStoppedLogs {
			k.stopped = k.stopped[1:]
		}
		k.mu.Unlock()
	}
}

// logProcessOutput logs the end of the output of our processes, for a failed test.
func (k *Kubelet) logProcessOutput() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, entry := range k.stopped {
		k.t.Logf("kubelet %s: %s", k.node, entry)
	}
}
