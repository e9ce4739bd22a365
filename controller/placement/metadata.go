package placement

import (
	"maps"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Annotations on managed objects that list, comma-separated, the label and
// annotation keys copied from the Gateway's spec.infrastructure. They let a later
// update remove the keys the Gateway no longer asks for without touching keys that
// others set.
const (
	// AnnotationInfrastructureLabels lists the label keys copied from
	// spec.infrastructure.labels.
	AnnotationInfrastructureLabels = "switchyard.dev/infrastructure-labels"
	// AnnotationInfrastructureAnnotations lists the annotation keys copied from
	// spec.infrastructure.annotations.
	AnnotationInfrastructureAnnotations = "switchyard.dev/infrastructure-annotations"
)

// managedMeta returns the labels and annotations of an object managed for a Gateway:
// its spec.infrastructure labels and annotations, then the labels that mark the
// object as managed (they win over infrastructure keys of the same name), then
// extra labels the kind of object needs.
func managedMeta(gw *gwv1.Gateway, extra map[string]string) (map[string]string, map[string]string) {
	labels := map[string]string{}
	annotations := map[string]string{}
	var labelKeys, annotationKeys []string
	reserved := map[string]bool{LabelManagedBy: true, LabelGatewayName: true}
	for k := range extra {
		reserved[k] = true
	}
	if infra := gw.Spec.Infrastructure; infra != nil {
		for k, v := range infra.Labels {
			if !reserved[string(k)] {
				labels[string(k)] = string(v)
				labelKeys = append(labelKeys, string(k))
			}
		}
		for k, v := range infra.Annotations {
			if k != AnnotationInfrastructureLabels && k != AnnotationInfrastructureAnnotations {
				annotations[string(k)] = string(v)
				annotationKeys = append(annotationKeys, string(k))
			}
		}
	}
	labels[LabelManagedBy] = ManagedByValue
	if len(validation.IsValidLabelValue(gw.Name)) == 0 {
		labels[LabelGatewayName] = gw.Name
	}
	maps.Copy(labels, extra)
	if len(labelKeys) > 0 {
		sort.Strings(labelKeys)
		annotations[AnnotationInfrastructureLabels] = strings.Join(labelKeys, ",")
	}
	if len(annotationKeys) > 0 {
		sort.Strings(annotationKeys)
		annotations[AnnotationInfrastructureAnnotations] = strings.Join(annotationKeys, ",")
	}
	if len(annotations) == 0 {
		annotations = nil
	}
	return labels, annotations
}

// trackedKeys reads one of the infrastructure key lists of an object.
func trackedKeys(o metav1.Object, annotation string) []string {
	v := o.GetAnnotations()[annotation]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// metaMatches reports whether the live object has every label and annotation of
// want, and none that an earlier spec.infrastructure gave it and want drops.
func metaMatches(live, want metav1.Object) bool {
	if !subset(live.GetLabels(), want.GetLabels()) || !subset(live.GetAnnotations(), want.GetAnnotations()) {
		return false
	}
	for _, ann := range []string{AnnotationInfrastructureLabels, AnnotationInfrastructureAnnotations} {
		if _, has := want.GetAnnotations()[ann]; !has && live.GetAnnotations()[ann] != "" {
			return false
		}
	}
	return true
}

func subset(have, want map[string]string) bool {
	for k, v := range want {
		if cur, ok := have[k]; !ok || cur != v {
			return false
		}
	}
	return true
}

// applyMeta gives out (a copy of a live object) the labels and annotations of want,
// first removing those an earlier spec.infrastructure gave it that want drops.
// Labels and annotations others set are kept.
func applyMeta(out, want metav1.Object) {
	labels := maps.Clone(out.GetLabels())
	if labels == nil {
		labels = map[string]string{}
	}
	annotations := maps.Clone(out.GetAnnotations())
	if annotations == nil {
		annotations = map[string]string{}
	}
	for _, k := range trackedKeys(out, AnnotationInfrastructureLabels) {
		if _, keep := want.GetLabels()[k]; !keep {
			delete(labels, k)
		}
	}
	for _, k := range trackedKeys(out, AnnotationInfrastructureAnnotations) {
		if _, keep := want.GetAnnotations()[k]; !keep {
			delete(annotations, k)
		}
	}
	delete(annotations, AnnotationInfrastructureLabels)
	delete(annotations, AnnotationInfrastructureAnnotations)
	maps.Copy(labels, want.GetLabels())
	maps.Copy(annotations, want.GetAnnotations())
	out.SetLabels(labels)
	if len(annotations) == 0 {
		annotations = nil
	}
	out.SetAnnotations(annotations)
}

// withController returns the owner references of a live object with want as its
// controller: other controller references are dropped, other owners kept.
func withController(live []metav1.OwnerReference, want metav1.OwnerReference) []metav1.OwnerReference {
	refs := []metav1.OwnerReference{want}
	for _, ref := range live {
		if ref.Controller == nil || !*ref.Controller {
			refs = append(refs, ref)
		}
	}
	return refs
}
