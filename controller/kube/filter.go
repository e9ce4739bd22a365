package kube

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/controller/placement"
)

// lastAppliedAnnotation is where kubectl apply keeps a full copy of the object. On a
// Secret that copy holds the key material in clear, so the cache drops it.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// stripManagedFields drops the server-side-apply bookkeeping from an object before it
// enters a cache. Translation never reads it, and it often is the largest part of
// the object.
func stripManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// stripSecret keeps only what translation can use of a Secret: the data of
// kubernetes.io/tls Secrets (their certificate and key), and for every other Secret
// just its metadata and type, so that a listener referring to one can be told why it
// is unusable. A cluster's other Secrets (tokens, Helm releases) are never held in
// memory.
func stripSecret(obj any) (any, error) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return stripManagedFields(obj)
	}
	s.ManagedFields = nil
	// Informers hand the transform a fresh object that nothing else holds yet, so it
	// is changed in place.
	delete(s.Annotations, lastAppliedAnnotation)
	if s.Type != corev1.SecretTypeTLS {
		s.Data = nil
		s.StringData = nil
	}
	return s, nil
}

// specChanged reports whether an update of a Gateway API object can change
// translation. The API server raises metadata.generation on every spec change but not
// on status changes, so an update with the same generation, labels, annotations and
// deletion timestamp only touched status: most often this controller's own status
// write, which must not cause another translation.
func specChanged(oldObj, newObj any) bool {
	o, errOld := meta.Accessor(oldObj)
	n, errNew := meta.Accessor(newObj)
	if errOld != nil || errNew != nil {
		return true
	}
	return o.GetGeneration() != n.GetGeneration() ||
		!maps.Equal(o.GetLabels(), n.GetLabels()) ||
		!maps.Equal(o.GetAnnotations(), n.GetAnnotations()) ||
		!sameTime(o.GetDeletionTimestamp(), n.GetDeletionTimestamp())
}

// versionChanged reports whether an update carries a new resourceVersion. Updates
// with an unchanged one come from a relist of objects the cache already has.
func versionChanged(oldObj, newObj any) bool {
	o, errOld := meta.Accessor(oldObj)
	n, errNew := meta.Accessor(newObj)
	if errOld != nil || errNew != nil {
		return true
	}
	return o.GetResourceVersion() != n.GetResourceVersion()
}

// alwaysChanged counts every update: EndpointSlice updates are how backends'
// readiness reaches the data plane, and they are cheap to translate.
func alwaysChanged(_, _ any) bool { return true }

// tlsSecretChanged counts new versions of kubernetes.io/tls Secrets only. Other
// Secrets keep no data in the cache, and their type cannot change, so their updates
// cannot change translation.
func tlsSecretChanged(oldObj, newObj any) bool {
	if s, ok := newObj.(*corev1.Secret); ok && s.Type != corev1.SecretTypeTLS {
		return false
	}
	return versionChanged(oldObj, newObj)
}

func sameTime(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(b)
}

// objectOf returns the object an event carries, unwrapping the tombstone that a
// relist gives for a deletion the watch missed.
func objectOf(obj any) any {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return tomb.Obj
	}
	return obj
}

// referencesConfigMap reports whether any GatewayClass takes its parameters from the
// ConfigMap namespace/name, or any Gateway of that namespace does through its
// spec.infrastructure.parametersRef.
func referencesConfigMap(classes []*gwv1.GatewayClass, gateways []*gwv1.Gateway, namespace, name string) bool {
	for _, gc := range classes {
		ref := gc.Spec.ParametersRef
		if ref == nil || ref.Group != "" || ref.Kind != "ConfigMap" || ref.Name != name {
			continue
		}
		if ref.Namespace != nil && string(*ref.Namespace) == namespace {
			return true
		}
	}
	for _, gw := range gateways {
		if gw.Namespace != namespace || gw.Spec.Infrastructure == nil {
			continue
		}
		if ref := gw.Spec.Infrastructure.ParametersRef; ref != nil && ref.Group == "" && ref.Kind == "ConfigMap" && ref.Name == name {
			return true
		}
	}
	return false
}

// pooledObject reports whether obj is a headless Service or an EndpointSlice that
// address pool mode manages for a Gateway. Their content follows from the placement,
// so a change of them cannot change it. Were the controller's own writes of them to
// cause translations, a translation that sees a Gateway's status before the
// controller's latest status write has reached the cache would move the Gateway back
// to an address it just left, write again, and so on, for as long as writes lag. A
// change made by someone else is put right on the next translation.
func pooledObject(obj any) bool {
	switch o := obj.(type) {
	case *corev1.Service:
		return o.Labels[placement.LabelManagedBy] == placement.ManagedByValue && o.Spec.ClusterIP == corev1.ClusterIPNone
	case *discoveryv1.EndpointSlice:
		return o.Labels[placement.LabelManagedBy] == placement.ManagedByValue &&
			o.Labels[discoveryv1.LabelManagedBy] == placement.EndpointSliceManagedBy
	}
	return false
}

// caBundleKey is the ConfigMap key that holds a PEM CA bundle, by Gateway API
// convention.
const caBundleKey = "ca.crt"

// holdsCA reports whether a ConfigMap holds a CA bundle that a Gateway may refer to.
func holdsCA(cm *corev1.ConfigMap) bool {
	_, ok := cm.Data[caBundleKey]
	return ok
}
