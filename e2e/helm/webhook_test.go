package helm_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
)

// webhookEndpoint is where the test's controller serves the chart's webhook: an
// address of the harness's namespace that the controller Service's EndpointSlice
// names, as a controller Pod's address would be.
const webhookEndpoint = "10.244.77.7"

// writeWebhookCertificate writes the tls.crt and tls.key of the webhook Secret the
// chart generated into a new folder under dir, as the controller Pod mounts them, and
// returns the folder.
func writeWebhookCertificate(t testing.TB, objs []*unstructured.Unstructured, name, dir string) string {
	t.Helper()
	certDir := filepath.Join(dir, "webhook")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "Secret" || o.GetName() != name {
			continue
		}
		for _, key := range []string{"tls.crt", "tls.key"} {
			v, _, _ := unstructured.NestedString(o.Object, "data", key)
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil || len(b) == 0 {
				t.Fatalf("Secret %s key %s: %v", name, key, err)
			}
			if err := os.WriteFile(filepath.Join(certDir, key), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return certDir
	}
	t.Fatalf("the chart rendered no Secret %s", name)
	return ""
}

// routeWebhookService gives the controller Service an EndpointSlice for its webhook
// port at webhookEndpoint:port (the harness's API server resolves Services to
// endpoints), as the EndpointSlice controller would for a ready controller Pod.
func routeWebhookService(t testing.TB, kube kubernetes.Interface, ns, service string, port int32) {
	t.Helper()
	name, ready := "webhook", true
	_, err := kube.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: service + "-test", Labels: map[string]string{
			discoveryv1.LabelServiceName: service, discoveryv1.LabelManagedBy: "helm-test"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{webhookEndpoint}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// checkWebhookInjects labels a namespace in and creates Pods there until one comes
// back with the proxy variables: the API server reached the controller through the
// chart's webhook configuration (Service, port, path) and trusted its certificate
// through the chart's caBundle. A Pod of another namespace stays unchanged.
func checkWebhookInjects(t testing.TB, kube kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"switchyard.dev/east-west": "enabled"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "legacy"}},
	} {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pod := func(ns string) *corev1.Pod {
		var created *corev1.Pod
		waitFor(t, 30*time.Second, "a Pod created in namespace "+ns, func() bool {
			p, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "client-"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "client", Image: "client"}}}}, metav1.CreateOptions{})
			created = p
			return err == nil // refused until the namespace's default ServiceAccount exists
		})
		return created
	}
	waitFor(t, 30*time.Second, "the chart's webhook changes a Pod of a labelled namespace", func() bool {
		return proxyOf(pod("shop")) == "http://$(HOST_IP):15001"
	})
	if p := pod("legacy"); proxyOf(p) != "" || p.Annotations["switchyard.dev/east-west"] != "" {
		t.Errorf("a Pod of a namespace without the label was changed: %+v", p)
	}
}

// proxyOf is the HTTP_PROXY value of a Pod's first container, "" without one.
func proxyOf(p *corev1.Pod) string {
	for _, v := range p.Spec.Containers[0].Env {
		if v.Name == "HTTP_PROXY" {
			return v.Value
		}
	}
	return ""
}
