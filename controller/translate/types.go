// Package translate turns Kubernetes objects (Gateway API kinds, Services,
// EndpointSlices, Secrets, ConfigMaps, Namespaces) into a data-plane snapshot plus the status each
// object should carry. It is a pure function: no clients, no clocks, no globals. The
// Kubernetes controller and the standalone file source both call it unchanged.
package translate

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

// ControllerName is the GatewayClass controllerName that Switchyard serves.
const ControllerName = "switchyard.dev/gateway-controller"

// Input is everything translation reads. Slices may be in any order; translation
// sorts what it needs so that equal inputs give equal outputs.
type Input struct {
	GatewayClasses  []*gwv1.GatewayClass
	Gateways        []*gwv1.Gateway
	HTTPRoutes      []*gwv1.HTTPRoute
	ListenerSets    []*gwv1.ListenerSet
	ReferenceGrants []*gwv1.ReferenceGrant
	Services        []*corev1.Service
	EndpointSlices  []*discoveryv1.EndpointSlice
	Secrets         []*corev1.Secret
	Namespaces      []*corev1.Namespace
	// ConfigMaps hold CA certificates ("ca.crt") that BackendTLSPolicies and
	// Gateways may name; others are ignored.
	ConfigMaps         []*corev1.ConfigMap
	BackendTLSPolicies []*gwv1.BackendTLSPolicy
	// TrafficPolicies attach resilience settings to Gateways, HTTPRoutes (or one
	// rule, by sectionName) and Services.
	TrafficPolicies []*v1alpha1.TrafficPolicy
	// Rollouts shift traffic of HTTPRoute rules from a stable to a canary backend.
	// Translation reads where each stands from its status (phase and canaryWeight),
	// which the rollout driver keeps; an empty status is the first step.
	Rollouts []*v1alpha1.Rollout

	Options Options
}

// Options tune translation to where it runs.
type Options struct {
	// ControllerName is the GatewayClass controllerName to serve; empty means
	// ControllerName.
	ControllerName string
	// Standalone is set by the file source. Then a Gateway whose gatewayClassName
	// names no GatewayClass object is served as if its class were Switchyard's, and
	// EndpointSlice addresses in 127.0.0.0/8 and ::1 are accepted (a real API server
	// refuses them).
	Standalone bool
	// Now stamps lastTransitionTime on conditions. Translation never reads the clock.
	Now time.Time
	// Placements, when not nil, say where the shared edge replicas serve each Gateway
	// (see GatewayPlacement), and the Gateways' spec.addresses are left to the
	// placement step. A Gateway without an entry is not served yet: it is reported
	// Programmed=False with reason AddressNotAssigned. When nil, a Gateway binds the
	// first IP address of its spec.addresses (or all interfaces) on its listeners' own
	// ports.
	Placements map[types.NamespacedName]GatewayPlacement
	// InvalidClassParameters holds, by GatewayClass name, why the class's
	// parametersRef cannot be used. Such a class is reported Accepted=False with reason
	// InvalidParameters, and its Gateways are reported Accepted=False with the same
	// reason and are not served.
	InvalidClassParameters map[string]string
	// Mesh turns on east-west translation (Snapshot.Mesh, for node replicas): every
	// Service but ExternalName ones becomes a destination, and HTTPRoutes whose
	// parentRef is a Service (group "" or "core", kind Service) attach to its ports
	// and get a status entry for that parentRef. When false, such parentRefs are
	// ignored as those of another controller, and Snapshot.Mesh is nil.
	Mesh bool
	// ClusterDomain is the cluster's DNS suffix, copied to Mesh.ClusterDomain; empty
	// means "cluster.local".
	ClusterDomain string
}

// Output is the result of one translation.
type Output struct {
	// Snapshot is the data-plane configuration. Its Version is a hash of its content.
	Snapshot *config.Snapshot
	// GatewayClasses holds the status of each GatewayClass this controller owns, by name.
	GatewayClasses map[string]gwv1.GatewayClassStatus
	// Gateways holds the status of each Gateway of an owned class.
	Gateways map[types.NamespacedName]gwv1.GatewayStatus
	// HTTPRoutes holds, for each HTTPRoute that references an owned Gateway (or,
	// with Options.Mesh, a Service), the status entries of those parentRefs (entries
	// of other controllers are not included; the status writer merges).
	HTTPRoutes map[types.NamespacedName]gwv1.HTTPRouteStatus
	// BackendTLSPolicies holds the status of each BackendTLSPolicy that an owned
	// Gateway uses: an ancestor entry per such Gateway (entries of other controllers
	// are not included; the status writer merges).
	BackendTLSPolicies map[types.NamespacedName]gwv1.PolicyStatus
	// ListenerSets holds the status of each ListenerSet whose parentRef names an
	// owned Gateway.
	ListenerSets map[types.NamespacedName]gwv1.ListenerSetStatus
	// TrafficPolicies holds the status of every TrafficPolicy: an ancestor entry per
	// owned Gateway (and, with Options.Mesh, per Service serving mesh routes) its
	// targets reach, or, for a policy whose targets reach none,
	// one entry saying why (entries of other controllers are not included; the
	// status writer merges).
	TrafficPolicies map[types.NamespacedName]gwv1.PolicyStatus
	// Rollouts holds, for every Rollout, its Accepted condition and the backends it
	// shifts between; the rollout driver merges it into the Rollout's status.
	Rollouts map[types.NamespacedName]RolloutResult
}

// RolloutResult is what translation found of one Rollout.
type RolloutResult struct {
	// Accepted is the Rollout's Accepted condition: True when its target and both
	// backends resolve, else False with reason TargetNotFound, BackendNotFound or
	// Invalid.
	Accepted metav1.Condition
	// StableBackend and CanaryBackend are the IR names of the backends
	// ("<namespace>/<service>:<port>"), for the analysis of the canary's traffic.
	StableBackend string
	CanaryBackend string
	// CanaryBackends are the names of every backend of the snapshot that stands for
	// the canary, sorted: CanaryBackend and the variants of it that present a
	// Gateway's client certificate. The analysis adds up their outcomes.
	CanaryBackends []string
	// Rules counts the HTTPRoute rules the Rollout shifts.
	Rules int
}
