package helm_test

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/switchyard-dev/switchyard/e2e/cluster"
)

// TestHelmInstallUpgradeUninstall runs helm itself against the real API server, on a
// cluster without the Gateway API: helm install with gatewayAPI.installCRDs on
// (helm checks every kind before creating anything, so the GatewayClass must wait and
// the notes must say so), helm upgrade (which creates it and keeps the generated
// certificates, the webhook configuration's CA with them), and helm uninstall (which
// keeps the Gateway API CRDs).
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	c := cluster.Start(t)
	a := newApplier(t, c.Config)
	gw := gwclient.NewForConfigOrDie(c.Config)
	ctx := context.Background()
	const ns = "switchyard-system"
	run := func(args ...string) string {
		t.Helper()
		out, err := helmWithCluster(t, c.Kubeconfig, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return out
	}

	notes := run("install", "switchyard", chartDir(), "--namespace", ns, "--create-namespace",
		"--set", "gatewayAPI.installCRDs=true")
	if !strings.Contains(notes, `The GatewayClass "switchyard" is not created yet`) || !strings.Contains(notes, "--reuse-values") {
		t.Errorf("the first install's notes do not say how to create the GatewayClass:\n%s", notes)
	}
	if _, err := gw.GatewayV1().GatewayClasses().Get(ctx, "switchyard", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("GatewayClass after the first install: %v, want not found", err)
	}
	secret, err := a.kube.CoreV1().Secrets(ns).Get(ctx, "switchyard-controller-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the generated certificate Secret: %v", err)
	}
	webhookSecret, err := a.kube.CoreV1().Secrets(ns).Get(ctx, "switchyard-webhook-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the generated webhook certificate Secret: %v", err)
	}
	if !strings.Contains(notes, "kubectl label namespace NAMESPACE switchyard.dev/east-west=enabled") {
		t.Errorf("the notes do not say how to opt a namespace in:\n%s", notes)
	}

	notes = run("upgrade", "switchyard", chartDir(), "--namespace", ns, "--reuse-values")
	if strings.Contains(notes, "not created yet") {
		t.Errorf("the upgrade's notes still say the GatewayClass is missing:\n%s", notes)
	}
	class, err := gw.GatewayV1().GatewayClasses().Get(ctx, "switchyard", metav1.GetOptions{})
	if err != nil || class.Spec.ControllerName != "switchyard.dev/gateway-controller" {
		t.Errorf("GatewayClass after the upgrade: %v %+v", err, class)
	}
	after, err := a.kube.CoreV1().Secrets(ns).Get(ctx, "switchyard-controller-tls", metav1.GetOptions{})
	if err != nil || !reflect.DeepEqual(after.Data, secret.Data) {
		t.Errorf("the upgrade replaced the snapshot server's certificate (err %v): gateways would stop trusting it", err)
	}
	after, err = a.kube.CoreV1().Secrets(ns).Get(ctx, "switchyard-webhook-tls", metav1.GetOptions{})
	if err != nil || !reflect.DeepEqual(after.Data, webhookSecret.Data) {
		t.Errorf("the upgrade replaced the webhook's certificate (err %v)", err)
	}
	hook, err := a.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "switchyard-east-west", metav1.GetOptions{})
	if err != nil || len(hook.Webhooks) != 1 || !bytes.Equal(hook.Webhooks[0].ClientConfig.CABundle, webhookSecret.Data["ca.crt"]) {
		t.Errorf("after the upgrade the webhook configuration does not trust the webhook's CA (err %v)", err)
	}
	if !strings.Contains(notes, "rollout status deployment/switchyard-controller") {
		t.Errorf("the notes do not say how to wait for the controller:\n%s", notes)
	}

	run("uninstall", "switchyard", "--namespace", ns)
	if _, err := a.kube.AppsV1().Deployments(ns).Get(ctx, "switchyard-controller", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the controller Deployment after uninstall: %v, want not found", err)
	}
	if _, err := a.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "switchyard-east-west", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the webhook configuration after uninstall: %v, want not found", err)
	}
	for _, name := range []string{"gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io"} {
		if _, err := a.dynamic.Resource(crdResource).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("CRD %s after uninstall: %v, want kept", name, err)
		}
	}
}
