package kube

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/cache"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwlisters "sigs.k8s.io/gateway-api/pkg/client/listers/apis/v1"
)

// OptionalKinds are the Gateway API kinds that a cluster may lack (their CRDs are
// newer than the core ones); the controller serves the rest without them.
var OptionalKinds = map[Kind]string{KindBackendTLS: "backendtlspolicies", KindListenerSet: "listenersets"}

// MissingKinds asks the API server which optional kinds it does not serve. A
// controller started before their CRDs were installed must be restarted to use them.
func MissingKinds(d discovery.DiscoveryInterface) (map[Kind]bool, error) {
	served := map[string]bool{}
	list, err := d.ServerResourcesForGroupVersion(gwv1.GroupVersion.String())
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("kube: discovering %s: %w", gwv1.GroupVersion, err)
	}
	if list != nil {
		for _, r := range list.APIResources {
			served[r.Name] = true
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
