package cluster

import (
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// podFitsNode is the part of the scheduler's filtering that the harness's Pods
// need: the node must match the Pod's nodeSelector and its required node affinity
// (which is how the DaemonSet controller pins each of its Pods to a node), and none
// of the Pod's host ports may be taken there already. Host ports are what keep a
// DaemonSet that declares one from surging: its new Pod cannot start beside the old.
func podFitsNode(pod *corev1.Pod, node *corev1.Node, used hostPorts) bool {
	if !selectorMatches(pod.Spec.NodeSelector, node.Labels) || !requiredAffinityMatches(pod, node) {
		return false
	}
	for _, port := range podHostPorts(pod) {
		if used[port] {
			return false
		}
	}
	return true
}

// requiredAffinityMatches evaluates requiredDuringSchedulingIgnoredDuringExecution:
// the node must match at least one of its terms. A term matches when all of its
// label expressions and field expressions hold; a term with neither matches no node,
// as in the scheduler.
func requiredAffinityMatches(pod *corev1.Pod, node *corev1.Node) bool {
	aff := pod.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	fields := map[string]string{"metadata.name": node.Name}
	for _, term := range aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
			continue
		}
		if requirementsHold(term.MatchExpressions, node.Labels) && requirementsHold(term.MatchFields, fields) {
			return true
		}
	}
	return false
}

// requirementsHold reports whether every requirement holds for values (a node's
// labels or its fields).
func requirementsHold(reqs []corev1.NodeSelectorRequirement, values map[string]string) bool {
	for _, r := range reqs {
		if !requirementHolds(r, values) {
			return false
		}
	}
	return true
}

func requirementHolds(r corev1.NodeSelectorRequirement, values map[string]string) bool {
	value, present := values[r.Key]
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return present && slices.Contains(r.Values, value)
	case corev1.NodeSelectorOpNotIn:
		return !present || !slices.Contains(r.Values, value)
	case corev1.NodeSelectorOpExists:
		return present
	case corev1.NodeSelectorOpDoesNotExist:
		return !present
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !present || len(r.Values) != 1 {
			return false
		}
		have, err1 := strconv.ParseInt(value, 10, 64)
		want, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == corev1.NodeSelectorOpGt {
			return have > want
		}
		return have < want
	}
	return false
}

// hostPort is a port a Pod takes on its node's addresses.
type hostPort struct {
	protocol corev1.Protocol
	port     int32
}

// hostPorts are the host ports taken on one node.
type hostPorts map[hostPort]bool

// nodeHostPorts are the host ports taken, by node name.
type nodeHostPorts map[string]hostPorts

// add records the host ports of pod, placed on node.
func (n nodeHostPorts) add(node string, pod *corev1.Pod) {
	for _, port := range podHostPorts(pod) {
		if n[node] == nil {
			n[node] = hostPorts{}
		}
		n[node][port] = true
	}
}

// hostPortsInUse collects the host ports of the Pods bound to each node that still
// hold them: every Pod that has not finished, terminating ones included, since their
// processes may still be listening.
func hostPortsInUse(pods []corev1.Pod) nodeHostPorts {
	used := nodeHostPorts{}
	for i := range pods {
		p := &pods[i]
		if p.Spec.NodeName != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			used.add(p.Spec.NodeName, p)
		}
	}
	return used
}

// podHostPorts lists the host ports a Pod asks for. The API server fills hostPort in
// from containerPort for host-network Pods, so a host-network Pod that declares a
// port takes it on the node.
func podHostPorts(pod *corev1.Pod) []hostPort {
	var out []hostPort
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			port := p.HostPort
			if port == 0 && pod.Spec.HostNetwork {
				port = p.ContainerPort
			}
			if port == 0 {
				continue
			}
			protocol := p.Protocol
			if protocol == "" {
				protocol = corev1.ProtocolTCP
			}
			out = append(out, hostPort{protocol: protocol, port: port})
		}
	}
	return out
}
