package kube

import (
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/cache"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwlisters "sigs.k8s.io/gateway-api/pkg/client/listers/apis/v1"
)

// OptionalKinds are the kinds that a cluster may lack, with their resources: the
// Gateway API kinds whose CRDs are newer than the core ones, and Switchyard's own
// kinds. The controller serves the rest without them.
var OptionalKinds = map[Kind]schema.GroupVersionResource{
	KindBackendTLS:    gwv1.SchemeGroupVersion.WithResource("backendtlspolicies"),
	KindListenerSet:   gwv1.SchemeGroupVersion.WithResource("listenersets"),
	KindTrafficPolicy: TrafficPolicyResource,
	KindRollout:       RolloutResource,
}

// MissingKinds asks the API server which optional kinds it does not serve. A
// controller started before their CRDs were installed must be restarted to use them.
func MissingKinds(d discovery.DiscoveryInterface) (map[Kind]bool, error) {
	served := map[schema.GroupVersionResource]bool{}
	var versions []schema.GroupVersion
	for _, r := range OptionalKinds {
		if gv := r.GroupVersion(); !slices.Contains(versions, gv) {
			versions = append(versions, gv)
		}
	}
	for _, gv := range versions {
		list, err := d.ServerResourcesForGroupVersion(gv.String())
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("kube: discovering %s: %w", gv, err)
		}
		if list == nil {
			continue
		}
		for _, r := range list.APIResources {
			served[gv.WithResource(r.Name)] = true
		}
	}
	missing := map[Kind]bool{}
	for kind, resource := range OptionalKinds {
		if !served[resource] {
			missing[kind] = true
		}
	}
	return missing, nil
}

// emptyIndexer backs the listers of kinds the cluster does not serve: they list
// nothing and find nothing.
func emptyIndexer() cache.Indexer {
	return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
}

func emptyBackendTLSLister() gwlisters.BackendTLSPolicyLister {
	return gwlisters.NewBackendTLSPolicyLister(emptyIndexer())
}

func emptyListenerSetLister() gwlisters.ListenerSetLister {
	return gwlisters.NewListenerSetLister(emptyIndexer())
}
