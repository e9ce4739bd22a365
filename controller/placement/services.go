package placement

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// serviceNamePrefix starts every managed Service's name.
const serviceNamePrefix = "sy-"

var gatewayAPIVersion = gwv1.GroupVersion.String()

// ServiceName is the name of the Service that exposes the named Gateway:
// "sy-<gateway>" when that is a valid Service name, else a shortened, cleaned form of
// the Gateway's name followed by a hash of the full name, so that distinct Gateways
// get distinct names and every name fits in 63 characters.
func ServiceName(gateway string) string {
	plain := serviceNamePrefix + gateway
	if len(validation.IsDNS1035Label(plain)) == 0 {
		return plain
	}
	sum := sha256.Sum256([]byte(gateway))
	suffix := "-" + hex.EncodeToString(sum[:])[:8]
	clean := strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return '-'
	}, strings.ToLower(gateway))
	if room := validation.DNS1035LabelMaxLength - len(serviceNamePrefix) - len(suffix); len(clean) > room {
		clean = clean[:room]
	}
	return serviceNamePrefix + strings.Trim(clean, "-") + suffix
}

// managedOwner returns the name of the Gateway a managed object (Service or
// EndpointSlice) belongs to: the object carries the managed-by label and a
// controller ownerReference to a Gateway.
func managedOwner(o metav1.Object) (string, bool) {
	if o.GetLabels()[LabelManagedBy] != ManagedByValue {
		return "", false
	}
	for _, ref := range o.GetOwnerReferences() {
		if ref.Controller != nil && *ref.Controller && ref.Kind == "Gateway" && strings.HasPrefix(ref.APIVersion, gwv1.GroupName+"/") {
			return ref.Name, true
		}
	}
	return "", false
}

// desiredService is the Service that exposes a Gateway: one TCP port per listener
// port, whose targetPort is the container port the edge replicas bind for it.
func desiredService(gw *gwv1.Gateway, name string, svcType corev1.ServiceType, selector map[string]string, ports map[int32]int32) *corev1.Service {
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
		Spec: corev1.ServiceSpec{Type: svcType, Selector: maps.Clone(selector)},
	}
	listenerPorts := make([]int32, 0, len(ports))
	for p := range ports {
		listenerPorts = append(listenerPorts, p)
	}
	sort.Slice(listenerPorts, func(i, j int) bool { return listenerPorts[i] < listenerPorts[j] })
	for _, p := range listenerPorts {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
			Name:       fmt.Sprintf("port-%d", p),
			Protocol:   corev1.ProtocolTCP,
			Port:       p,
			TargetPort: intstr.FromInt32(ports[p]),
		})
	}
	return svc
}

func ownerRef(gw *gwv1.Gateway) metav1.OwnerReference {
	controller := true
	return metav1.OwnerReference{
		APIVersion: gatewayAPIVersion,
		Kind:       "Gateway",
		Name:       gw.Name,
		UID:        gw.UID,
		Controller: &controller,
	}
}

// allocatedPorts reads the allocation record a managed Service holds: listener port
// to container port (its targetPort, when that is a number). A headless Service, left
// from address pool mode, records no allocation.
func allocatedPorts(svc *corev1.Service) map[int32]int32 {
	out := map[int32]int32{}
	if isHeadless(svc) {
		return out
	}
	for _, p := range svc.Spec.Ports {
		if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal > 0 {
			out[p.Port] = p.TargetPort.IntVal
		}
	}
	return out
}

// serviceAddresses are the addresses clients reach a Service on: its load balancer's
// ingress when it has one, else its cluster IPs.
func serviceAddresses(svc *corev1.Service) []gwv1.GatewayStatusAddress {
	var out []gwv1.GatewayStatusAddress
	for _, in := range svc.Status.LoadBalancer.Ingress {
		switch {
		case in.IP != "":
			out = append(out, gwv1.GatewayStatusAddress{Type: ptrTo(gwv1.IPAddressType), Value: in.IP})
		case in.Hostname != "":
			out = append(out, gwv1.GatewayStatusAddress{Type: ptrTo(gwv1.HostnameAddressType), Value: in.Hostname})
		}
	}
	if len(out) == 0 {
		ips := svc.Spec.ClusterIPs
		if len(ips) == 0 && svc.Spec.ClusterIP != "" {
			ips = []string{svc.Spec.ClusterIP}
		}
		for _, ip := range ips {
			if ip != "" && ip != corev1.ClusterIPNone {
				out = append(out, gwv1.GatewayStatusAddress{Type: ptrTo(gwv1.IPAddressType), Value: ip})
			}
		}
	}
	// The Gateway API allows at most 16 status addresses.
	if len(out) > 16 {
		out = out[:16]
	}
	return out
}

// plan compares the desired Services with the live managed ones. Managed Services
// of Gateways in keep are left alone, as are those of Gateways this controller does
// not serve; those of Gateways that are gone are deleted.
func (v *view) plan(desired []*corev1.Service, keep map[types.NamespacedName]bool) ServicePlan {
	var plan ServicePlan
	wanted := map[types.NamespacedName]bool{}
	for _, d := range desired {
		key := keyOf(d)
		wanted[key] = true
		live := v.services[key]
		switch {
		case live == nil:
			plan.Create = append(plan.Create, d)
			continue
		case live.DeletionTimestamp != nil:
			// It is going away; it is created anew once the deletion is seen.
			continue
		case isHeadless(live) != isHeadless(d):
			// A Service cannot become headless, nor stop being so, in place.
			plan.Delete = append(plan.Delete, live)
			plan.Create = append(plan.Create, d)
			continue
		}
		if !ownedFieldsMatch(live, d) {
			plan.Update = append(plan.Update, applyOwnedFields(live, d))
		}
	}
	for gwKey, services := range v.managed {
		gw := v.gateways[gwKey]
		if gw != nil && (keep[gwKey] || !v.isServed(gw)) {
			continue
		}
		for _, svc := range services {
			if !wanted[keyOf(svc)] {
				plan.Delete = append(plan.Delete, svc)
			}
		}
	}
	sortByName(plan.Create)
	sortByName(plan.Update)
	sortByName(plan.Delete)
	return plan
}

func (v *view) isServed(gw *gwv1.Gateway) bool {
	_, ok := v.classes[string(gw.Spec.GatewayClassName)]
	return ok
}

// isHeadless reports whether a Service has no cluster IP (clusterIP None).
func isHeadless(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP == corev1.ClusterIPNone
}

// ownedFieldsMatch reports whether the live Service already has every field
// placement owns as desired. Fields the API server defaults or others set (cluster
// IPs, node ports, traffic policies, other labels and annotations) are not compared,
// so that an up-to-date Service is never rewritten.
func ownedFieldsMatch(live, want *corev1.Service) bool {
	if live.Spec.Type != want.Spec.Type || !maps.Equal(live.Spec.Selector, want.Spec.Selector) ||
		live.Spec.LoadBalancerIP != want.Spec.LoadBalancerIP {
		return false
	}
	if !metaMatches(live, want) || !hasOwnerRef(live, want.OwnerReferences[0]) {
		return false
	}
	if len(live.Spec.Ports) != len(want.Spec.Ports) {
		return false
	}
	for i, w := range want.Spec.Ports {
		l := live.Spec.Ports[i]
		if l.Name != w.Name || l.Protocol != w.Protocol || l.Port != w.Port || l.TargetPort != w.TargetPort {
			return false
		}
	}
	return true
}

func hasOwnerRef(o metav1.Object, want metav1.OwnerReference) bool {
	for _, ref := range o.GetOwnerReferences() {
		if ref.APIVersion == want.APIVersion && ref.Kind == want.Kind && ref.Name == want.Name &&
			ref.UID == want.UID && ref.Controller != nil && *ref.Controller {
			return true
		}
	}
	return false
}

// applyOwnedFields returns a copy of the live Service with the owned fields of want.
// Node ports the API server allocated are kept while the type still uses them, and
// dropped when it no longer does (a ClusterIP Service may not have them).
func applyOwnedFields(live, want *corev1.Service) *corev1.Service {
	out := live.DeepCopy()
	// Left out, the managed fields stay as the server has them.
	out.ManagedFields = nil
	out.Spec.Type = want.Spec.Type
	out.Spec.Selector = maps.Clone(want.Spec.Selector)
	out.Spec.LoadBalancerIP = want.Spec.LoadBalancerIP
	applyMeta(out, want)
	out.OwnerReferences = withController(live.OwnerReferences, want.OwnerReferences[0])
	nodePorts := map[int32]int32{}
	for _, p := range live.Spec.Ports {
		nodePorts[p.Port] = p.NodePort
	}
	usesNodePorts := want.Spec.Type == corev1.ServiceTypeNodePort || want.Spec.Type == corev1.ServiceTypeLoadBalancer
	out.Spec.Ports = nil
	for _, p := range want.Spec.Ports {
		if usesNodePorts {
			p.NodePort = nodePorts[p.Port]
		}
		out.Spec.Ports = append(out.Spec.Ports, p)
	}
	return out
}

func ptrTo[T any](v T) *T { return &v }
