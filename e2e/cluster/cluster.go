package cluster

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/switchyard-dev/switchyard/internal/testport"
)

// Cluster is a running etcd and kube-apiserver.
type Cluster struct {
	// Config reaches the API server as a cluster administrator.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file with the same credentials, for
	// processes the tests start.
	Kubeconfig string
	dir        string
}

// Start runs etcd and kube-apiserver for the test and stops them when it ends. It must
// run inside the namespace that Main sets up.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin := os.Getenv(envControlPlane)
	if os.Getenv(envInside) == "" || bin == "" {
		t.Fatal("cluster.Start needs cluster.Main in TestMain")
	}
	dir := t.TempDir()
	etcdURL := startEtcd(t, bin, dir)
	token := randomHex(t)
	writeFileT(t, filepath.Join(dir, "tokens.csv"), token+`,admin,admin-uid,"system:masters"`+"\n")
	writeServiceAccountKey(t, filepath.Join(dir, "sa.key"))
	port := freePort(t)
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--advertise-address=" + AdvertiseAddress,
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(dir, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--enable-aggregator-routing=true",
	}
	run(t, filepath.Join(bin, "kube-apiserver"), filepath.Join(dir, "kube-apiserver.log"), args...)
	c := &Cluster{dir: dir, Config: &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", port),
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             200,
		Burst:           400,
	}}
	c.waitReady(t, 90*time.Second)
	c.startControllerManager(t, bin)
	return c
}

// controllers are the kube-controller-manager loops the harness runs: enough for
// Deployments and DaemonSets to become Pods and for ready Pods to become
// EndpointSlices, as in a real cluster, and for every namespace to get the
// kube-root-ca.crt ConfigMap that Pods' ServiceAccount volumes project.
var controllers = []string{
	"deployment-controller", "replicaset-controller", "daemonset-controller",
	"endpointslice-controller", "namespace-controller", "garbage-collector-controller",
	"serviceaccount-controller", "root-ca-certificate-publisher-controller",
}

func (c *Cluster) startControllerManager(t testing.TB, bin string) {
	t.Helper()
	kubeconfig := filepath.Join(c.dir, "kubeconfig")
	c.Kubeconfig = kubeconfig
	writeFileT(t, kubeconfig, fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: %q}
contexts:
- name: e2e
  context: {cluster: e2e, user: admin}
current-context: e2e
`, c.Config.Host, c.Config.BearerToken))
	run(t, filepath.Join(bin, "kube-controller-manager"), filepath.Join(c.dir, "kube-controller-manager.log"),
		"--kubeconfig="+kubeconfig,
		"--controllers="+strings.Join(controllers, ","),
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		// The API server's self-signed serving certificate (written into its
		// cert-dir) is what Pods are given to trust, as a cluster's CA.
		"--root-ca-file="+filepath.Join(c.dir, "certs", "apiserver.crt"),
	)
}

func startEtcd(t testing.TB, bin, dir string) string {
	client, peer := freePort(t), freePort(t)
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	run(t, filepath.Join(bin, "etcd"), filepath.Join(dir, "etcd.log"),
		"--name=e2e", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+clientURL, "--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=e2e="+peerURL, "--unsafe-no-fsync", "--log-level=warn")
	return clientURL
}

// waitReady polls the API server's /readyz until it answers 200.
func (c *Cluster) waitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the server's certificate is self-signed
	}}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, c.Config.Host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+c.Config.BearerToken)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("kube-apiserver not ready after %v; log:\n%s", timeout, tail(filepath.Join(c.dir, "kube-apiserver.log")))
}

// run starts a process whose output goes to logPath, and stops it when the test ends.
func run(t testing.TB, path, logPath string, args ...string) {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
		if t.Failed() {
			t.Logf("%s log:\n%s", filepath.Base(path), tail(logPath))
		}
	})
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// freePort returns a free loopback port (see testport for why not ":0").
func freePort(t testing.TB) int { return testport.Free(t) }

func randomHex(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func writeFileT(t testing.TB, path, body string) {
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeServiceAccountKey(t testing.TB, path string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der := x509.MarshalPKCS1PrivateKey(key)
	writeFileT(t, path, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der})))
}
