package files

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/controller/translate"
)

// typeKey identifies a kind the way a manifest does: by apiVersion and kind.
type typeKey struct {
	APIVersion string
	Kind       string
}

func (k typeKey) String() string { return k.APIVersion + " " + k.Kind }

// kindHandler knows how to decode one kind of document.
type kindHandler struct {
	// ClusterScoped kinds keep an empty namespace; all others default to "default".
	ClusterScoped bool
	// Decode strictly decodes the document, appends the object to the Input and
	// returns the object's metadata so that the loader can default and check it.
	Decode func(doc []byte, in *translate.Input) (*metav1.ObjectMeta, error)
}

const (
	gatewayV1      = "gateway.networking.k8s.io/v1"
	gatewayV1beta1 = "gateway.networking.k8s.io/v1beta1"
	coreV1         = "v1"
	discoveryV1    = "discovery.k8s.io/v1"
	switchyardV1   = "switchyard.dev/v1alpha1"
)

// kinds is the table of every accepted kind. Supporting a new kind is one entry here.
var kinds = map[typeKey]kindHandler{
	{gatewayV1, "GatewayClass"}:        {ClusterScoped: true, Decode: into(func(in *translate.Input) *[]*gwv1.GatewayClass { return &in.GatewayClasses })},
	{gatewayV1, "Gateway"}:             {Decode: into(func(in *translate.Input) *[]*gwv1.Gateway { return &in.Gateways })},
	{gatewayV1, "HTTPRoute"}:           {Decode: into(func(in *translate.Input) *[]*gwv1.HTTPRoute { return &in.HTTPRoutes })},
	{gatewayV1, "ReferenceGrant"}:      {Decode: into(func(in *translate.Input) *[]*gwv1.ReferenceGrant { return &in.ReferenceGrants })},
	{gatewayV1beta1, "ReferenceGrant"}: {Decode: decodeReferenceGrantV1beta1},
	{coreV1, "Service"}:                {Decode: into(func(in *translate.Input) *[]*corev1.Service { return &in.Services })},
	{coreV1, "Secret"}:                 {Decode: into(func(in *translate.Input) *[]*corev1.Secret { return &in.Secrets })},
	{coreV1, "ConfigMap"}:              {Decode: into(func(in *translate.Input) *[]*corev1.ConfigMap { return &in.ConfigMaps })},
	{coreV1, "Namespace"}:              {ClusterScoped: true, Decode: into(func(in *translate.Input) *[]*corev1.Namespace { return &in.Namespaces })},
	{discoveryV1, "EndpointSlice"}:     {Decode: into(func(in *translate.Input) *[]*discoveryv1.EndpointSlice { return &in.EndpointSlices })},
	{switchyardV1, "TrafficPolicy"}: {Decode: withoutStatus(func(in *translate.Input) *[]*v1alpha1.TrafficPolicy { return &in.TrafficPolicies },
		func(p *v1alpha1.TrafficPolicy) { p.Status = gwv1.PolicyStatus{} })},
	{switchyardV1, "Rollout"}: {Decode: withoutStatus(func(in *translate.Input) *[]*v1alpha1.Rollout { return &in.Rollouts },
		func(r *v1alpha1.Rollout) { r.Status = v1alpha1.RolloutStatus{} })},
}

// object is what every decoded kind is: a struct whose pointer exposes its ObjectMeta.
type object[T any] interface {
	*T
	GetObjectMeta() metav1.Object
}

// into returns a decoder that strictly decodes a document into a T and appends it to
// the Input list that list selects.
func into[T any, P object[T]](list func(*translate.Input) *[]*T) func([]byte, *translate.Input) (*metav1.ObjectMeta, error) {
	return func(doc []byte, in *translate.Input) (*metav1.ObjectMeta, error) {
		obj := new(T)
		if err := decodeStrict(doc, obj); err != nil {
			return nil, err
		}
		meta, ok := P(obj).GetObjectMeta().(*metav1.ObjectMeta)
		if !ok {
			return nil, fmt.Errorf("internal error: %T has no ObjectMeta", obj)
		}
		l := list(in)
		*l = append(*l, obj)
		return meta, nil
	}
}

// withoutStatus returns a decoder like into's for a kind whose status is a
// subresource. An API server ignores the status of an object it creates, so the
// loader drops it too: a Rollout's status comes from the rollout driver alone.
func withoutStatus[T any, P object[T]](list func(*translate.Input) *[]*T, clear func(*T)) func([]byte, *translate.Input) (*metav1.ObjectMeta, error) {
	decode := into[T, P](list)
	return func(doc []byte, in *translate.Input) (*metav1.ObjectMeta, error) {
		meta, err := decode(doc, in)
		if err == nil {
			objects := *list(in)
			clear(objects[len(objects)-1])
		}
		return meta, err
	}
}

// decodeStrict decodes a YAML document into a typed object as an API server would:
// field names are case-sensitive, and duplicate or unknown fields are errors. Errors
// name the field by its full path (for example "spec.ports[0].portt"), which the
// standard library's decoder does not.
func decodeStrict(doc []byte, obj any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

// decodeReferenceGrantV1beta1 accepts the older ReferenceGrant version. Its schema is
// identical to v1, so it is converted and stored as v1, as an API server would.
func decodeReferenceGrantV1beta1(doc []byte, in *translate.Input) (*metav1.ObjectMeta, error) {
	old := new(gwv1beta1.ReferenceGrant)
	if err := decodeStrict(doc, old); err != nil {
		return nil, err
	}
	grant := gwv1.ReferenceGrant(*old)
	grant.APIVersion = gatewayV1
	in.ReferenceGrants = append(in.ReferenceGrants, &grant)
	return &grant.ObjectMeta, nil
}

// supportedKinds lists the accepted kinds, sorted, for error messages.
func supportedKinds() string {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k.String())
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// apiVersionsOf lists the accepted apiVersions of one kind, sorted.
func apiVersionsOf(kind string) []string {
	var versions []string
	for k := range kinds {
		if k.Kind == kind {
			versions = append(versions, k.APIVersion)
		}
	}
	sort.Strings(versions)
	return versions
}
