package placement

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// ParamServiceType is the key, in a GatewayClass's or a Gateway's parameters
// ConfigMap, of the type of the Services that expose its Gateways in Service mode:
// LoadBalancer, NodePort or ClusterIP.
const ParamServiceType = "serviceType"

// ClassParameters are the settings a GatewayClass's parametersRef gives its Gateways,
// and a Gateway's own spec.infrastructure.parametersRef overrides for it.
type ClassParameters struct {
	// ServiceType is the type of the Services that expose the class's Gateways in
	// Service mode.
	ServiceType corev1.ServiceType
}

// classParameters reads a GatewayClass's parameters. A class without parametersRef
// gets the defaults. The reference must name a core ConfigMap, with its namespace,
// that exists and holds only known keys with valid values; anything else is an error
// whose text tells the user what to fix.
func classParameters(gc *gwv1.GatewayClass, configMaps map[types.NamespacedName]*corev1.ConfigMap, defaultType corev1.ServiceType) (ClassParameters, error) {
	params := ClassParameters{ServiceType: defaultType}
	ref := gc.Spec.ParametersRef
	if ref == nil {
		return params, nil
	}
	if ref.Group != "" || ref.Kind != "ConfigMap" {
		return params, fmt.Errorf("parametersRef must refer to a core ConfigMap, not %s %q", groupKind(ref.Group, ref.Kind), ref.Name)
	}
	if ref.Namespace == nil || *ref.Namespace == "" {
		return params, fmt.Errorf("parametersRef to ConfigMap %q must set its namespace", ref.Name)
	}
	key := types.NamespacedName{Namespace: string(*ref.Namespace), Name: ref.Name}
	return readParameters(params, configMaps[key], key)
}

// gatewayParameters reads a Gateway's spec.infrastructure.parametersRef over the
// parameters of its class: the keys its ConfigMap sets override the class's. The
// reference must name a core ConfigMap of the Gateway's namespace that exists and
// holds only known keys with valid values.
func gatewayParameters(gw *gwv1.Gateway, class ClassParameters, configMaps map[types.NamespacedName]*corev1.ConfigMap) (ClassParameters, error) {
	if gw.Spec.Infrastructure == nil || gw.Spec.Infrastructure.ParametersRef == nil {
		return class, nil
	}
	ref := gw.Spec.Infrastructure.ParametersRef
	if ref.Group != "" || ref.Kind != "ConfigMap" {
		return class, fmt.Errorf("spec.infrastructure.parametersRef must refer to a core ConfigMap, not %s %q", groupKind(ref.Group, ref.Kind), ref.Name)
	}
	key := types.NamespacedName{Namespace: gw.Namespace, Name: ref.Name}
	return readParameters(class, configMaps[key], key)
}

// readParameters applies the keys of a parameters ConfigMap over params.
func readParameters(params ClassParameters, cm *corev1.ConfigMap, key types.NamespacedName) (ClassParameters, error) {
	if cm == nil {
		return params, fmt.Errorf("ConfigMap %s does not exist", key)
	}
	var unknown []string
	for k := range cm.Data {
		if k != ParamServiceType {
			unknown = append(unknown, k)
		}
	}
	for k := range cm.BinaryData {
		unknown = append(unknown, k)
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return params, fmt.Errorf("ConfigMap %s has unknown keys %s; the only key is %s", key, strings.Join(unknown, ", "), ParamServiceType)
	}
	if v, ok := cm.Data[ParamServiceType]; ok {
		switch t := corev1.ServiceType(strings.TrimSpace(v)); t {
		case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort, corev1.ServiceTypeClusterIP:
			params.ServiceType = t
		default:
			return params, fmt.Errorf("%s %q in ConfigMap %s is not one of LoadBalancer, NodePort, ClusterIP", ParamServiceType, v, key)
		}
	}
	return params, nil
}

func groupKind(group gwv1.Group, kind gwv1.Kind) string {
	if group == "" {
		return string(kind)
	}
	return string(kind) + "." + string(group)
}
