package kube

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/controller/translate"
)

// TestTranslateDoesNotModifyItsInput backs the claim that Input may hand the caches'
// own objects to the translator: on every golden input of the translator, the input
// objects are unchanged after translation, with the mesh off and on.
func TestTranslateDoesNotModifyItsInput(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "translate", "testdata", "*.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 10 {
		t.Fatalf("found %d golden inputs, want the translator's test corpus", len(paths))
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".in.yaml"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			in, err := decodeInput(data)
			if err != nil {
				t.Fatal(err)
			}
			in.Options.Now = time.Unix(1700000000, 0)
			before := copyInput(in)
			// The controller translates with the east-west mesh on by default.
			for _, mesh := range []bool{false, true} {
				in.Options.Mesh = mesh
				translate.Translate(in)
			}
			// Options are passed by value (and hold a time.Time, which the semantic
			// comparison cannot walk), so only the object lists are compared.
			want, got := objectLists(before), objectLists(in)
			for i := range want {
				if !equality.Semantic.DeepEqual(want[i], got[i]) {
					t.Errorf("translation modified its input %T", got[i])
				}
			}
		})
	}
}

func copyInput(in *translate.Input) *translate.Input {
	out := &translate.Input{Options: in.Options}
	out.GatewayClasses = copyAll(in.GatewayClasses, (*gwv1.GatewayClass).DeepCopy)
	out.Gateways = copyAll(in.Gateways, (*gwv1.Gateway).DeepCopy)
	out.HTTPRoutes = copyAll(in.HTTPRoutes, (*gwv1.HTTPRoute).DeepCopy)
	out.ListenerSets = copyAll(in.ListenerSets, (*gwv1.ListenerSet).DeepCopy)
	out.ReferenceGrants = copyAll(in.ReferenceGrants, (*gwv1.ReferenceGrant).DeepCopy)
	out.Services = copyAll(in.Services, (*corev1.Service).DeepCopy)
	out.EndpointSlices = copyAll(in.EndpointSlices, (*discoveryv1.EndpointSlice).DeepCopy)
	out.Secrets = copyAll(in.Secrets, (*corev1.Secret).DeepCopy)
	out.Namespaces = copyAll(in.Namespaces, (*corev1.Namespace).DeepCopy)
	out.ConfigMaps = copyAll(in.ConfigMaps, (*corev1.ConfigMap).DeepCopy)
	out.BackendTLSPolicies = copyAll(in.BackendTLSPolicies, (*gwv1.BackendTLSPolicy).DeepCopy)
	out.TrafficPolicies = copyAll(in.TrafficPolicies, (*v1alpha1.TrafficPolicy).DeepCopy)
	out.Rollouts = copyAll(in.Rollouts, (*v1alpha1.Rollout).DeepCopy)
	return out
}

func objectLists(in *translate.Input) []any {
	return []any{in.GatewayClasses, in.Gateways, in.HTTPRoutes, in.ListenerSets, in.ReferenceGrants,
		in.Services, in.EndpointSlices, in.Secrets, in.Namespaces, in.ConfigMaps, in.BackendTLSPolicies,
		in.TrafficPolicies, in.Rollouts}
}

func copyAll[T any](items []*T, deepCopy func(*T) *T) []*T {
	out := make([]*T, len(items))
	for i, item := range items {
		if item != nil {
			out[i] = deepCopy(item)
		}
	}
	return out
}

var documentSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeInput reads the translator's golden input format: Kubernetes manifests, plus
// "test/Options" documents with placements and "test/Nil" documents.
func decodeInput(data []byte) (*translate.Input, error) {
	in := &translate.Input{}
	for i, doc := range documentSeparator.Split(string(data), -1) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if err := decodeDocument(in, tm.Kind, []byte(doc)); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
	}
	return in, nil
}

func decodeDocument(in *translate.Input, kind string, doc []byte) error {
	switch kind {
	case "":
		return nil
	case "GatewayClass":
		return appendDecoded(doc, &in.GatewayClasses)
	case "Gateway":
		return appendDecoded(doc, &in.Gateways)
	case "HTTPRoute":
		return appendDecoded(doc, &in.HTTPRoutes)
	case "ListenerSet":
		return appendDecoded(doc, &in.ListenerSets)
	case "ReferenceGrant":
		return appendDecoded(doc, &in.ReferenceGrants)
	case "Service":
		return appendDecoded(doc, &in.Services)
	case "EndpointSlice":
		return appendDecoded(doc, &in.EndpointSlices)
	case "Secret":
		return appendDecoded(doc, &in.Secrets)
	case "Namespace":
		return appendDecoded(doc, &in.Namespaces)
	case "ConfigMap":
		return appendDecoded(doc, &in.ConfigMaps)
	case "BackendTLSPolicy":
		return appendDecoded(doc, &in.BackendTLSPolicies)
	case "TrafficPolicy":
		return appendDecoded(doc, &in.TrafficPolicies)
	case "Rollout":
		return appendDecoded(doc, &in.Rollouts)
	case "Nil":
		return nil
	case "Options":
		return decodeOptions(in, doc)
	}
	return fmt.Errorf("unknown kind %q", kind)
}

func decodeOptions(in *translate.Input, doc []byte) error {
	var opts struct {
		Placements             map[string]translate.GatewayPlacement `json:"placements"`
		InvalidClassParameters map[string]string                     `json:"invalidClassParameters"`
	}
	if err := yaml.Unmarshal(doc, &opts); err != nil {
		return err
	}
	if opts.Placements != nil {
		in.Options.Placements = map[types.NamespacedName]translate.GatewayPlacement{}
	}
	for key, p := range opts.Placements {
		ns, name, _ := strings.Cut(key, "/")
		in.Options.Placements[types.NamespacedName{Namespace: ns, Name: name}] = p
	}
	in.Options.InvalidClassParameters = opts.InvalidClassParameters
	return nil
}

func appendDecoded[T any](doc []byte, list *[]*T) error {
	obj := new(T)
	if err := yaml.Unmarshal(doc, obj); err != nil {
		return err
	}
	*list = append(*list, obj)
	return nil
}
