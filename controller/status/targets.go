package status

import (
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
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
	return newTarget(w, kindGatewayClass, key, cached, statusClient[*gwv1.GatewayClass](w.client.GatewayV1().GatewayClasses()),
		func(o *gwv1.GatewayClass) (gwv1.GatewayClassStatus, bool) {
			merged := mergeGatewayClassStatus(o.Status, desired)
			return merged, !sameStatus(o.Status, merged)
		},
		func(o *gwv1.GatewayClass, st gwv1.GatewayClassStatus) *gwv1.GatewayClass {
			c := *o
			c.Status = st
			return &c
		})
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
	return newTarget(w, kindGateway, key, cached, statusClient[*gwv1.Gateway](w.client.GatewayV1().Gateways(key.Namespace)),
		func(o *gwv1.Gateway) (gwv1.GatewayStatus, bool) {
			merged := mergeGatewayStatus(o.Status, desired)
			return merged, !sameStatus(o.Status, merged)
		},
		func(o *gwv1.Gateway, st gwv1.GatewayStatus) *gwv1.Gateway {
			c := *o
			c.Status = st
			return &c
		})
}

// routeTarget is the status write of an HTTPRoute: desired are this controller's
// entries (none when the route no longer refers to an owned Gateway).
func (w *Writer) routeTarget(cached *gwv1.HTTPRoute, desired []gwv1.RouteParentStatus) *target[*gwv1.HTTPRoute, gwv1.HTTPRouteStatus] {
	key := types.NamespacedName{Namespace: cached.Namespace, Name: cached.Name}
	return newTarget(w, kindHTTPRoute, key, cached, statusClient[*gwv1.HTTPRoute](w.client.GatewayV1().HTTPRoutes(key.Namespace)),
		func(o *gwv1.HTTPRoute) (gwv1.HTTPRouteStatus, bool) {
			merged := mergeRouteStatus(o.Namespace, o.Status, desired, w.controllerName)
			return merged, !sameStatus(o.Status, merged)
		},
		func(o *gwv1.HTTPRoute, st gwv1.HTTPRouteStatus) *gwv1.HTTPRoute {
			c := *o
			c.Status = st
			return &c
		})
}

// backendTLSPolicyTarget is the status write of a BackendTLSPolicy: desired are this
// controller's ancestors (none when no owned Gateway uses the policy any more).
func (w *Writer) backendTLSPolicyTarget(cached *gwv1.BackendTLSPolicy, desired []gwv1.PolicyAncestorStatus) *target[*gwv1.BackendTLSPolicy, gwv1.PolicyStatus] {
	key := types.NamespacedName{Namespace: cached.Namespace, Name: cached.Name}
	return newTarget(w, kindBackendTLS, key, cached, statusClient[*gwv1.BackendTLSPolicy](w.client.GatewayV1().BackendTLSPolicies(key.Namespace)),
		func(o *gwv1.BackendTLSPolicy) (gwv1.PolicyStatus, bool) {
			merged := mergePolicyStatus(o.Namespace, o.Status, desired, w.controllerName)
			return merged, !sameStatus(o.Status, merged)
		},
		func(o *gwv1.BackendTLSPolicy, st gwv1.PolicyStatus) *gwv1.BackendTLSPolicy {
			c := *o
			c.Status = st
			return &c
		})
}

// inputObjects serves Objects from a translator input.
type inputObjects struct {
	classes  map[string]*gwv1.GatewayClass
	gateways map[types.NamespacedName]*gwv1.Gateway
	routes   []*gwv1.HTTPRoute
	policies []*gwv1.BackendTLSPolicy
	sets     map[types.NamespacedName]*gwv1.ListenerSet
	traffic  []*v1alpha1.TrafficPolicy
	rollouts []*v1alpha1.Rollout
}

// InputObjects serves the objects of a translator input as Objects (and as
// ListenerSetObjects and SwitchyardObjects), for callers without informer caches (tests, one-shot tools). Later entries win over earlier
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
	o.traffic = in.TrafficPolicies
	o.rollouts = in.Rollouts
	return o
}

func (o *inputObjects) GatewayClass(name string) *gwv1.GatewayClass { return o.classes[name] }

func (o *inputObjects) Gateway(key types.NamespacedName) *gwv1.Gateway { return o.gateways[key] }

func (o *inputObjects) HTTPRoutes() []*gwv1.HTTPRoute { return o.routes }

func (o *inputObjects) BackendTLSPolicies() []*gwv1.BackendTLSPolicy           { return o.policies }
func (o *inputObjects) ListenerSet(key types.NamespacedName) *gwv1.ListenerSet { return o.sets[key] }
func (o *inputObjects) TrafficPolicies() []*v1alpha1.TrafficPolicy             { return o.traffic }
func (o *inputObjects) Rollouts() []*v1alpha1.Rollout                          { return o.rollouts }
