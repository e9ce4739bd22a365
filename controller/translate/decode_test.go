package translate

import (
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// documentSeparator splits a multi-document YAML stream.
var documentSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// Comment lines that set translation options for a test case.
var (
	standaloneOption     = regexp.MustCompile(`(?m)^# standalone: true$`)
	controllerNameOption = regexp.MustCompile(`(?m)^# controllerName: (\S+)$`)
)

// decodeManifests reads a multi-document YAML stream of Kubernetes manifests into an
// Input. Every document that cannot be decoded is reported; the others are kept, so a
// fuzzer can still translate what survived.
func decodeManifests(data []byte) (*Input, []error) {
	in := &Input{}
	var errs []error
	for i, doc := range documentSeparator.Split(string(data), -1) {
		if isBlankDocument(doc) {
			continue
		}
		if err := decodeDocument(in, []byte(doc)); err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i, err))
		}
	}
	// Options come from comment lines, so that the files stay plain manifests.
	if standaloneOption.Match(data) {
		in.Options.Standalone = true
	}
	if m := controllerNameOption.FindSubmatch(data); m != nil {
		in.Options.ControllerName = string(m[1])
	}
	return in, errs
}

func isBlankDocument(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

func decodeDocument(in *Input, doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	switch tm.APIVersion + "/" + tm.Kind {
	case "gateway.networking.k8s.io/v1/GatewayClass":
		return decodeInto(doc, &in.GatewayClasses)
	case "gateway.networking.k8s.io/v1/Gateway":
		return decodeInto(doc, &in.Gateways)
	case "gateway.networking.k8s.io/v1/HTTPRoute":
		return decodeInto(doc, &in.HTTPRoutes)
	case "gateway.networking.k8s.io/v1/ListenerSet":
		return decodeInto(doc, &in.ListenerSets)
	case "gateway.networking.k8s.io/v1/ReferenceGrant", "gateway.networking.k8s.io/v1beta1/ReferenceGrant":
		return decodeInto(doc, &in.ReferenceGrants)
	case "v1/Service":
		return decodeInto(doc, &in.Services)
	case "discovery.k8s.io/v1/EndpointSlice":
		return decodeInto(doc, &in.EndpointSlices)
	case "v1/Secret":
		return decodeInto(doc, &in.Secrets)
	case "v1/Namespace":
		return decodeInto(doc, &in.Namespaces)
	case "v1/ConfigMap":
		return decodeInto(doc, &in.ConfigMaps)
	case "gateway.networking.k8s.io/v1/BackendTLSPolicy":
		return decodeInto(doc, &in.BackendTLSPolicies)
	case "switchyard.dev/v1alpha1/TrafficPolicy":
		return decodeInto(doc, &in.TrafficPolicies)
	case "switchyard.dev/v1alpha1/Rollout":
		return decodeInto(doc, &in.Rollouts)
	case "test/Options":
		return decodeOptions(in, doc)
	case "test/Nil":
		// A "Nil" document adds a nil entry to every list, to prove that translation
		// copes with them.
		in.GatewayClasses = append(in.GatewayClasses, nil)
		in.Gateways = append(in.Gateways, nil)
		in.HTTPRoutes = append(in.HTTPRoutes, nil)
		in.ListenerSets = append(in.ListenerSets, nil)
		in.ReferenceGrants = append(in.ReferenceGrants, nil)
		in.Services = append(in.Services, nil)
		in.EndpointSlices = append(in.EndpointSlices, nil)
		in.Secrets = append(in.Secrets, nil)
		in.Namespaces = append(in.Namespaces, nil)
		in.ConfigMaps = append(in.ConfigMaps, nil)
		in.BackendTLSPolicies = append(in.BackendTLSPolicies, nil)
		in.TrafficPolicies = append(in.TrafficPolicies, nil)
		in.Rollouts = append(in.Rollouts, nil)
		return nil
	default:
		return fmt.Errorf("unknown kind %s %s", tm.APIVersion, tm.Kind)
	}
}

// optionsDocument sets the placement and mesh options of a test case. Its placements are keyed
// by "<namespace>/<name>" of the Gateway:
//
//	apiVersion: test
//	kind: Options
//	placements:
//	  default/gw: {bindAddress: 10.244.255.1}
//	invalidClassParameters:
//	  broken: ConfigMap default/params does not exist.
//	mesh: true
//	clusterDomain: example.internal
type optionsDocument struct {
	metav1.TypeMeta        `json:",inline"`
	Placements             map[string]GatewayPlacement `json:"placements,omitempty"`
	InvalidClassParameters map[string]string           `json:"invalidClassParameters,omitempty"`
	Mesh                   bool                        `json:"mesh,omitempty"`
	ClusterDomain          string                      `json:"clusterDomain,omitempty"`
}

func decodeOptions(in *Input, doc []byte) error {
	var o optionsDocument
	if err := yaml.UnmarshalStrict(doc, &o); err != nil {
		return err
	}
	if o.Placements != nil {
		in.Options.Placements = map[types.NamespacedName]GatewayPlacement{}
	}
	for key, p := range o.Placements {
		ns, name, ok := strings.Cut(key, "/")
		if !ok || ns == "" || name == "" {
			return fmt.Errorf("placement key %q is not <namespace>/<name>", key)
		}
		in.Options.Placements[types.NamespacedName{Namespace: ns, Name: name}] = p
	}
	if o.InvalidClassParameters != nil {
		in.Options.InvalidClassParameters = o.InvalidClassParameters
	}
	in.Options.Mesh = in.Options.Mesh || o.Mesh
	if o.ClusterDomain != "" {
		in.Options.ClusterDomain = o.ClusterDomain
	}
	return nil
}

// decodeInto strictly decodes one document and appends it to the list.
func decodeInto[T any, L ~[]*T](doc []byte, list *L) error {
	obj := new(T)
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return err
	}
	*list = append(*list, obj)
	return nil
}

// Compile-time proof that every list the decoder fills has the expected type.
var (
	_ []*gwv1.GatewayClass         = (&Input{}).GatewayClasses
	_ []*discoveryv1.EndpointSlice = (&Input{}).EndpointSlices
	_ []*corev1.Namespace          = (&Input{}).Namespaces
)
