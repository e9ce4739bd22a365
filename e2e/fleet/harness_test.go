// Package fleet_test runs the controller and gateway replicas as real processes against
// the e2e harness's real API server, inside its private network namespace.
package fleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/switchyard-dev/switchyard/e2e/cluster"
	"github.com/switchyard-dev/switchyard/e2e/proc"
	"github.com/switchyard-dev/switchyard/internal/testpki"

	"github.com/switchyard-dev/switchyard/internal/testport"
)

func TestMain(m *testing.M) { cluster.MainWithBinary(m) }

// addressPool is where the controller places Gateways in these tests; the namespace
// makes all of 10.244.0.0/16 local, so the replicas can bind any of it.
const addressPool = "10.244.200.0/24"

// env is one test's cluster plus what its controller and gateways share.
type env struct {
	t        testing.TB
	c        *cluster.Cluster
	kube     kubernetes.Interface
	gw       gwclient.Interface
	dir      string
	caFile   string
	cert     string
	key      string
	token    string
	binary   string
	snapAddr string
}

// newEnv starts a control plane with the Gateway API installed and one node, and
// writes the TLS material and token the controller and gateways use.
func newEnv(t testing.TB) *env {
	t.Helper()
	c := cluster.Start(t)
	c.InstallGatewayAPI(t)
	c.StartKubelet(t, "node-a", 1)
	e := &env{t: t, c: c, dir: t.TempDir(), binary: os.Getenv(cluster.EnvBinary),
		kube: kubernetes.NewForConfigOrDie(c.Config), gw: gwclient.NewForConfigOrDie(c.Config)}
	if e.binary == "" {
		t.Fatal("no switchyard binary: TestMain must call cluster.MainWithBinary")
	}
	e.caFile, e.cert, e.key = testpki.New(t).WriteFiles(t, e.dir)
	e.token = filepath.Join(e.dir, "gateway-token")
	writeFile(t, e.token, "fleet-token-"+fmt.Sprint(time.Now().UnixNano())+"\n")
	e.snapAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	return e
}

// controllerArgs are the flags every test controller gets; the snapshot server listens
// on addr.
func (e *env) controllerArgs(id, addr string) []string {
	return []string{"controller",
		"--kubeconfig", e.c.Kubeconfig,
		"--snapshot-addr", addr,
		"--tls-cert", e.cert, "--tls-key", e.key,
		"--gateway-token-file", e.token,
		"--address-pool", addressPool,
		"--identity", id,
		"--leader-election-namespace", "default",
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", freePort(e.t)),
		"--log-level", "debug",
	}
}

// startController runs a controller whose snapshot server is e.snapAddr.
func (e *env) startController(id string, extra ...string) *process {
	e.t.Helper()
	return start(e.t, e.binary, append(e.controllerArgs(id, e.snapAddr), extra...)...)
}

// replica is a running `switchyard gateway`.
type replica struct {
	*process
	admin string
	state string
}

// startGateway runs an edge replica connected to the controller at e.snapAddr. The
// state file (its last good snapshot) is kept per node, so a restarted replica finds
// it.
func (e *env) startGateway(node string, extra ...string) *replica {
	e.t.Helper()
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(e.t))
	state := filepath.Join(e.dir, node+".snapshot.json")
	args := append([]string{"gateway",
		"--controller", "https://" + e.snapAddr,
		"--node", node, "--role", "edge",
		"--token-file", e.token, "--ca-file", e.caFile,
		"--state-path", state,
		"--admin-addr", admin,
		"--log-level", "debug",
	}, extra...)
	return &replica{process: start(e.t, e.binary, args...), admin: "http://" + admin, state: state}
}

// ready reports whether the replica's /readyz answers 200.
func (r *replica) ready() bool {
	resp, err := http.Get(r.admin + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// configVersion is the snapshot version the replica serves, "" if none or unreachable.
func (r *replica) configVersion() string {
	resp, err := http.Get(r.admin + "/api/v1/config")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var v struct {
		Version string `json:"version"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return v.Version
}

// waitSaved waits until the replica has saved the snapshot it runs to its state file
// (saves trail applies by up to half a second).
func (r *replica) waitSaved(t testing.TB) {
	t.Helper()
	waitFor(t, 10*time.Second, "replica saved its running snapshot", func() bool {
		resp, err := http.Get(r.admin + "/api/v1/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct{ Version, PersistedVersion string }
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Version != "" && st.PersistedVersion == st.Version
	})
}

// process is a started switchyard process.
type process = proc.Process

func start(t testing.TB, binary string, args ...string) *process {
	t.Helper()
	return proc.Start(t, binary, args...)
}

// freePort returns a free loopback port (see testport for why not ":0").
func freePort(t testing.TB) int { return testport.Free(t) }

func writeFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond every 20 ms until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func create[T any](_ T, err error) error { return err }

func ptr[T any](v T) *T { return &v }

// httpGet sends one request with a Host header through addr and returns the status
// and the echo reply's pod ("" when the reply is not an echo reply).
func httpGet(client *http.Client, addr, host, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	return httpGetReply(resp)
}

// httpGetReply reads a response's status and the echo reply's pod ("" when the reply
// is not an echo reply).
func httpGetReply(resp *http.Response) (int, string, error) {
	body, _ := io.ReadAll(resp.Body)
	var reply struct {
		Pod string `json:"pod"`
	}
	_ = json.Unmarshal(body, &reply)
	return resp.StatusCode, reply.Pod, nil
}
