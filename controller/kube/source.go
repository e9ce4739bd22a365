// Package kube reads the cluster for the controller: shared informers keep a cache of
// every object translation needs, Input turns the caches into the translator's input,
// and a callback reports each change that can alter the translation.
package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclientset "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gwinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"
	gwlisters "sigs.k8s.io/gateway-api/pkg/client/listers/apis/v1"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

// Kind names a kind of object the Source watches.
type Kind string

// The kinds the Source watches.
const (
	KindGatewayClass   Kind = "GatewayClass"
	KindGateway        Kind = "Gateway"
	KindHTTPRoute      Kind = "HTTPRoute"
	KindListenerSet    Kind = "ListenerSet"
	KindReferenceGrant Kind = "ReferenceGrant"
	KindService        Kind = "Service"
	KindEndpointSlice  Kind = "EndpointSlice"
	KindSecret         Kind = "Secret"
	KindConfigMap      Kind = "ConfigMap"
	KindNamespace      Kind = "Namespace"
	KindBackendTLS     Kind = "BackendTLSPolicy"
	KindTrafficPolicy  Kind = "TrafficPolicy"
	KindRollout        Kind = "Rollout"
)

// Change is one change of a watched object that can alter the translation.
type Change struct {
	Kind      Kind
	Namespace string
	Name      string
}

// SourceOptions tune a Source.
type SourceOptions struct {
	// OnChange is called for every relevant change: an object added after the initial
	// list, deleted, or updated in a way translation can see. It runs on an informer's
	// goroutine and must return quickly (a coalesce.Coalescer's Trigger does). Status
	// updates of Gateway API objects, the controller's own writes included, do not
	// call it. Nil means no notifications.
	OnChange func(Change)
	// Logger receives informer errors; nil means slog.Default().
	Logger *slog.Logger
	// Missing are optional kinds (see OptionalKinds) the cluster does not serve:
	// they are not watched and read as empty.
	Missing map[Kind]bool
	// Dynamic reads Switchyard's own kinds (TrafficPolicy, Rollout), which have no
	// generated clientset. Nil means they are not watched and read as empty, as when
	// Missing lists them.
	Dynamic dynamic.Interface
}

// Source holds informer caches of everything translation and placement read. Its
// methods are safe for concurrent use once Start has returned.
type Source struct {
	opts       SourceOptions
	kubeShared informers.SharedInformerFactory
	gwShared   gwinformers.SharedInformerFactory

	gatewayClasses  gwlisters.GatewayClassLister
	gateways        gwlisters.GatewayLister
	httpRoutes      gwlisters.HTTPRouteLister
	listenerSets    gwlisters.ListenerSetLister
	referenceGrants gwlisters.ReferenceGrantLister
	services        corelisters.ServiceLister
	endpointSlices  discoverylisters.EndpointSliceLister
	secrets         corelisters.SecretLister
	configMaps      corelisters.ConfigMapLister
	namespaces      corelisters.NamespaceLister
	backendTLS      gwlisters.BackendTLSPolicyLister
	switchyard      switchyardCaches
}

// NewSource sets up the informers. Nothing is read from the API server until Start.
// The informers never resync: every change arrives by watch, and a periodic resync
// would only cause translations that change nothing.
func NewSource(kubeClient kubernetes.Interface, gwClient gatewayclientset.Interface, opts SourceOptions) (*Source, error) {
	if kubeClient == nil || gwClient == nil {
		return nil, errors.New("kube: NewSource needs a Kubernetes client and a Gateway API client")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Source{
		opts:       opts,
		kubeShared: informers.NewSharedInformerFactoryWithOptions(kubeClient, 0, informers.WithTransform(stripManagedFields)),
		gwShared:   gwinformers.NewSharedInformerFactoryWithOptions(gwClient, 0, gwinformers.WithTransform(stripManagedFields)),
	}
	gw := s.gwShared.Gateway().V1()
	core := s.kubeShared.Core().V1()
	discovery := s.kubeShared.Discovery().V1()
	s.gatewayClasses = gw.GatewayClasses().Lister()
	s.gateways = gw.Gateways().Lister()
	s.httpRoutes = gw.HTTPRoutes().Lister()
	s.listenerSets = emptyListenerSetLister()
	if !opts.Missing[KindListenerSet] {
		s.listenerSets = gw.ListenerSets().Lister()
	}
	s.referenceGrants = gw.ReferenceGrants().Lister()
	s.services = core.Services().Lister()
	s.endpointSlices = discovery.EndpointSlices().Lister()
	s.secrets = core.Secrets().Lister()
	s.configMaps = core.ConfigMaps().Lister()
	s.namespaces = core.Namespaces().Lister()
	s.backendTLS = emptyBackendTLSLister()
	if !opts.Missing[KindBackendTLS] {
		s.backendTLS = gw.BackendTLSPolicies().Lister()
	}
	policyInformer, rolloutInformer, err := s.setUpSwitchyardKinds()
	if err != nil {
		return nil, err
	}

	if err := core.Secrets().Informer().SetTransform(stripSecret); err != nil {
		return nil, fmt.Errorf("kube: setting the Secret transform: %w", err)
	}
	watches := []struct {
		kind     Kind
		informer cache.SharedIndexInformer
		relevant func(oldObj, newObj any) bool
	}{
		{KindGatewayClass, gw.GatewayClasses().Informer(), specChanged},
		{KindGateway, gw.Gateways().Informer(), specChanged},
		{KindHTTPRoute, gw.HTTPRoutes().Informer(), specChanged},
		{KindListenerSet, optionalInformer(opts.Missing[KindListenerSet], gw.ListenerSets().Informer), specChanged},
		{KindReferenceGrant, gw.ReferenceGrants().Informer(), versionChanged},
		{KindService, core.Services().Informer(), versionChanged},
		{KindEndpointSlice, discovery.EndpointSlices().Informer(), alwaysChanged},
		{KindSecret, core.Secrets().Informer(), tlsSecretChanged},
		{KindConfigMap, core.ConfigMaps().Informer(), versionChanged},
		{KindNamespace, core.Namespaces().Informer(), versionChanged},
		{KindBackendTLS, optionalInformer(opts.Missing[KindBackendTLS], gw.BackendTLSPolicies().Informer), specChanged},
		{KindTrafficPolicy, policyInformer, specChanged},
		{KindRollout, rolloutInformer, rolloutChanged},
	}
	for _, w := range watches {
		if w.informer == nil {
			continue
		}
		if err := s.watch(w.kind, w.informer, w.relevant); err != nil {
			return nil, fmt.Errorf("kube: watching %ss: %w", w.kind, err)
		}
	}
	return s, nil
}

// setUpSwitchyardKinds creates the informers of Switchyard's own kinds that the
// cluster serves (none without a dynamic client) and points the caches at them; the
// caches of the others stay empty.
func (s *Source) setUpSwitchyardKinds() (policies, rollouts cache.SharedIndexInformer, err error) {
	c := &s.switchyard
	c.trafficPolicies, c.rollouts = emptyIndexer(), emptyIndexer()
	if s.opts.Dynamic != nil {
		c.shared = dynamicinformer.NewDynamicSharedInformerFactory(s.opts.Dynamic, 0)
	}
	if policies, err = c.informerOf(KindTrafficPolicy, s.opts.Missing[KindTrafficPolicy], s.opts.Logger); err != nil {
		return nil, nil, fmt.Errorf("kube: setting the TrafficPolicy transform: %w", err)
	}
	if rollouts, err = c.informerOf(KindRollout, s.opts.Missing[KindRollout], s.opts.Logger); err != nil {
		return nil, nil, fmt.Errorf("kube: setting the Rollout transform: %w", err)
	}
	if policies != nil {
		c.trafficPolicies = policies.GetIndexer()
	}
	if rollouts != nil {
		c.rollouts = rollouts.GetIndexer()
	}
	return policies, rollouts, nil
}

// optionalInformer returns the informer of a kind, or nil without creating one when
// the cluster does not serve the kind (creating it would make Start wait forever).
func optionalInformer(missing bool, informer func() cache.SharedIndexInformer) cache.SharedIndexInformer {
	if missing {
		return nil
	}
	return informer()
}

// watch registers the change callback on one informer. Objects of the initial list
// do not notify: the caller translates once after Start anyway.
func (s *Source) watch(kind Kind, informer cache.SharedIndexInformer, relevant func(oldObj, newObj any) bool) error {
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		// Creations and updates of the objects address pool mode manages are the
		// controller's own writes (see pooledObject); a deletion is not, and makes
		// the next translation put the object back.
		AddFunc: func(obj any, initial bool) {
			if !initial && !pooledObject(obj) && s.matters(kind, obj) {
				s.notify(kind, obj)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			if relevant(oldObj, newObj) && !pooledObject(newObj) && s.matters(kind, oldObj, newObj) {
				s.notify(kind, newObj)
			}
		},
		DeleteFunc: func(obj any) {
			if obj = objectOf(obj); s.matters(kind, obj) {
				s.notify(kind, obj)
			}
		},
	})
	return err
}

// matters reports whether a change, seen as the object in each of its states, can
// alter the translation. ConfigMaps matter only when a GatewayClass or Gateway takes
// its parameters from them, a BackendTLSPolicy names them, or they hold a CA bundle
// ("ca.crt"); the others are never read, and some change every few seconds.
func (s *Source) matters(kind Kind, states ...any) bool {
	if kind != KindConfigMap {
		return true
	}
	for _, obj := range states {
		cm, ok := obj.(*corev1.ConfigMap)
		if !ok {
			return true
		}
		if holdsCA(cm) || s.referencesConfigMap(cm.Namespace, cm.Name) || s.policyReferencesConfigMap(cm.Namespace, cm.Name) {
			return true
		}
	}
	return false
}

// notify calls OnChange.
func (s *Source) notify(kind Kind, obj any) {
	if s.opts.OnChange == nil {
		return
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		s.opts.Logger.Warn("informer delivered an object without metadata", "kind", kind, "type", fmt.Sprintf("%T", obj))
		s.opts.OnChange(Change{Kind: kind})
		return
	}
	s.opts.OnChange(Change{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName()})
}

// Start runs the informers until ctx is done and waits for their caches to fill. It
// fails when ctx ends first, for example because the Gateway API CRDs are not
// installed; the error names the kinds that did not sync.
func (s *Source) Start(ctx context.Context) error {
	s.kubeShared.StartWithContext(ctx)
	s.gwShared.StartWithContext(ctx)
	if own := s.switchyard.shared; own != nil {
		own.Start(ctx.Done())
	}
	if err := s.gwShared.WaitForCacheSyncWithContext(ctx).AsError(); err != nil {
		return fmt.Errorf("kube: Gateway API caches did not sync: %w", err)
	}
	if err := s.waitSwitchyardCaches(ctx); err != nil {
		return err
	}
	if err := s.kubeShared.WaitForCacheSyncWithContext(ctx).AsError(); err != nil {
		return fmt.Errorf("kube: core caches did not sync: %w", err)
	}
	return nil
}

// Shutdown waits for the informers' goroutines to end. Call it after the context
// given to Start is done.
func (s *Source) Shutdown() {
	s.kubeShared.Shutdown()
	s.gwShared.Shutdown()
	if own := s.switchyard.shared; own != nil {
		own.Shutdown()
	}
}

// waitSwitchyardCaches waits for the caches of Switchyard's own kinds to fill.
func (s *Source) waitSwitchyardCaches(ctx context.Context) error {
	own := s.switchyard.shared
	if own == nil {
		return nil
	}
	var unsynced []string
	for resource, ok := range own.WaitForCacheSync(ctx.Done()) {
		if !ok {
			unsynced = append(unsynced, resource.Resource)
		}
	}
	if len(unsynced) > 0 {
		slices.Sort(unsynced)
		return fmt.Errorf("kube: Switchyard caches did not sync: %s: %w", strings.Join(unsynced, ", "), context.Cause(ctx))
	}
	return nil
}

// Input returns the cached objects as the translator's input, with zero Options.
// The objects are the caches' own, not copies: translation only reads its input (a
// test of this package checks that on every golden input), and callers must not
// modify them either. Each call builds new slices, so callers may reorder those.
func (s *Source) Input() *translate.Input {
	everything := labels.Everything()
	in := &translate.Input{GatewayClasses: s.listGatewayClasses()}
	in.Gateways, _ = s.gateways.List(everything)
	in.HTTPRoutes, _ = s.httpRoutes.List(everything)
	in.ListenerSets, _ = s.listenerSets.List(everything)
	in.ReferenceGrants, _ = s.referenceGrants.List(everything)
	in.Services, _ = s.services.List(everything)
	in.EndpointSlices, _ = s.endpointSlices.List(everything)
	in.Secrets, _ = s.secrets.List(everything)
	in.Namespaces, _ = s.namespaces.List(everything)
	in.BackendTLSPolicies, _ = s.backendTLS.List(everything)
	in.ConfigMaps = mergeConfigMaps(s.caConfigMaps(), s.policyConfigMaps(in.BackendTLSPolicies))
	in.TrafficPolicies = s.TrafficPolicies()
	in.Rollouts = s.Rollouts()
	return in
}

// policyConfigMaps returns the cached ConfigMaps that the BackendTLSPolicies name
// as CA certificates, each once.
func (s *Source) policyConfigMaps(policies []*gwv1.BackendTLSPolicy) []*corev1.ConfigMap {
	var out []*corev1.ConfigMap
	seen := map[types.NamespacedName]bool{}
	for _, p := range policies {
		for _, ref := range p.Spec.Validation.CACertificateRefs {
			key := types.NamespacedName{Namespace: p.Namespace, Name: string(ref.Name)}
			if ref.Group != "" || ref.Kind != "ConfigMap" || seen[key] {
				continue
			}
			seen[key] = true
			if cm, err := s.configMaps.ConfigMaps(key.Namespace).Get(key.Name); err == nil {
				out = append(out, cm)
			}
		}
	}
	return out
}

// mergeConfigMaps returns the ConfigMaps of both lists, each once.
func mergeConfigMaps(a, b []*corev1.ConfigMap) []*corev1.ConfigMap {
	seen := make(map[*corev1.ConfigMap]bool, len(a))
	out := make([]*corev1.ConfigMap, 0, len(a)+len(b))
	for _, cm := range append(a, b...) {
		if !seen[cm] {
			seen[cm] = true
			out = append(out, cm)
		}
	}
	return out
}

// policyReferencesConfigMap reports whether a BackendTLSPolicy of the namespace
// names the ConfigMap as a CA certificate.
func (s *Source) policyReferencesConfigMap(namespace, name string) bool {
	policies, _ := s.backendTLS.BackendTLSPolicies(namespace).List(labels.Everything())
	for _, p := range policies {
		for _, ref := range p.Spec.Validation.CACertificateRefs {
			if ref.Group == "" && ref.Kind == "ConfigMap" && string(ref.Name) == name {
				return true
			}
		}
	}
	return false
}

// BackendTLSPolicies returns every cached BackendTLSPolicy.
func (s *Source) BackendTLSPolicies() []*gwv1.BackendTLSPolicy {
	policies, _ := s.backendTLS.List(labels.Everything())
	return policies
}

// ConfigMaps returns the cached ConfigMaps that some GatewayClass names in its
// parametersRef, or some Gateway in its spec.infrastructure.parametersRef, for the
// placement step.
func (s *Source) ConfigMaps() []*corev1.ConfigMap {
	classes := s.listGatewayClasses()
	gateways, _ := s.gateways.List(labels.Everything())
	all, _ := s.configMaps.List(labels.Everything())
	var out []*corev1.ConfigMap
	for _, cm := range all {
		if referencesConfigMap(classes, gateways, cm.Namespace, cm.Name) {
			out = append(out, cm)
		}
	}
	return out
}

// referencesConfigMap reports whether a cached GatewayClass or Gateway takes its
// parameters from the ConfigMap. Only the Gateways of its namespace are looked at.
func (s *Source) referencesConfigMap(namespace, name string) bool {
	gateways, _ := s.gateways.Gateways(namespace).List(labels.Everything())
	return referencesConfigMap(s.listGatewayClasses(), gateways, namespace, name)
}

// caConfigMaps returns the cached ConfigMaps that hold a CA bundle, which Gateways
// may name as trust anchors.
func (s *Source) caConfigMaps() []*corev1.ConfigMap {
	all, _ := s.configMaps.List(labels.Everything())
	var out []*corev1.ConfigMap
	for _, cm := range all {
		if holdsCA(cm) {
			out = append(out, cm)
		}
	}
	return out
}

// GatewayClass returns the cached GatewayClass, or nil.
func (s *Source) GatewayClass(name string) *gwv1.GatewayClass {
	gc, _ := s.gatewayClasses.Get(name)
	return gc
}

// Gateway returns the cached Gateway, or nil.
func (s *Source) Gateway(key types.NamespacedName) *gwv1.Gateway {
	gw, _ := s.gateways.Gateways(key.Namespace).Get(key.Name)
	return gw
}

// HTTPRoute returns the cached HTTPRoute, or nil.
func (s *Source) HTTPRoute(key types.NamespacedName) *gwv1.HTTPRoute {
	r, _ := s.httpRoutes.HTTPRoutes(key.Namespace).Get(key.Name)
	return r
}

// ListenerSet returns the cached ListenerSet, or nil.
func (s *Source) ListenerSet(key types.NamespacedName) *gwv1.ListenerSet {
	ls, _ := s.listenerSets.ListenerSets(key.Namespace).Get(key.Name)
	return ls
}

// HTTPRoutes returns every cached HTTPRoute.
func (s *Source) HTTPRoutes() []*gwv1.HTTPRoute {
	routes, _ := s.httpRoutes.List(labels.Everything())
	return routes
}

func (s *Source) listGatewayClasses() []*gwv1.GatewayClass {
	classes, _ := s.gatewayClasses.List(labels.Everything())
	return classes
}
