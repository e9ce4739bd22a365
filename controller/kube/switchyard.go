package kube

import (
	"log/slog"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// The resources of Switchyard's own kinds. They have no generated clientset: the
// Source watches them with the dynamic client and converts them to the typed objects
// as they enter the cache.
var (
	TrafficPolicyResource = v1alpha1.GroupVersion.WithResource("trafficpolicies")
	RolloutResource       = v1alpha1.GroupVersion.WithResource("rollouts")
)

// switchyardCaches are the caches of Switchyard's own kinds. A kind the cluster does
// not serve (or every kind, without a dynamic client) has an empty indexer that no
// informer fills.
type switchyardCaches struct {
	shared          dynamicinformer.DynamicSharedInformerFactory
	trafficPolicies cache.Indexer
	rollouts        cache.Indexer
}

// informerOf returns the dynamic informer of a kind with the transform that turns
// its objects into typed ones, or nil when the kind is not watched.
func (c *switchyardCaches) informerOf(kind Kind, missing bool, logger *slog.Logger) (cache.SharedIndexInformer, error) {
	if c.shared == nil || missing {
		return nil, nil
	}
	resource, newObject := TrafficPolicyResource, func() any { return &v1alpha1.TrafficPolicy{} }
	if kind == KindRollout {
		resource, newObject = RolloutResource, func() any { return &v1alpha1.Rollout{} }
	}
	informer := c.shared.ForResource(resource).Informer()
	if err := informer.SetTransform(typedTransform(kind, newObject, logger)); err != nil {
		return nil, err
	}
	return informer, nil
}

// typedTransform converts the unstructured objects the dynamic informer receives into
// typed ones (without managedFields), so that the cache holds what translation reads
// and the conversion happens once per change, not once per translation. Objects that
// already are typed (the informer may hand the cache's own objects back) pass
// unchanged. An object that does not convert stays unstructured, is logged, and is
// skipped by the listers: the API server validates against the CRD schema, so this
// only happens with a schema newer than this controller, and one such object must not
// stop the informer.
func typedTransform(kind Kind, newObject func() any, logger *slog.Logger) cache.TransformFunc {
	return func(obj any) (any, error) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return stripManagedFields(obj)
		}
		u.SetManagedFields(nil)
		typed := newObject()
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, typed); err != nil {
			logger.Warn("ignoring an object that does not match its kind's schema", "kind", kind,
				"object", u.GetNamespace()+"/"+u.GetName(), "error", err)
			return u, nil
		}
		return typed, nil
	}
}

// listTyped returns the indexer's objects of type T; entries of another type (objects
// that did not convert) are skipped.
func listTyped[T any](indexer cache.Indexer) []*T {
	var out []*T
	_ = cache.ListAll(indexer, labels.Everything(), func(obj any) {
		if o, ok := obj.(*T); ok {
			out = append(out, o)
		}
	})
	return out
}

// getTyped returns the indexer's object of that key and type T, or nil.
func getTyped[T any](indexer cache.Indexer, key types.NamespacedName) *T {
	obj, ok, err := indexer.GetByKey(key.Namespace + "/" + key.Name)
	if err != nil || !ok {
		return nil
	}
	o, _ := obj.(*T)
	return o
}

// rolloutChanged reports whether an update of a Rollout can change translation: a
// spec change (see specChanged), or a status change of what translation reads from
// it (phase and canaryWeight, written by the rollout driver) or of the generation the
// driver has seen. Other status updates, the Accepted condition this controller
// writes included, are ignored, or each status write would cause another
// translation.
func rolloutChanged(oldObj, newObj any) bool {
	if specChanged(oldObj, newObj) {
		return true
	}
	o, okOld := oldObj.(*v1alpha1.Rollout)
	n, okNew := newObj.(*v1alpha1.Rollout)
	if !okOld || !okNew {
		// An object that did not convert: only its resourceVersion tells.
		return versionChanged(oldObj, newObj)
	}
	return o.Status.Phase != n.Status.Phase || o.Status.CanaryWeight != n.Status.CanaryWeight ||
		o.Status.ObservedGeneration != n.Status.ObservedGeneration
}

// TrafficPolicies returns every cached TrafficPolicy.
func (s *Source) TrafficPolicies() []*v1alpha1.TrafficPolicy {
	return listTyped[v1alpha1.TrafficPolicy](s.switchyard.trafficPolicies)
}

// Rollouts returns every cached Rollout.
func (s *Source) Rollouts() []*v1alpha1.Rollout {
	return listTyped[v1alpha1.Rollout](s.switchyard.rollouts)
}

// Rollout returns the cached Rollout, or nil. Callers must not modify it.
func (s *Source) Rollout(key types.NamespacedName) *v1alpha1.Rollout {
	return getTyped[v1alpha1.Rollout](s.switchyard.rollouts, key)
}
