package translate

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// The API groups and kinds translation refers to.
const (
	gatewayGroup   = gwv1.GroupName
	kindGateway    = "Gateway"
	kindHTTPRoute  = "HTTPRoute"
	kindService    = "Service"
	kindSecret     = "Secret"
	coreGroup      = ""
	secretTypeTLS  = string(corev1.SecretTypeTLS)
	serviceNameKey = discoveryv1.LabelServiceName
)

// index holds the input objects by name. Nil objects are dropped, and when two objects
// share a name the one that sorts first by UID and resourceVersion is kept, so the
// outcome never depends on the order of the input slices.
type index struct {
	opts            Options
	controllerName  string
	gatewayClasses  map[string]*gwv1.GatewayClass
	gateways        []*gwv1.Gateway
	routes          []*gwv1.HTTPRoute
	grants          []*gwv1.ReferenceGrant
	services        map[types.NamespacedName]*corev1.Service
	slicesByService map[types.NamespacedName][]*discoveryv1.EndpointSlice
	secrets         map[types.NamespacedName]*corev1.Secret
	configMaps      map[types.NamespacedName]*corev1.ConfigMap
	namespaces      map[string]*corev1.Namespace
	// gatewayByKey and routeByKey find Gateways and HTTPRoutes by name.
	gatewayByKey map[types.NamespacedName]*gwv1.Gateway
	routeByKey   map[types.NamespacedName]*gwv1.HTTPRoute
	// backends caches resolved Services by backend name.
	backends map[string]config.Backend
	// backendOrigins says which Service port each backend name stands for.
	backendOrigins map[string]backendOrigin
	// resolved caches the outcome of resolveBackend by reference.
	resolved map[backendKey]backendResolution
	// namespaceAllowed caches allowsNamespace by listener and route namespace.
	namespaceAllowed map[listenerNamespace]bool
	// btls holds the BackendTLSPolicies and Gateway client certificates.
	btls *backendTLS
	// setsByParent holds the ListenerSets by the Gateway their parentRef names, in
	// the order of precedence of their listeners.
	setsByParent map[types.NamespacedName][]*gwv1.ListenerSet
	// traffic holds the TrafficPolicies, rollouts the Rollouts.
	traffic  *trafficPolicies
	rollouts *rollouts
	// mesh holds the Services served east-west; nil unless Options.Mesh is set.
	mesh *meshState
}

// backendOrigin is the Service port a backend stands for.
type backendOrigin struct {
	service types.NamespacedName
	port    int32
}

func newIndex(in *Input) *index {
	ix := &index{
		opts:             in.Options,
		controllerName:   in.Options.ControllerName,
		backends:         map[string]config.Backend{},
		backendOrigins:   map[string]backendOrigin{},
		resolved:         map[backendKey]backendResolution{},
		namespaceAllowed: map[listenerNamespace]bool{},
	}
	if ix.controllerName == "" {
		ix.controllerName = ControllerName
	}
	ix.gatewayClasses = map[string]*gwv1.GatewayClass{}
	for _, gc := range uniqueSorted(in.GatewayClasses) {
		ix.gatewayClasses[gc.Name] = gc
	}
	ix.gateways = uniqueSorted(in.Gateways)
	ix.gatewayByKey = byNamespacedName(ix.gateways)
	ix.routes = uniqueSorted(in.HTTPRoutes)
	ix.routeByKey = byNamespacedName(ix.routes)
	ix.setsByParent = listenerSetsByParent(uniqueSorted(in.ListenerSets))
	ix.grants = uniqueSorted(in.ReferenceGrants)
	services := uniqueSorted(in.Services)
	ix.services = byNamespacedName(services)
	if in.Options.Mesh {
		ix.mesh = newMeshState(services)
		ix.mesh.noteNamedPorts(ix)
	}
	ix.secrets = byNamespacedName(uniqueSorted(in.Secrets))
	ix.configMaps = byNamespacedName(uniqueSorted(in.ConfigMaps))
	ix.namespaces = map[string]*corev1.Namespace{}
	for _, ns := range uniqueSorted(in.Namespaces) {
		ix.namespaces[ns.Name] = ns
	}
	ix.slicesByService = map[types.NamespacedName][]*discoveryv1.EndpointSlice{}
	for _, s := range uniqueSorted(in.EndpointSlices) {
		svc := s.Labels[serviceNameKey]
		if svc == "" {
			continue
		}
		key := types.NamespacedName{Namespace: s.Namespace, Name: svc}
		ix.slicesByService[key] = append(ix.slicesByService[key], s)
	}
	ix.btls = newBackendTLS(ix, in)
	ix.traffic = newTrafficPolicies(ix, in.TrafficPolicies)
	ix.rollouts = newRollouts(ix, in.Rollouts)
	return ix
}

// uniqueSorted returns the non-nil objects sorted by namespace and name, one per name.
func uniqueSorted[T any, P interface {
	*T
	metav1.Object
}](items []P) []P {
	out := make([]P, 0, len(items))
	for _, item := range items {
		if item != nil {
			out = append(out, item)
		}
	}
	slices.SortStableFunc(out, compareObjects[P])
	unique := out[:0]
	for i, item := range out {
		if i > 0 && item.GetNamespace() == out[i-1].GetNamespace() && item.GetName() == out[i-1].GetName() {
			continue
		}
		unique = append(unique, item)
	}
	return unique
}

// compareObjects orders objects by namespace, name, UID and resourceVersion.
func compareObjects[P metav1.Object](a, b P) int {
	if c := strings.Compare(a.GetNamespace(), b.GetNamespace()); c != 0 {
		return c
	}
	if c := strings.Compare(a.GetName(), b.GetName()); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.GetUID()), string(b.GetUID())); c != 0 {
		return c
	}
	return strings.Compare(a.GetResourceVersion(), b.GetResourceVersion())
}

func byNamespacedName[T any, P interface {
	*T
	metav1.Object
}](items []P) map[types.NamespacedName]P {
	m := make(map[types.NamespacedName]P, len(items))
	for _, item := range items {
		m[types.NamespacedName{Namespace: item.GetNamespace(), Name: item.GetName()}] = item
	}
	return m
}

// namespaceLabels returns the labels of a namespace, including the name label that
// the API server sets on every namespace (so it holds even for namespaces that are
// not part of the input).
func (ix *index) namespaceLabels(name string) map[string]string {
	labels := map[string]string{}
	if ns := ix.namespaces[name]; ns != nil {
		for k, v := range ns.Labels {
			labels[k] = v
		}
	}
	labels[corev1.LabelMetadataName] = name
	return labels
}

// grantAllows reports whether a ReferenceGrant in toNamespace lets objects of
// fromGroup/fromKind in fromNamespace refer to the named toGroup/toKind object.
func (ix *index) grantAllows(fromGroup, fromKind, fromNamespace, toGroup, toKind, toNamespace, toName string) bool {
	for _, g := range ix.grants {
		if g.Namespace != toNamespace {
			continue
		}
		if grantHasFrom(g, fromGroup, fromKind, fromNamespace) && grantHasTo(g, toGroup, toKind, toName) {
			return true
		}
	}
	return false
}

func grantHasFrom(g *gwv1.ReferenceGrant, group, kind, namespace string) bool {
	for _, f := range g.Spec.From {
		if string(f.Group) == group && string(f.Kind) == kind && string(f.Namespace) == namespace {
			return true
		}
	}
	return false
}

func grantHasTo(g *gwv1.ReferenceGrant, group, kind, name string) bool {
	for _, t := range g.Spec.To {
		if string(t.Group) != group || string(t.Kind) != kind {
			continue
		}
		if t.Name == nil || *t.Name == "" || string(*t.Name) == name {
			return true
		}
	}
	return false
}

// str dereferences an optional string-like field, giving def when it is unset.
func str[S ~string](p *S, def string) string {
	if p == nil {
		return def
	}
	return string(*p)
}
