package status

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

// The kinds of object the writer updates, as they appear in logs.
const (
	kindGatewayClass = "GatewayClass"
	kindGateway      = "Gateway"
	kindHTTPRoute    = "HTTPRoute"
	kindBackendTLS   = "BackendTLSPolicy"
)

// gatewayClassTarget is the status write of an owned GatewayClass, or nil when the
// class is gone or not this controller's.
func (w *Writer) gatewayClassTarget(name string, desired gwv1.GatewayClassStatus, current Objects) *target[*gwv1.GatewayClass, gwv1.GatewayClassStatus] {
	cached := current.GatewayClass(name)
	if cached == nil || cached.Spec.ControllerName != w.controllerName {
		return nil
	}
	key := types.NamespacedName{Name: name}
	classes := w.client.GatewayV1().GatewayClasses()
	return &target[*gwv1.GatewayClass, gwv1.GatewayClassStatus]{
		w: w, kind: kindGatewayClass, key: key,
		object:        latest(w, kindGatewayClass, key, cached, cached.ResourceVersion),
		cachedVersion: cached.ResourceVersion,
		merge: func(o *gwv1.GatewayClass) (gwv1.GatewayClassStatus, bool) {
			merged := mergeGatewayClassStatus(o.Status, desired)
			return merged, !sameStatus(o.Status, merged)
		},
		get: func(ctx context.Context) (*gwv1.GatewayClass, error) {
			return classes.Get(ctx, name, metav1.GetOptions{})
		},
		update: func(ctx context.Context, o *gwv1.GatewayClass, st gwv1.GatewayClassStatus) (*gwv1.GatewayClass, error) {
			// A shallow copy is enough: the client only reads the object, and the
			// cached one must keep its status.
			c := *o
			c.Status = st
			return classes.UpdateStatus(ctx, &c, metav1.UpdateOptions{})
		},
	}
}

// gatewayTarget is the status write of an owned Gateway, or nil when the Gateway is
// gone or its class is not (any more) this controller's.
func (w *Writer) gatewayTarget(key types.NamespacedName, desired gwv1.GatewayStatus, current Objects) *target[*gwv1.Gateway, gwv1.GatewayStatus] {
	cached := current.Gateway(key)
	if cached == nil {
		return nil
	}
	class := current.GatewayClass(string(cached.Spec.GatewayClassName))
	if class == nil || class.Spec.ControllerName != w.controllerName {
		return nil
	}
	gateways := w.client.GatewayV1().Gateways(key.Namespace)
	return &target[*gwv1.Gateway, gwv1.GatewayStatus]{
		w: w, kind: kindGateway, key: key,
		object:        latest(w, kindGateway, key, cached, cached.ResourceVersion),
		cachedVersion: cached.ResourceVersion,
		merge: func(o *gwv1.Gateway) (gwv1.GatewayStatus, bool) {
			merged := mergeGatewayStatus(o.Status, desired)
			return merged, !sameStatus(o.Status, merged)
		},
		get: func(ctx context.Context) (*gwv1.Gateway, error) {
			return gateways.Get(ctx, key.Name, metav1.GetOptions{})
		},
		update: func(ctx context.Context, o *gwv1.Gateway, st gwv1.GatewayStatus) (*gwv1.Gateway, error) {
			c := *o
			c.Status = st
			return gateways.UpdateStatus(ctx, &c, metav1.UpdateOptions{})
		},
	}
}

// routeTarget is the status write of an HTTPRoute: desired are this controller's
// entries (none when the route no longer refers to an owned Gateway).
func (w *Writer) routeTarget(cached *gwv1.HTTPRoute, desired []gwv1.RouteParentStatus) *target[*gwv1.HTTPRoute, gwv1.HTTPRouteStatus] {
	key := types.NamespacedName{Namespace: cached.Namespace, Name: cached.Name}
	routes := w.client.GatewayV1().HTTPRoutes(key.Namespace)
	return &target[*gwv1.HTTPRoute, gwv1.HTTPRouteStatus]{
		w: w, kind: kindHTTPRoute, key: key,
		object:        latest(w, kindHTTPRoute, key, cached, cached.ResourceVersion),
		cachedVersion: cached.ResourceVersion,
		merge: func(o *gwv1.HTTPRoute) (gwv1.HTTPRouteStatus, bool) {
			merged := mergeRouteStatus(o.Namespace, o.Status, desired, w.controllerName)
			return merged, !sameStatus(o.Status, merged)
		},
		get: func(ctx context.Context) (*gwv1.HTTPRoute, error) {
			return routes.Get(ctx, key.Name, metav1.GetOptions{})
		},
		update: func(ctx context.Context, o *gwv1.HTTPRoute, st gwv1.HTTPRouteStatus) (*gwv1.HTTPRoute, error) {
			c := *o
			c.Status = st
			return routes.UpdateStatus(ctx, &c, metav1.UpdateOptions{})
		},
	}
}

// backendTLSPolicyTarget is the status write of a BackendTLSPolicy: desired are this
// controller's ancestors (none when no owned Gateway uses the policy any more).
func (w *Writer) backendTLSPolicyTarget(cached *gwv1.BackendTLSPolicy, desired []gwv1.PolicyAncestorStatus) *target[*gwv1.BackendTLSPolicy, gwv1.PolicyStatus] {
	key := types.NamespacedName{Namespace: cached.Namespace, Name: cached.Name}
	policies := w.client.GatewayV1().BackendTLSPolicies(key.Namespace)
	return &target[*gwv1.BackendTLSPolicy, gwv1.PolicyStatus]{
		w: w, kind: kindBackendTLS, key: key,
		object:        latest(w, kindBackendTLS, key, cached, cached.ResourceVersion),
		cachedVersion: cached.ResourceVersion,
		merge: func(o *gwv1.BackendTLSPolicy) (gwv1.PolicyStatus, bool) {
			merged := mergePolicyStatus(o.Namespace, o.Status, desired, w.controllerName)
			return merged, !sameStatus(o.Status, merged)
		},
		get: func(ctx context.Context) (*gwv1.BackendTLSPolicy, error) {
			return policies.Get(ctx, key.Name, metav1.GetOptions{})
		},
		update: func(ctx context.Context, o *gwv1.BackendTLSPolicy, st gwv1.PolicyStatus) (*gwv1.BackendTLSPolicy, error) {
			c := *o
			c.Status = st
			return policies.UpdateStatus(ctx, &c, metav1.UpdateOptions{})
		},
	}
}

// inputObjects serves Objects from a translator input.
type inputObjects struct {
	classes  map[string]*gwv1.GatewayClass
	gateways map[types.NamespacedName]*gwv1.Gateway
	routes   []*gwv1.HTTPRoute
	policies []*gwv1.BackendTLSPolicy
	sets     map[types.NamespacedName]*gwv1.ListenerSet
}

// InputObjects serves the objects of a translator input as Objects (and as
// ListenerSetObjects), for callers without informer caches (tests, one-shot tools). Later entries win over earlier
// ones of the same name; nil entries are skipped.
func InputObjects(in *translate.Input) Objects {
	o := &inputObjects{classes: map[string]*gwv1.GatewayClass{}, gateways: map[types.NamespacedName]*gwv1.Gateway{},
		sets: map[types.NamespacedName]*gwv1.ListenerSet{}}
	if in == nil {
		return o
	}
	for _, gc := range in.GatewayClasses {
		if gc != nil {
			o.classes[gc.Name] = gc
		}
	}
	for _, gw := range in.Gateways {
		if gw != nil {
			o.gateways[types.NamespacedName{Namespace: gw.Namespace, Name: gw.Name}] = gw
		}
	}
	for _, ls := range in.ListenerSets {
		if ls != nil {
			o.sets[types.NamespacedName{Namespace: ls.Namespace, Name: ls.Name}] = ls
		}
	}
	o.routes = in.HTTPRoutes
	o.policies = in.BackendTLSPolicies
	return o
}

func (o *inputObjects) GatewayClass(name string) *gwv1.GatewayClass { return o.classes[name] }

func (o *inputObjects) Gateway(key types.NamespacedName) *gwv1.Gateway { return o.gateways[key] }

func (o *inputObjects) HTTPRoutes() []*gwv1.HTTPRoute { return o.routes }

func (o *inputObjects) BackendTLSPolicies() []*gwv1.BackendTLSPolicy           { return o.policies }
func (o *inputObjects) ListenerSet(key types.NamespacedName) *gwv1.ListenerSet { return o.sets[key] }
