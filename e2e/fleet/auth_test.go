package fleet_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// serviceAccountToken creates ServiceAccount ns/name and writes a token for it, as
// the kubelet projects one into a Pod, returning the file's path.
func (e *env) serviceAccountToken(ns, name string) string {
	e.t.Helper()
	ctx := context.Background()
	must(e.t, create(e.kube.CoreV1().ServiceAccounts(ns).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}, metav1.CreateOptions{})))
	req, err := e.kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	must(e.t, err)
	path := filepath.Join(e.dir, name+".token")
	writeFile(e.t, path, req.Status.Token)
	return path
}

// TestServiceAccountAuthentication has the controller check gateway tokens with
// TokenReviews: a replica with the allowed ServiceAccount's token is served, one with
// another ServiceAccount's token is refused and stays unready.
func TestServiceAccountAuthentication(t *testing.T) {
	e := newEnv(t)
	e.createClass()
	e.createApp("default", "web", 1)
	allowed := e.serviceAccountToken("default", "switchyard-gateway")
	other := e.serviceAccountToken("default", "someone-else")
	e.startController("controller-a", "--gateway-service-accounts", "default/switchyard-gateway")
	e.createGateway("default", "gw", "", 80)
	addr := e.gatewayAddress("default", "gw") + ":80"
	e.createRoute(route("default", "web", "default", "gw", "/", "web"))

	e.token = other
	refused := e.startGateway("node-b")
	e.token = allowed
	served := e.startGateway("node-a")
	waitFor(t, 30*time.Second, "replica with the allowed token ready", served.ready)
	waitStatus(t, addr, "", "/", http.StatusOK)
	time.Sleep(time.Second)
	if refused.ready() {
		t.Error("a replica presenting another ServiceAccount's token was served")
	}
}
