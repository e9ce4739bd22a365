package podwatch

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/gateway/mesh"
)

// Labels that name a Pod's workload when its owner does not.
const (
	labelTemplateHash = "pod-template-hash"
	labelName         = "app.kubernetes.io/name"
	labelApp          = "app"
)

// callerOf returns the identity of pod.
func callerOf(pod *corev1.Pod) mesh.Caller {
	return mesh.Caller{
		Namespace:      pod.Namespace,
		Name:           pod.Name,
		Workload:       workloadOf(pod),
		ServiceAccount: pod.Spec.ServiceAccountName,
	}
}

// workloadOf names the workload a Pod belongs to, so that the replicas of one
// Deployment are one caller in metrics and rate limits: a ReplicaSet owner's
// Deployment (the ReplicaSet's name less its pod-template-hash suffix), another
// controller owner's own name, else the app.kubernetes.io/name or app label, else the
// Pod's name.
func workloadOf(pod *corev1.Pod) string {
	if owner := metav1.GetControllerOfNoCopy(pod); owner != nil && owner.Name != "" {
		if owner.Kind == "ReplicaSet" {
			if hash := pod.Labels[labelTemplateHash]; hash != "" {
				if name, ok := strings.CutSuffix(owner.Name, "-"+hash); ok && name != "" {
					return name
				}
			}
		}
		return owner.Name
	}
	if v := pod.Labels[labelName]; v != "" {
		return v
	}
	if v := pod.Labels[labelApp]; v != "" {
		return v
	}
	return pod.Name
}

// slim is the informer's transform: it keeps of each Pod only what the table needs,
// so that the cache of a node's Pods stays small whatever their specs hold.
func slim(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              pod.Name,
			Namespace:         pod.Namespace,
			UID:               pod.UID,
			ResourceVersion:   pod.ResourceVersion,
			DeletionTimestamp: pod.DeletionTimestamp,
			CreationTimestamp: pod.CreationTimestamp,
		},
		Spec: corev1.PodSpec{
			NodeName:           pod.Spec.NodeName,
			HostNetwork:        pod.Spec.HostNetwork,
			ServiceAccountName: pod.Spec.ServiceAccountName,
		},
		Status: corev1.PodStatus{Phase: pod.Status.Phase, PodIP: pod.Status.PodIP, PodIPs: pod.Status.PodIPs},
	}
	for _, key := range []string{labelTemplateHash, labelName, labelApp} {
		if v, ok := pod.Labels[key]; ok {
			if out.Labels == nil {
				out.Labels = map[string]string{}
			}
			out.Labels[key] = v
		}
	}
	if owner := metav1.GetControllerOfNoCopy(pod); owner != nil {
		out.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return out, nil
}
