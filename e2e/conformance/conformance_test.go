// Package conformance runs the upstream Gateway API conformance suite, unmodified,
// against Switchyard on the e2e harness: a real API server, controller-manager and
// simulated kubelets inside a private network namespace, our controller, and an edge
// gateway replica. It is a module of its own so that the suite's dependencies stay out
// of the project's go.mod. Run it with `make conformance`.
package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/gateway-api/conformance"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/e2e/cluster"
	"github.com/switchyard-dev/switchyard/e2e/proc"
	"github.com/switchyard-dev/switchyard/internal/testpki"

	"github.com/switchyard-dev/switchyard/internal/testport"
)

func TestMain(m *testing.M) { cluster.MainWithBinary(m) }

// gatewayClass is the class the suite is told to use (-gateway-class).
const gatewayClass = "switchyard"

func TestConformance(t *testing.T) {
	c := cluster.Start(t)
	c.InstallGatewayAPI(t)
	c.StartKubelet(t, "node-a", 1)
	c.StartKubelet(t, "node-b", 2)
	_, err := gwclient.NewForConfigOrDie(c.Config).GatewayV1().GatewayClasses().Create(context.Background(),
		&gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: gatewayClass},
			Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	startFleet(t, c)
	waitClassAccepted(t, gwclient.NewForConfigOrDie(c.Config))
	// The suite reads its cluster from the kubeconfig, like kubectl.
	t.Setenv("KUBECONFIG", c.Kubeconfig)
	conformance.RunConformanceWithOptions(t, conformance.DefaultOptions(t))
}

// waitClassAccepted waits for the controller to accept the GatewayClass and publish
// its supportedFeatures, which the suite reads once at its start.
func waitClassAccepted(t *testing.T, client gwclient.Interface) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		gc, err := client.GatewayV1().GatewayClasses().Get(context.Background(), gatewayClass, metav1.GetOptions{})
		if err == nil && len(gc.Status.SupportedFeatures) > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the controller did not accept GatewayClass " + gatewayClass + " within 60 s")
}

// startFleet runs our controller (placing Gateways on addresses of a pool inside the
// namespace) and one edge replica connected to it.
func startFleet(t *testing.T, c *cluster.Cluster) {
	binary := os.Getenv(cluster.EnvBinary)
	dir := t.TempDir()
	caFile, certFile, keyFile := testpki.New(t).WriteFiles(t, dir)
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("conformance-fleet-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	snapshots := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	proc.Start(t, binary, "controller", "--kubeconfig", c.Kubeconfig, "--snapshot-addr", snapshots,
		"--tls-cert", certFile, "--tls-key", keyFile, "--gateway-token-file", token,
		"--address-pool", "10.244.200.0/24", "--leader-election-namespace", "default",
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	proc.Start(t, binary, "gateway", "--controller", "https://"+snapshots, "--node", "node-a", "--role", "edge",
		"--token-file", token, "--ca-file", caFile, "--state-path", filepath.Join(dir, "snapshot"),
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
}

// freePort returns a free loopback port (see testport for why not ":0").
func freePort(t *testing.T) int { return testport.Free(t) }
