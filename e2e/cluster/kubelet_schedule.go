package cluster

import (
	"context"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// claimAfter is how long an unscheduled Pod waits for the node the spreading picked
// before any kubelet may take it, so that a node whose kubelet has gone cannot
// strand Pods.
const claimAfter = 5 * time.Second

// bindClaimed binds to this node the unscheduled Pods that the spreading assigns
// it. Every kubelet computes the same spreading from the same Pods and Nodes, so
// kubelets on several nodes share the Pods out instead of racing for each; a bind
// that loses to another kubelet anyway is refused by the API server and skipped.
func (k *Kubelet) bindClaimed(ctx context.Context, pods []corev1.Pod) {
	if !slices.ContainsFunc(pods, unscheduled) {
		return
	}
	nodes, err := k.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	now := time.Now()
	self := nodeByName(nodes.Items, k.node)
	ports := hostPortsInUse(pods)
	for uid, node := range spreadPods(pods, nodes.Items) {
		pod := podByUID(pods, uid)
		stranded := self != nil && now.Sub(pod.CreationTimestamp.Time) >= claimAfter && podFitsNode(pod, self, ports[k.node])
		if node == "" || (node != k.node && !stranded) {
			continue
		}
		_ = k.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: k.node},
		}, metav1.CreateOptions{})
	}
}

// spreadPods assigns each unscheduled Pod, oldest first, to the ready,
// schedulable node that fits it (see podFitsNode) and runs the fewest Pods so far,
// the first by name on a tie. A Pod that no node fits maps to "".
func spreadPods(pods []corev1.Pod, nodes []corev1.Node) map[types.UID]string {
	load := map[string]int{}
	var eligible []*corev1.Node
	for i := range nodes {
		if nodeReady(&nodes[i]) && !nodes[i].Spec.Unschedulable {
			eligible = append(eligible, &nodes[i])
			load[nodes[i].Name] = 0
		}
	}
	slices.SortFunc(eligible, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	var waiting []*corev1.Pod
	for i := range pods {
		p := &pods[i]
		switch {
		case unscheduled(*p):
			waiting = append(waiting, p)
		case p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed:
			load[p.Spec.NodeName]++
		}
	}
	slices.SortFunc(waiting, func(a, b *corev1.Pod) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	ports := hostPortsInUse(pods)
	out := make(map[types.UID]string, len(waiting))
	for _, p := range waiting {
		best := ""
		for _, n := range eligible {
			if podFitsNode(p, n, ports[n.Name]) && (best == "" || load[n.Name] < load[best]) {
				best = n.Name
			}
		}
		out[p.UID] = best
		if best != "" {
			load[best]++
			ports.add(best, p)
		}
	}
	return out
}

func unscheduled(p corev1.Pod) bool { return p.Spec.NodeName == "" && p.DeletionTimestamp == nil }

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func selectorMatches(selector, labels map[string]string) bool {
	for key, value := range selector {
		if labels[key] != value {
			return false
		}
	}
	return true
}

func nodeByName(nodes []corev1.Node, name string) *corev1.Node {
	for i := range nodes {
		if nodes[i].Name == name {
			return &nodes[i]
		}
	}
	return nil
}

func podByUID(pods []corev1.Pod, uid types.UID) *corev1.Pod {
	for i := range pods {
		if pods[i].UID == uid {
			return &pods[i]
		}
	}
	return nil
}
