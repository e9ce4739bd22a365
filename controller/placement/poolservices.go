package placement

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// EndpointSliceManagedBy is the value of the endpointslice.kubernetes.io/managed-by
// label on managed EndpointSlices, so that the cluster's own EndpointSlice
// controllers leave them alone.
const EndpointSliceManagedBy = "gateway-controller.switchyard.dev"

// poolObjects plans, in address pool mode, the headless Service of every served
// Gateway that is not refused, named ServiceName(gateway) and without a selector, and
// for each Gateway that has an address an EndpointSlice of the same name holding it:
// in-cluster clients then resolve <service>.<namespace>.svc to the Gateway's address.
// A name held by an object not managed for the Gateway is left alone, and then the
// Gateway has no such objects; it is still served.
func (v *view) poolObjects(placements map[types.NamespacedName]bindingPlacement) ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	var services []*corev1.Service
	var slices []*discoveryv1.EndpointSlice
	names := map[types.NamespacedName]bool{}
	for _, gw := range v.served {
		pl, ok := placements[keyOf(gw)]
		if !ok || pl.refused {
			continue
		}
		name := types.NamespacedName{Namespace: gw.Namespace, Name: ServiceName(gw.Name)}
		if names[name] || !v.namesFree(name, gw.Name) {
			continue
		}
		names[name] = true
		ports := listenerPorts(gw)
		services = append(services, desiredHeadlessService(gw, name.Name, ports))
		if pl.address.IsValid() {
			slices = append(slices, desiredSlice(gw, name.Name, pl.address, ports))
		}
	}
	sortByName(services)
	sortByName(slices)
	return services, slices
}

// bindingPlacement is what poolObjects needs of a Gateway's placement: its address
// (zero when it has none) and whether the Gateway is refused (Accepted=False).
type bindingPlacement struct {
	address netip.Addr
	refused bool
}

// namesFree reports whether a name can be used for the Service and EndpointSlice
// managed for the named Gateway: for each, nothing holds it, or an object managed for
// that Gateway does.
func (v *view) namesFree(name types.NamespacedName, gateway string) bool {
	if svc := v.services[name]; svc != nil && !managedFor(svc, gateway) {
		return false
	}
	if es := v.slices[name]; es != nil && !managedFor(es, gateway) {
		return false
	}
	return true
}

func managedFor(o metav1.Object, gateway string) bool {
	owner, ok := managedOwner(o)
	return ok && owner == gateway
}

// desiredHeadlessService is the headless, selectorless Service that names a Gateway
// in the cluster's DNS in address pool mode: one TCP port per listener port.
func desiredHeadlessService(gw *gwv1.Gateway, name string, ports []int32) *corev1.Service {
	labels, annotations := managedMeta(gw, nil)
	svc := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       gw.Namespace,
			Labels:          labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{ownerRef(gw)},
		},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: corev1.ClusterIPNone},
	}
	for _, p := range ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
			Name:       fmt.Sprintf("port-%d", p),
			Protocol:   corev1.ProtocolTCP,
			Port:       p,
			TargetPort: intstr.FromInt32(p),
		})
	}
	return svc
}

// desiredSlice is the EndpointSlice of a Gateway's headless Service: its one address,
// ready, on the listener ports.
func desiredSlice(gw *gwv1.Gateway, name string, addr netip.Addr, ports []int32) *discoveryv1.EndpointSlice {
	labels, annotations := managedMeta(gw, map[string]string{
		discoveryv1.LabelServiceName: name,
		discoveryv1.LabelManagedBy:   EndpointSliceManagedBy,
	})
	addressType := discoveryv1.AddressTypeIPv4
	if addr.Is6() {
		addressType = discoveryv1.AddressTypeIPv6
	}
	es := &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: discoveryv1.SchemeGroupVersion.String(), Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       gw.Namespace,
			Labels:          labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{ownerRef(gw)},
		},
		AddressType: addressType,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{addr.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true)},
		}},
	}
	for _, p := range ports {
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{
			Name:     ptrTo(fmt.Sprintf("port-%d", p)),
			Protocol: ptrTo(corev1.ProtocolTCP),
			Port:     ptrTo(p),
		})
	}
	return es
}

// planSlices adds to plan the writes that bring the managed EndpointSlices to
// desired. Managed EndpointSlices of Gateways this controller does not serve are left
// alone; those of served Gateways that are not desired, and of Gateways that are
// gone, are deleted.
func (v *view) planSlices(desired []*discoveryv1.EndpointSlice, plan *ServicePlan) {
	wanted := map[types.NamespacedName]bool{}
	for _, d := range desired {
		key := keyOf(d)
		wanted[key] = true
		live := v.slices[key]
		switch {
		case live == nil:
			plan.CreateSlices = append(plan.CreateSlices, d)
		case live.DeletionTimestamp != nil:
			// It is going away; it is created anew once the deletion is seen.
		case live.AddressType != d.AddressType:
			// The address type of an EndpointSlice cannot change.
			plan.DeleteSlices = append(plan.DeleteSlices, live)
			plan.CreateSlices = append(plan.CreateSlices, d)
		case !sliceFieldsMatch(live, d):
			plan.UpdateSlices = append(plan.UpdateSlices, applySliceFields(live, d))
		}
	}
	for gwKey, slices := range v.managedSlices {
		if gw := v.gateways[gwKey]; gw != nil && !v.isServed(gw) {
			continue
		}
		for _, es := range slices {
			if !wanted[keyOf(es)] {
				plan.DeleteSlices = append(plan.DeleteSlices, es)
			}
		}
	}
	sortByName(plan.CreateSlices)
	sortByName(plan.UpdateSlices)
	sortByName(plan.DeleteSlices)
}

// sliceFieldsMatch reports whether the live EndpointSlice has every field placement
// owns as desired.
func sliceFieldsMatch(live, want *discoveryv1.EndpointSlice) bool {
	if !metaMatches(live, want) || !hasOwnerRef(live, want.OwnerReferences[0]) {
		return false
	}
	if len(live.Endpoints) != len(want.Endpoints) || len(live.Ports) != len(want.Ports) {
		return false
	}
	for i, w := range want.Endpoints {
		l := live.Endpoints[i]
		if fmt.Sprint(l.Addresses) != fmt.Sprint(w.Addresses) || (l.Conditions.Ready == nil) || *l.Conditions.Ready != *w.Conditions.Ready {
			return false
		}
	}
	for i, w := range want.Ports {
		l := live.Ports[i]
		if l.Name == nil || l.Protocol == nil || l.Port == nil || *l.Name != *w.Name || *l.Protocol != *w.Protocol || *l.Port != *w.Port {
			return false
		}
	}
	return true
}

// applySliceFields returns a copy of the live EndpointSlice with the owned fields of
// want.
func applySliceFields(live, want *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	out := live.DeepCopy()
	out.ManagedFields = nil
	applyMeta(out, want)
	out.OwnerReferences = withController(live.OwnerReferences, want.OwnerReferences[0])
	out.Endpoints = want.DeepCopy().Endpoints
	out.Ports = want.DeepCopy().Ports
	return out
}
