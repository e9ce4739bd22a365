package helm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/switchyard-dev/switchyard/e2e/cluster"
)

// fieldManager is the name the install test applies as, as helm would.
const fieldManager = "helm-install-test"

// restrictedNamespaces are the cases whose namespace enforces the "restricted" Pod
// Security Standard, so that a Pod template the standard refuses fails the test. The
// node gateway (host network) needs a privileged namespace, so only a release without
// east-west can enforce it.
var restrictedNamespaces = map[string]bool{"north-south": true}

// TestInstallOnAPIServer applies every object the chart renders to a real
// kube-apiserver with server-side apply and strict field validation, as a release
// would be installed, and checks that each is accepted and that the Pods of the
// Deployments and DaemonSets pass admission. First a release with
// gatewayAPI.installCRDs on, on a cluster without the Gateway API, then its upgrade
// (which adds the GatewayClass), then each values case in a namespace of its own.
func TestInstallOnAPIServer(t *testing.T) {
	c := cluster.Start(t)
	a := newApplier(t, c.Config)
	a.createNode(t, "install-node", map[string]string{"node-role.example/mesh": "true"})
	a.apply(t, []*unstructured.Unstructured{readObject(t, filepath.Join("testdata", "servicemonitor-crd.yaml"))})

	first := release{name: "gateway-api", namespace: "gateway-api", values: "defaults",
		extra: []string{"--include-crds", "--set", "gatewayAPI.installCRDs=true"}}
	a.createNamespace(t, first.namespace, false)
	objs := objects(t, mustRender(t, first))
	if countKind(objs, "GatewayClass") != 0 {
		t.Fatal("a first install with the CRDs rendered a GatewayClass before the API server serves the kind")
	}
	a.apply(t, objs)
	upgrade := first
	upgrade.extra = append(upgrade.extra, "--api-versions", "gateway.networking.k8s.io/v1/GatewayClass")
	a.apply(t, objects(t, mustRender(t, upgrade)))
	a.checkPods(t, first.namespace)

	for _, name := range valuesCases {
		t.Run(name, func(t *testing.T) {
			r := release{name: "sy-" + name, namespace: "sy-" + name, values: name,
				extra: []string{"--include-crds", "--set", "gatewayClass.name=sy-" + name}}
			a.createNamespace(t, r.namespace, restrictedNamespaces[name])
			a.apply(t, objects(t, mustRender(t, r)))
			a.checkPods(t, r.namespace)
		})
	}
}

// applier applies unstructured objects through a dynamic client, finding each kind's
// resource with a RESTMapper that learns kinds added by CRDs.
type applier struct {
	dynamic dynamic.Interface
	kube    kubernetes.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(t testing.TB, cfg *rest.Config) *applier {
	t.Helper()
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{
		dynamic: dynamic.NewForConfigOrDie(cfg),
		kube:    kubernetes.NewForConfigOrDie(cfg),
		mapper:  restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco)),
	}
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// apply server-side applies objs, CRDs first (waiting until each is established, as
// helm does for its crds/ folder), and fails the test listing every object the API
// server refused; then it reads each object back.
func (a *applier) apply(t testing.TB, objs []*unstructured.Unstructured) {
	t.Helper()
	var crds, rest []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o)
		} else {
			rest = append(rest, o)
		}
	}
	var refused []error
	for _, o := range crds {
		refused = append(refused, a.applyOne(o))
	}
	if err := errors.Join(refused...); err != nil {
		t.Fatalf("the API server refused CRDs:\n%v", err)
	}
	for _, o := range crds {
		a.waitEstablished(t, o.GetName())
	}
	a.mapper.Reset()
	for _, o := range rest {
		refused = append(refused, a.applyOne(o))
	}
	if err := errors.Join(refused...); err != nil {
		t.Fatalf("the API server refused objects:\n%v", err)
	}
	for _, o := range objs {
		if _, err := a.resource(o).Get(context.Background(), o.GetName(), metav1.GetOptions{}); err != nil {
			t.Errorf("%s %s is not readable after apply: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

// applyOne server-side applies one object with strict field validation, so that a
// field the API does not know is refused rather than dropped.
func (a *applier) applyOne(o *unstructured.Unstructured) error {
	body, err := json.Marshal(o.Object)
	if err != nil {
		return err
	}
	r := a.resource(o)
	if r == nil {
		return fmt.Errorf("%s %s: the API server does not serve %s", o.GetKind(), o.GetName(), o.GroupVersionKind())
	}
	_, err = r.Patch(context.Background(), o.GetName(), types.ApplyPatchType, body,
		metav1.PatchOptions{FieldManager: fieldManager, Force: ptr(true), FieldValidation: "Strict"})
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
	}
	return nil
}

// resource is the dynamic client of the object's resource, in its namespace when the
// kind is namespaced; nil when the kind is not served.
func (a *applier) resource(o *unstructured.Unstructured) dynamic.ResourceInterface {
	gvk := o.GroupVersionKind()
	mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dynamic.Resource(mapping.Resource).Namespace(o.GetNamespace())
	}
	return a.dynamic.Resource(mapping.Resource)
}

func (a *applier) waitEstablished(t testing.TB, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		crd, err := a.dynamic.Resource(crdResource).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, raw := range conds {
				cond, _ := raw.(map[string]any)
				if cond["type"] == "Established" && cond["status"] == "True" {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("CRD %s was not established within 30s", name)
}

// createNode registers a Node without a kubelet, so that DaemonSets get a Pod for it
// (which nothing runs). The API server taints a new Node not-ready until its kubelet
// reports; the taint is removed as a kubelet's first report would.
func (a *applier) createNode(t testing.TB, name string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	node, err := a.kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Spec.Taints = nil
	if _, err := a.kube.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createNamespace creates the release namespace (helm --create-namespace), enforcing
// the restricted Pod Security Standard when restricted is set.
func (a *applier) createNamespace(t testing.TB, name string, restricted bool) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if restricted {
		ns.Labels = map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}
	}
	if _, err := a.kube.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// checkPods waits until kube-controller-manager has created every Pod the namespace's
// Deployments ask for, and one for each DaemonSet (there is one Node): the API server
// admitted the Pod templates (ServiceAccounts, volumes, downward API fields, Pod
// Security). The harness's kubelet is not started, so the Pods stay Pending and
// nothing runs.
func (a *applier) checkPods(t testing.TB, namespace string) {
	t.Helper()
	ctx := context.Background()
	deployments, err := a.kube.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(deployments.Items) == 0 {
		t.Fatalf("namespace %s has no Deployments", namespace)
	}
	for i := range deployments.Items {
		d := &deployments.Items[i]
		want := int(ptrValue(d.Spec.Replicas, 1))
		if got := a.waitPods(t, namespace, d.Spec.Selector, want); got < want {
			t.Errorf("Deployment %s/%s: %d of %d Pods created; its ReplicaSets say:\n%s",
				namespace, d.Name, got, want, a.replicaSetFailures(t, d))
		}
	}
	daemonSets, err := a.kube.AppsV1().DaemonSets(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ds := range daemonSets.Items {
		if got := a.waitPods(t, namespace, ds.Spec.Selector, 1); got < 1 {
			t.Errorf("DaemonSet %s/%s: no Pod created; its events say:\n%s", namespace, ds.Name, a.events(t, namespace, ds.Name))
		}
	}
}

// waitPods waits up to 30 seconds for want Pods matching selector and returns how
// many there are.
func (a *applier) waitPods(t testing.TB, namespace string, sel *metav1.LabelSelector, want int) int {
	t.Helper()
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	got := 0
	for time.Now().Before(deadline) {
		pods, err := a.kube.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: selector.String()})
		if err != nil {
			t.Fatal(err)
		}
		if got = len(pods.Items); got >= want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return got
}

// events lists the events of one object, such as the DaemonSet controller's refusals.
func (a *applier) events(t testing.TB, namespace, name string) string {
	t.Helper()
	list, err := a.kube.CoreV1().Events(namespace).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, e := range list.Items {
		lines = append(lines, fmt.Sprintf("  %s: %s", e.Reason, e.Message))
	}
	if len(lines) == 0 {
		return "  (no events)"
	}
	return strings.Join(lines, "\n")
}

// replicaSetFailures collects the ReplicaFailure conditions of a Deployment's
// ReplicaSets: why their Pods were refused.
func (a *applier) replicaSetFailures(t testing.TB, d *appsv1.Deployment) string {
	t.Helper()
	selector, _ := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	sets, err := a.kube.AppsV1().ReplicaSets(d.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, rs := range sets.Items {
		for _, c := range rs.Status.Conditions {
			lines = append(lines, fmt.Sprintf("  %s %s: %s", rs.Name, c.Reason, c.Message))
		}
	}
	if len(lines) == 0 {
		return "  (no conditions)"
	}
	return strings.Join(lines, "\n")
}

func ptr[T any](v T) *T { return &v }

func ptrValue[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
