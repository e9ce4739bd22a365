// Package mesh_test runs east-west traffic on the e2e harness: two nodes, the
// controller as a process, a node replica of our own binary on each node (a
// host-network DaemonSet Pod that the harness's kubelet runs), echo Pods on both
// nodes, and client Pods whose addresses the requests are sent from, through their
// own node's replica as an HTTP proxy.
package mesh_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/switchyard-dev/switchyard/e2e/cluster"
	"github.com/switchyard-dev/switchyard/e2e/proc"
	"github.com/switchyard-dev/switchyard/internal/testpki"
	"github.com/switchyard-dev/switchyard/internal/testport"
)

func TestMain(m *testing.M) { cluster.MainWithBinary(m) }

const (
	// controllerIP is where the controller's snapshot server listens: an address of
	// the harness's namespace outside both nodes' subnets, as for a controller that
	// runs elsewhere. Its certificate names this address.
	controllerIP = "10.244.0.2"
	// systemNamespace holds the node replicas.
	systemNamespace = "switchyard-system"
	// nodeAccount is the node replicas' ServiceAccount: the controller accepts its
	// tokens, and it may read Pods (the replica names callers by their Pod).
	nodeAccount = "node-gateway"
	// tokenAudience is the audience of the replicas' projected tokens.
	tokenAudience = "switchyard"
	// meshPort is the node replicas' proxy port; metricsPort serves their probes.
	meshPort    = 15001
	metricsPort = 15021
	// ourImage is run by the harness's kubelet with our own binary.
	ourImage = "ghcr.io/switchyard-dev/switchyard:e2e"
)

// Egress is configured on every node replica: refused, except the allowed range
// where allowedServer listens; deniedServer is in no allowed range.
const (
	egressAllowed = "10.244.250.0/24"
	allowedServer = "10.244.250.1:8080"
	deniedServer  = "10.244.251.1:8080"
)

// mesh is one cluster with the controller and the node replicas running, shared by
// the subtests of TestMesh.
type mesh struct {
	c    *cluster.Cluster
	kube kubernetes.Interface
	gw   gwclient.Interface
	dyn  dynamic.Interface
	// nodeIPs are the nodes' addresses by node name.
	nodeIPs map[string]string
	// controllerAdmin is the controller's admin API, http://HOST:PORT.
	controllerAdmin string
	controller      *proc.Process
}

// startMesh starts the control plane with two nodes, the controller and the node
// replicas, and waits until a replica is ready on each node.
func startMesh(t *testing.T) *mesh {
	t.Helper()
	binary := os.Getenv(cluster.EnvBinary)
	if binary == "" {
		t.Fatal("no switchyard binary: TestMain must call cluster.MainWithBinary")
	}
	c := cluster.Start(t)
	c.InstallGatewayAPI(t)
	c.InstallSwitchyardAPI(t)
	a := c.StartKubelet(t, "node-a", 1)
	b := c.StartKubelet(t, "node-b", 2)
	m := &mesh{c: c, kube: kubernetes.NewForConfigOrDie(c.Config), gw: gwclient.NewForConfigOrDie(c.Config),
		dyn: dynamic.NewForConfigOrDie(c.Config), nodeIPs: map[string]string{"node-a": a.NodeIP(), "node-b": b.NodeIP()}}
	pki := testpki.New(t)
	m.createNodeAccess(t, pki.CAPEM)
	m.startController(t, binary, pki)
	m.createNodeDaemonSet(t)
	m.waitNodeReplicas(t, "")
	return m
}

// createNodeAccess creates the system namespace, the replicas' ServiceAccount with
// permission to read Pods, and the Secret holding the CA of the controller's
// certificate.
func (m *mesh) createNodeAccess(t *testing.T, caPEM []byte) {
	t.Helper()
	ctx := context.Background()
	must(t, create(m.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}}, metav1.CreateOptions{})))
	waitFor(t, 30*time.Second, "the default ServiceAccount of "+systemNamespace, func() bool {
		_, err := m.kube.CoreV1().ServiceAccounts(systemNamespace).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})
	must(t, create(m.kube.CoreV1().ServiceAccounts(systemNamespace).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: nodeAccount}}, metav1.CreateOptions{})))
	must(t, create(m.kube.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: nodeAccount},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}}},
		metav1.CreateOptions{})))
	must(t, create(m.kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: nodeAccount},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: nodeAccount},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: nodeAccount, Namespace: systemNamespace}}}, metav1.CreateOptions{})))
	must(t, create(m.kube.CoreV1().Secrets(systemNamespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "controller-ca"}, Data: map[string][]byte{"ca.crt": caPEM}}, metav1.CreateOptions{})))
}

// startController runs the controller as a process with the harness's kubeconfig,
// its snapshot server on controllerIP with a certificate for that address, accepting
// the node replicas' ServiceAccount tokens.
func (m *mesh) startController(t *testing.T, binary string, pki *testpki.PKI) {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM := pki.Leaf(t, controllerIP)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	must(t, os.WriteFile(certFile, certPEM, 0o600))
	must(t, os.WriteFile(keyFile, keyPEM, 0o600))
	admin := fmt.Sprintf("127.0.0.1:%d", testport.Free(t))
	m.controllerAdmin = "http://" + admin
	m.controller = proc.Start(t, binary, "controller",
		"--kubeconfig", m.c.Kubeconfig,
		"--snapshot-addr", net.JoinHostPort(controllerIP, "18000"),
		"--tls-cert", certFile, "--tls-key", keyFile,
		"--gateway-service-accounts", systemNamespace+"/"+nodeAccount,
		"--gateway-token-audiences", tokenAudience,
		"--placement", "pool", "--address-pool", "10.244.200.0/24",
		"--leader-elect=false",
		"--east-west",
		"--admin-addr", admin,
		"--log-level", "debug",
	)
}

// createNodeDaemonSet creates the node replicas' DaemonSet: our image on the host
// network, listening on the node's address, with a projected token for the
// controller and the controller's CA, rolled with a surge Pod beside the old one.
func (m *mesh) createNodeDaemonSet(t *testing.T) {
	t.Helper()
	labels := map[string]string{"app": "node-gateway"}
	one, zero := intstr.FromInt32(1), intstr.FromInt32(0)
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "node-gateway", Namespace: systemNamespace},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxSurge: &one, MaxUnavailable: &zero}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: nodeGatewaySpec()},
		},
	}
	must(t, create(m.kube.AppsV1().DaemonSets(systemNamespace).Create(context.Background(), ds, metav1.CreateOptions{})))
}

// nodeGatewaySpec is the node replica's Pod, as a chart would render it.
func nodeGatewaySpec() corev1.PodSpec {
	grace := int64(20)
	expiry := int64(3600)
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	return corev1.PodSpec{
		ServiceAccountName:            nodeAccount,
		HostNetwork:                   true,
		TerminationGracePeriodSeconds: &grace,
		Containers: []corev1.Container{{
			Name: "gateway", Image: ourImage,
			Args: []string{"gateway", "--role=node",
				"--controller=https://" + net.JoinHostPort(controllerIP, "18000"),
				"--token-file=/var/run/secrets/tokens/switchyard-gateway",
				"--ca-file=/etc/switchyard/controller-ca/ca.crt",
				"--state-path=/var/lib/switchyard/snapshot.json",
				"--node=$(NODE_NAME)",
				"--listen=$(HOST_IP):" + strconv.Itoa(meshPort),
				"--node-addresses=$(HOST_IPS)",
				"--egress=deny", "--egress-allow=" + egressAllowed,
				"--metrics-addr=$(HOST_IP):" + strconv.Itoa(metricsPort),
				"--admin-addr=127.0.0.1:15000",
				// The surge Pod's readiness probe reaches the metrics port that both
				// processes share, so the old one may answer it before the new one
				// listens; the old one keeps serving this long after SIGTERM so that
				// the new one is up before it leaves.
				"--shutdown-delay=3s",
				"--drain-timeout=10s",
				"--log-level=debug",
			},
			Env: []corev1.EnvVar{fieldEnv("NODE_NAME", "spec.nodeName"), fieldEnv("HOST_IP", "status.hostIP"), fieldEnv("HOST_IPS", "status.hostIPs")},
			ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 2, ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(metricsPort)}}},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "token", MountPath: "/var/run/secrets/tokens", ReadOnly: true},
				{Name: "controller-ca", MountPath: "/etc/switchyard/controller-ca", ReadOnly: true},
				{Name: "state", MountPath: "/var/lib/switchyard"},
			},
		}},
		Volumes: []corev1.Volume{
			{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "switchyard-gateway", Audience: tokenAudience, ExpirationSeconds: &expiry}}}}}},
			{Name: "controller-ca", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "controller-ca"}}},
			{Name: "state", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
	}
}

// waitNodeReplicas waits until each node runs exactly one ready node replica whose
// template carries the given revision annotation ("" for the first), and returns
// them by node.
func (m *mesh) waitNodeReplicas(t *testing.T, revision string) map[string]*corev1.Pod {
	t.Helper()
	var byNode map[string]*corev1.Pod
	waitFor(t, 90*time.Second, "a ready node replica on each node", func() bool {
		pods, err := m.kube.CoreV1().Pods(systemNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: "app=node-gateway"})
		if err != nil || len(pods.Items) != len(m.nodeIPs) {
			return false
		}
		byNode = map[string]*corev1.Pod{}
		for i := range pods.Items {
			p := &pods.Items[i]
			if !podReady(p) || p.Annotations["revision"] != revision || p.DeletionTimestamp != nil {
				return false
			}
			byNode[p.Spec.NodeName] = p
		}
		return len(byNode) == len(m.nodeIPs)
	})
	return byNode
}

// caller is a client Pod that requests are sent from.
type caller struct {
	pod *corev1.Pod
	// proxy is its node's replica.
	proxy string
}

// client sends requests from the caller's address through its node's replica, as a
// Pod with HTTP_PROXY=http://$(HOST_IP):15001 does. keepAlive false opens a
// connection per request.
func (c caller) client(keepAlive bool) *http.Client {
	return clientFrom(c.pod.Status.PodIP, c.proxy, keepAlive)
}

// clientFrom sends requests from source through the proxy at proxyAddr.
func clientFrom(source, proxyAddr string, keepAlive bool) *http.Client {
	dialer := &net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:               http.ProxyURL(&url.URL{Scheme: "http", Host: proxyAddr}),
		DialContext:         dialer.DialContext,
		DisableKeepAlives:   !keepAlive,
		MaxIdleConnsPerHost: 16,
	}}
}

// createCaller runs a client Pod on node and returns it once it has an address.
func (m *mesh) createCaller(t *testing.T, name, node string) caller {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"role": "client"}},
		Spec: corev1.PodSpec{NodeSelector: map[string]string{corev1.LabelHostname: node},
			Containers: []corev1.Container{{Name: "client", Image: "client"}}}}
	must(t, create(m.kube.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{})))
	running := waitPodReady(t, m.kube, "default", name)
	return caller{pod: running, proxy: net.JoinHostPort(m.nodeIPs[node], strconv.Itoa(meshPort))}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue && p.Status.PodIP != ""
		}
	}
	return false
}

// waitPodReady waits for a Pod's Ready condition and returns it.
func waitPodReady(t *testing.T, kube kubernetes.Interface, ns, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitFor(t, 60*time.Second, "pod "+ns+"/"+name+" ready", func() bool {
		p, err := kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		pod = p
		return err == nil && podReady(p)
	})
	return pod
}

// waitFor polls cond every 50 ms until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
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
