// Package placement decides where the shared tier of edge replicas serves each
// Gateway, and which Kubernetes Services (and, in address pool mode, EndpointSlices)
// expose them.
//
// Switchyard runs one set of edge replicas for all Gateways, so Gateways that share a
// listener port (and even hostnames) must still get sockets of their own. Two modes
// do that:
//
//   - Address pool mode (PoolAllocator): each Gateway gets one address from a
//     configured pool, and the edge replicas bind it on the listeners' own ports. A
//     headless Service per Gateway, with an EndpointSlice holding that address,
//     gives it a name in the cluster's DNS.
//   - Service mode (PortAllocator): each (Gateway, listener port) gets a container
//     port from a configured range, and one Service per Gateway maps the listener
//     ports to those container ports on the edge replica Pods.
//
// Allocation is a pure function of the cluster's objects: the record of what was
// allocated is kept in the cluster itself (a Gateway's status.addresses in pool mode,
// the targetPorts of its managed Service in Service mode). A restarted controller, or
// a follower replica, therefore computes the same placements from its caches, and an
// allocation never moves while its owner keeps it. Only ServiceSync writes to the API
// server.
//
// A Gateway's spec.infrastructure labels and annotations are set on every object
// managed for it, and its spec.infrastructure.parametersRef may name a ConfigMap of
// its namespace whose keys override those of its class's parameters.
package placement

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

// Labels that mark the Services this package manages.
const (
	// LabelManagedBy is set to ManagedByValue on every managed Service and
	// EndpointSlice.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy on managed objects.
	ManagedByValue = "switchyard"
	// LabelGatewayName names the Gateway a managed Service exposes, when the name fits
	// in a label value (63 characters). The Service's controller ownerReference is
	// the authoritative link.
	LabelGatewayName = "gateway.networking.k8s.io/gateway-name"
	// ManagedSelector selects managed Services, for a label-filtered informer or List.
	ManagedSelector = LabelManagedBy + "=" + ManagedByValue
)

// Allocator computes placements. PoolAllocator and PortAllocator implement it.
type Allocator interface {
	// Place computes the placement of every Gateway of a served class from the
	// current objects. It reads nothing but its argument and never modifies it.
	Place(s *State) *Result
}

// State is what placement reads: the current objects, as an informer cache holds them.
// Slices may be in any order and may hold nil entries.
type State struct {
	// GatewayClasses decide which Gateways are served and with which parameters.
	GatewayClasses []*gwv1.GatewayClass
	// Gateways are all Gateways, with their status (pool mode reads the addresses
	// they already report).
	Gateways []*gwv1.Gateway
	// Services should be all Services: managed ones are the allocation record in
	// Service mode, and the others reveal a name already taken. Managed Services
	// alone also work; then a name clash surfaces as an error from ServiceSync.
	Services []*corev1.Service
	// ConfigMaps hold GatewayClass and Gateway parameters; only those that classes
	// and Gateways refer to are read.
	ConfigMaps []*corev1.ConfigMap
	// EndpointSlices should hold at least the managed ones (address pool mode keeps
	// one per Gateway); the others reveal a name already taken.
	EndpointSlices []*discoveryv1.EndpointSlice
	// ListenerSets add listener ports to the Gateways that allow them; Namespaces
	// hold the labels that allowedListeners selectors match (Service mode).
	ListenerSets []*gwv1.ListenerSet
	Namespaces   []*corev1.Namespace
}

// Result is the outcome of one placement.
type Result struct {
	// Placements holds the placement of every Gateway of a served class whose
	// parameters are valid; it is never nil. Give it to translate.Options.Placements.
	Placements map[types.NamespacedName]translate.GatewayPlacement
	// InvalidClassParameters holds, by name, the served GatewayClasses whose
	// parametersRef cannot be used and why. Give it to
	// translate.Options.InvalidClassParameters.
	InvalidClassParameters map[string]string
	// Services are the managed Services that should exist, sorted by namespace and
	// name.
	Services []*corev1.Service
	// EndpointSlices are the managed EndpointSlices that should exist, sorted by
	// namespace and name (none in Service mode).
	EndpointSlices []*discoveryv1.EndpointSlice
	// Plan turns the current managed objects into Services and EndpointSlices. Only
	// the replica that writes to the API server applies it, with ServiceSync.
	Plan ServicePlan
}

// SetOptions copies the placement into translation options.
func (r *Result) SetOptions(opts *translate.Options) {
	opts.Placements = r.Placements
	opts.InvalidClassParameters = r.InvalidClassParameters
}

// ServicePlan is the set of writes that brings the managed Services and
// EndpointSlices to the desired state. Each list is sorted by namespace and name.
type ServicePlan struct {
	// Create holds Services to create.
	Create []*corev1.Service
	// Update holds copies of live Services with the fields placement owns (type,
	// selector, ports, labels, annotations, owner) set; they carry the live
	// resourceVersion, so an update based on a stale cache fails with a conflict
	// rather than overwrite.
	Update []*corev1.Service
	// Delete holds live managed Services whose Gateway is gone or no longer needs
	// one, and those that must be created anew because a field that cannot change
	// (headless or not) differs; those are in Create too.
	Delete []*corev1.Service
	// CreateSlices holds EndpointSlices to create.
	CreateSlices []*discoveryv1.EndpointSlice
	// UpdateSlices holds copies of live EndpointSlices with the fields placement owns
	// (endpoints, ports, labels, annotations, owner) set.
	UpdateSlices []*discoveryv1.EndpointSlice
	// DeleteSlices holds live managed EndpointSlices that are no longer needed, and
	// those whose address type must change (those are in CreateSlices too).
	DeleteSlices []*discoveryv1.EndpointSlice
}

// Empty reports whether the plan writes nothing.
func (p ServicePlan) Empty() bool {
	return len(p.Create) == 0 && len(p.Update) == 0 && len(p.Delete) == 0 &&
		len(p.CreateSlices) == 0 && len(p.UpdateSlices) == 0 && len(p.DeleteSlices) == 0
}

// view is the State indexed for one placement.
type view struct {
	controllerName string
	// classes holds the parameters of every served class with valid parameters.
	classes map[string]ClassParameters
	invalid map[string]string
	// gateways holds every Gateway by name; served holds the Gateways of served
	// classes with valid parameters, oldest first.
	gateways map[types.NamespacedName]*gwv1.Gateway
	served   []*gwv1.Gateway
	// params holds the parameters of each served Gateway (its class's, with its own
	// parametersRef applied), and badParams why a served Gateway's own parametersRef
	// cannot be used.
	params    map[types.NamespacedName]ClassParameters
	badParams map[types.NamespacedName]string
	services  map[types.NamespacedName]*corev1.Service
	// managed holds the managed Services of each Gateway, by the Gateway's name.
	managed map[types.NamespacedName][]*corev1.Service
	slices  map[types.NamespacedName]*discoveryv1.EndpointSlice
	// managedSlices holds the managed EndpointSlices of each Gateway.
	managedSlices map[types.NamespacedName][]*discoveryv1.EndpointSlice
	// setPorts holds the listener ports that ListenerSets add to each Gateway.
	setPorts map[types.NamespacedName][]int32
}

func newView(s *State, controllerName string, defaultType corev1.ServiceType) *view {
	if s == nil {
		s = &State{}
	}
	v := &view{
		controllerName: controllerName,
		classes:        map[string]ClassParameters{},
		invalid:        map[string]string{},
		gateways:       map[types.NamespacedName]*gwv1.Gateway{},
		params:         map[types.NamespacedName]ClassParameters{},
		badParams:      map[types.NamespacedName]string{},
		services:       map[types.NamespacedName]*corev1.Service{},
		managed:        map[types.NamespacedName][]*corev1.Service{},
		slices:         map[types.NamespacedName]*discoveryv1.EndpointSlice{},
		managedSlices:  map[types.NamespacedName][]*discoveryv1.EndpointSlice{},
	}
	configMaps := map[types.NamespacedName]*corev1.ConfigMap{}
	for _, cm := range s.ConfigMaps {
		if cm != nil {
			configMaps[keyOf(cm)] = cm
		}
	}
	for _, gc := range s.GatewayClasses {
		if gc == nil || string(gc.Spec.ControllerName) != controllerName {
			continue
		}
		params, err := classParameters(gc, configMaps, defaultType)
		if err != nil {
			v.invalid[gc.Name] = err.Error()
			continue
		}
		v.classes[gc.Name] = params
	}
	for _, gw := range s.Gateways {
		if gw == nil {
			continue
		}
		v.gateways[keyOf(gw)] = gw
		class, ok := v.classes[string(gw.Spec.GatewayClassName)]
		if !ok {
			continue
		}
		v.served = append(v.served, gw)
		params, err := gatewayParameters(gw, class, configMaps)
		if err != nil {
			v.badParams[keyOf(gw)] = err.Error()
			continue
		}
		v.params[keyOf(gw)] = params
	}
	sortOldestFirst(v.served)
	v.setPorts = translate.ListenerSetPorts(v.served, s.ListenerSets, s.Namespaces)
	v.indexManaged(s)
	return v
}

// indexManaged indexes the Services and EndpointSlices, and the managed ones by the
// Gateway they belong to.
func (v *view) indexManaged(s *State) {
	for _, svc := range s.Services {
		if svc == nil {
			continue
		}
		v.services[keyOf(svc)] = svc
		if gwName, ok := managedOwner(svc); ok {
			key := types.NamespacedName{Namespace: svc.Namespace, Name: gwName}
			v.managed[key] = append(v.managed[key], svc)
		}
	}
	for _, list := range v.managed {
		sortByName(list)
	}
	for _, es := range s.EndpointSlices {
		if es == nil {
			continue
		}
		v.slices[keyOf(es)] = es
		if gwName, ok := managedOwner(es); ok {
			key := types.NamespacedName{Namespace: es.Namespace, Name: gwName}
			v.managedSlices[key] = append(v.managedSlices[key], es)
		}
	}
	for _, list := range v.managedSlices {
		sortByName(list)
	}
}

// invalidParameters is the placement of a served Gateway whose own parametersRef
// cannot be used, if it is one.
func (v *view) invalidParameters(gw *gwv1.Gateway) (translate.GatewayPlacement, bool) {
	msg, bad := v.badParams[keyOf(gw)]
	if !bad {
		return translate.GatewayPlacement{}, false
	}
	return problem(gwv1.GatewayReasonInvalidParameters, gwv1.GatewayReasonInvalid,
		"The Gateway's parameters cannot be used: "+msg+"."), true
}

// keyOf is the namespaced name of an object.
func keyOf(o metav1.Object) types.NamespacedName {
	return types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}
}

// sortOldestFirst orders Gateways by creation time, then namespace and name, the
// order in which they claim addresses and ports.
func sortOldestFirst(gws []*gwv1.Gateway) {
	sort.SliceStable(gws, func(i, j int) bool {
		a, b := gws[i].CreationTimestamp, gws[j].CreationTimestamp
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		if gws[i].Namespace != gws[j].Namespace {
			return gws[i].Namespace < gws[j].Namespace
		}
		return gws[i].Name < gws[j].Name
	})
}

func sortByName[T metav1.Object](list []T) {
	sort.SliceStable(list, func(i, j int) bool {
		if list[i].GetNamespace() != list[j].GetNamespace() {
			return list[i].GetNamespace() < list[j].GetNamespace()
		}
		return list[i].GetName() < list[j].GetName()
	})
}

// problem builds a placement that serves nothing and says why.
func problem(notAccepted, programmed gwv1.GatewayConditionReason, message string) translate.GatewayPlacement {
	return translate.GatewayPlacement{Problem: &translate.PlacementProblem{
		NotAcceptedReason: notAccepted,
		ProgrammedReason:  programmed,
		Message:           message,
	}}
}
