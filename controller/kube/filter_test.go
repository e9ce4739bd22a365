package kube

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"

	"github.com/switchyard-dev/switchyard/controller/placement"
)

func gatewayWith(mutate func(*gwv1.Gateway)) *gwv1.Gateway {
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "default", Generation: 3,
		ResourceVersion: "10", Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "x"}}}
	if mutate != nil {
		mutate(gw)
	}
	return gw
}

func TestSpecChangedIgnoresStatusOnlyUpdates(t *testing.T) {
	now := metav1.NewTime(time.Unix(1700000000, 0))
	cases := []struct {
		name   string
		mutate func(*gwv1.Gateway)
		want   bool
	}{
		{"status only", func(g *gwv1.Gateway) {
			g.ResourceVersion = "11"
			g.Status.Addresses = []gwv1.GatewayStatusAddress{{Value: "10.0.0.1"}}
		}, false},
		{"resync", func(g *gwv1.Gateway) {}, false},
		{"generation", func(g *gwv1.Gateway) { g.Generation = 4 }, true},
		{"label changed", func(g *gwv1.Gateway) { g.Labels = map[string]string{"team": "b"} }, true},
		{"label removed", func(g *gwv1.Gateway) { g.Labels = nil }, true},
		{"annotation added", func(g *gwv1.Gateway) { g.Annotations["other"] = "y" }, true},
		{"deletion started", func(g *gwv1.Gateway) { g.DeletionTimestamp = &now }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := specChanged(gatewayWith(nil), gatewayWith(tc.mutate)); got != tc.want {
				t.Errorf("specChanged = %v, want %v", got, tc.want)
			}
		})
	}
	if !specChanged("not an object", gatewayWith(nil)) {
		t.Error("an update of unknown type must count as a change")
	}
}

func TestVersionFilters(t *testing.T) {
	svc := func(rv string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", ResourceVersion: rv}}
	}
	if versionChanged(svc("1"), svc("1")) {
		t.Error("an update with the same resourceVersion (a relist) counted as a change")
	}
	if !versionChanged(svc("1"), svc("2")) {
		t.Error("a new resourceVersion did not count as a change")
	}
	slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "1"}}
	if !alwaysChanged(slice, slice) {
		t.Error("EndpointSlice updates must always count")
	}
	secret := func(typ corev1.SecretType, rv string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv}, Type: typ}
	}
	if !tlsSecretChanged(secret(corev1.SecretTypeTLS, "1"), secret(corev1.SecretTypeTLS, "2")) {
		t.Error("a new version of a TLS Secret did not count")
	}
	if tlsSecretChanged(secret(corev1.SecretTypeTLS, "1"), secret(corev1.SecretTypeTLS, "1")) {
		t.Error("a relisted TLS Secret counted as a change")
	}
	if tlsSecretChanged(secret(corev1.SecretTypeOpaque, "1"), secret(corev1.SecretTypeOpaque, "2")) {
		t.Error("an update of an Opaque Secret counted as a change")
	}
}

func TestStripSecretKeepsOnlyTLSData(t *testing.T) {
	mk := func(typ corev1.SecretType) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns",
				Annotations:   map[string]string{lastAppliedAnnotation: `{"data":{"tls.key":"..."}}`, "keep": "me"},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
			Type:       typ,
			Data:       map[string][]byte{"tls.crt": []byte("crt"), "tls.key": []byte("key")},
			StringData: map[string]string{"x": "y"},
		}
	}
	got, err := stripSecret(mk(corev1.SecretTypeOpaque))
	if err != nil {
		t.Fatal(err)
	}
	opaque := got.(*corev1.Secret)
	if opaque.Data != nil || opaque.StringData != nil {
		t.Errorf("an Opaque Secret kept its data: %v %v", opaque.Data, opaque.StringData)
	}
	if opaque.Type != corev1.SecretTypeOpaque || opaque.Name != "s" {
		t.Errorf("an Opaque Secret lost its type or name: %+v", opaque)
	}
	got, _ = stripSecret(mk(corev1.SecretTypeTLS))
	tls := got.(*corev1.Secret)
	if string(tls.Data["tls.crt"]) != "crt" || string(tls.Data["tls.key"]) != "key" {
		t.Errorf("a TLS Secret lost its certificate or key: %v", tls.Data)
	}
	for _, s := range []*corev1.Secret{opaque, tls} {
		if s.ManagedFields != nil {
			t.Errorf("Secret of type %s kept its managedFields", s.Type)
		}
		if _, ok := s.Annotations[lastAppliedAnnotation]; ok || s.Annotations["keep"] != "me" {
			t.Errorf("Secret of type %s annotations %v, want only the last-applied copy removed", s.Type, s.Annotations)
		}
	}
	// Tombstones and other values pass through unchanged.
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/s"}
	if out, err := stripSecret(tomb); err != nil || out != tomb {
		t.Errorf("stripSecret(tombstone) = %v, %v", out, err)
	}
}

func TestStripManagedFields(t *testing.T) {
	gw := gatewayWith(func(g *gwv1.Gateway) {
		g.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	})
	out, err := stripManagedFields(gw)
	if err != nil || out.(*gwv1.Gateway).ManagedFields != nil {
		t.Errorf("managedFields not dropped: %v", err)
	}
	if out.(*gwv1.Gateway).Labels["team"] != "a" {
		t.Error("labels were dropped")
	}
	if out, err := stripManagedFields(42); err != nil || out != 42 {
		t.Errorf("a value without metadata: %v, %v", out, err)
	}
}

func TestObjectOfUnwrapsTombstones(t *testing.T) {
	gw := gatewayWith(nil)
	if objectOf(cache.DeletedFinalStateUnknown{Key: "default/gw", Obj: gw}) != gw {
		t.Error("tombstone not unwrapped")
	}
	if objectOf(gw) != gw {
		t.Error("plain object changed")
	}
}

func TestReferencesConfigMap(t *testing.T) {
	ns := gwv1.Namespace("infra")
	classes := []*gwv1.GatewayClass{
		{Spec: gwv1.GatewayClassSpec{}},
		{Spec: gwv1.GatewayClassSpec{ParametersRef: &gwv1.ParametersReference{Kind: "ConfigMap", Name: "params", Namespace: &ns}}},
		{Spec: gwv1.GatewayClassSpec{ParametersRef: &gwv1.ParametersReference{Group: "example.com", Kind: "ConfigMap", Name: "other", Namespace: &ns}}},
		{Spec: gwv1.GatewayClassSpec{ParametersRef: &gwv1.ParametersReference{Kind: "ConfigMap", Name: "nons"}}},
	}
	gateways := []*gwv1.Gateway{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "plain"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "own"}, Spec: gwv1.GatewaySpec{Infrastructure: &gwv1.GatewayInfrastructure{
			ParametersRef: &gwv1.LocalParametersReference{Kind: "ConfigMap", Name: "gw-params"}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "crd"}, Spec: gwv1.GatewaySpec{Infrastructure: &gwv1.GatewayInfrastructure{
			ParametersRef: &gwv1.LocalParametersReference{Group: "example.com", Kind: "ConfigMap", Name: "crd-params"}}}},
	}
	cases := []struct {
		namespace, name string
		want            bool
	}{
		{"infra", "params", true},
		{"default", "params", false},
		{"infra", "other", false},
		{"", "nons", false},
		{"apps", "gw-params", true},
		{"infra", "gw-params", false},
		{"apps", "crd-params", false},
	}
	for _, tc := range cases {
		if got := referencesConfigMap(classes, gateways, tc.namespace, tc.name); got != tc.want {
			t.Errorf("referencesConfigMap(%s/%s) = %v, want %v", tc.namespace, tc.name, got, tc.want)
		}
	}
}

func TestPooledObject(t *testing.T) {
	managed := map[string]string{placement.LabelManagedBy: placement.ManagedByValue}
	sliceLabels := map[string]string{placement.LabelManagedBy: placement.ManagedByValue, discoveryv1.LabelManagedBy: placement.EndpointSliceManagedBy}
	cases := []struct {
		name string
		obj  any
		want bool
	}{
		{"headless managed Service", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Labels: managed}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}}, true},
		{"managed Service of Service mode", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Labels: managed}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1"}}, false},
		{"someone's headless Service", &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}}, false},
		{"managed EndpointSlice", &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Labels: sliceLabels}}, true},
		{"EndpointSlice of the cluster", &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}}}, false},
		{"Gateway", &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Labels: managed}}, false},
	}
	for _, tc := range cases {
		if got := pooledObject(tc.obj); got != tc.want {
			t.Errorf("%s: pooledObject = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// ConfigMaps matter when they hold a CA bundle, in any of a change's states (so that
// removing the bundle is seen too), or when a GatewayClass takes parameters from them.
func TestConfigMapChangesThatMatter(t *testing.T) {
	ns := gwv1.Namespace("system")
	gwClient := gatewayfake.NewSimpleClientset(&gwv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: "c"},
		Spec:       gwv1.GatewayClassSpec{ParametersRef: &gwv1.ParametersReference{Kind: "ConfigMap", Name: "params", Namespace: &ns}},
	})
	s, err := NewSource(kubefake.NewClientset(), gwClient, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); s.Shutdown() }()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cm := func(ns, name string, data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
	}
	ca := cm("default", "ca", map[string]string{"ca.crt": "pem"})
	plain := cm("default", "leader-lock", map[string]string{"holder": "x"})
	params := cm("system", "params", map[string]string{"serviceType": "ClusterIP"})
	cases := []struct {
		name   string
		kind   Kind
		states []any
		want   bool
	}{
		{"CA bundle", KindConfigMap, []any{ca}, true},
		{"CA bundle removed", KindConfigMap, []any{ca, plain}, true},
		{"class parameters", KindConfigMap, []any{params}, true},
		{"other ConfigMap", KindConfigMap, []any{plain, plain}, false},
		{"other kinds always", KindSecret, []any{plain}, true},
	}
	for _, c := range cases {
		if got := s.matters(c.kind, c.states...); got != c.want {
			t.Errorf("%s: matters = %v, want %v", c.name, got, c.want)
		}
	}
}
