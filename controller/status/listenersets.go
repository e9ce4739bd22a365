package status

import (
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

// kindListenerSet names ListenerSets in logs.
const kindListenerSet = "ListenerSet"

// ListenerSetObjects is implemented by Objects that also serve ListenerSets
// (kube.Source and InputObjects do). The writer writes ListenerSet status only
// through Objects that implement it.
type ListenerSetObjects interface {
	Objects
	// ListenerSet returns the ListenerSet, or nil.
	ListenerSet(key types.NamespacedName) *gwv1.ListenerSet
}

// listenerSetTarget is the status write of a ListenerSet, or nil when it is gone or
// its parentRef no longer names a Gateway of this controller.
func (w *Writer) listenerSetTarget(key types.NamespacedName, desired gwv1.ListenerSetStatus, current ListenerSetObjects) *target[*gwv1.ListenerSet, gwv1.ListenerSetStatus] {
	cached := current.ListenerSet(key)
	if cached == nil {
		return nil
	}
	parent, ok := translate.ListenerSetParent(cached)
	if !ok {
		return nil
	}
	gw := current.Gateway(parent)
	if gw == nil {
		return nil
	}
	class := current.GatewayClass(string(gw.Spec.GatewayClassName))
	if class == nil || class.Spec.ControllerName != w.controllerName {
		return nil
	}
	return newTarget(w, kindListenerSet, key, cached, statusClient[*gwv1.ListenerSet](w.client.GatewayV1().ListenerSets(key.Namespace)),
		func(o *gwv1.ListenerSet) (gwv1.ListenerSetStatus, bool) {
			merged := mergeListenerSetStatus(o.Status, desired)
			return merged, !sameStatus(o.Status, merged)
		},
		func(o *gwv1.ListenerSet, st gwv1.ListenerSetStatus) *gwv1.ListenerSet {
			c := *o
			c.Status = st
			return &c
		})
}

// mergeListenerSetStatus is the status to write for a ListenerSet: listener
// conditions are matched by listener name, and route groups get the CRD default.
func mergeListenerSetStatus(current, desired gwv1.ListenerSetStatus) gwv1.ListenerSetStatus {
	out := *desired.DeepCopy()
	out.Conditions = mergeConditions(current.Conditions, desired.Conditions)
	for i := range out.Listeners {
		l := &out.Listeners[i]
		for _, cl := range current.Listeners {
			if cl.Name == l.Name {
				l.Conditions = mergeConditions(cl.Conditions, l.Conditions)
				break
			}
		}
		for j := range l.SupportedKinds {
			if l.SupportedKinds[j].Group == nil {
				g := defaultGroup
				l.SupportedKinds[j].Group = &g
			}
		}
	}
	return out
}
