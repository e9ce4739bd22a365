package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/switchyard-dev/switchyard/controller/kube"
	"github.com/switchyard-dev/switchyard/controller/leader"
	"github.com/switchyard-dev/switchyard/controller/status"
	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/e2e/cluster"
)

// The Source serves the status writer its current objects.
var _ status.Objects = (*kube.Source)(nil)

const otherController = "example.com/other-controller"

// controllerEnv is one API server shared by the controller subtests, with a running
// Source whose change notifications are recorded.
type controllerEnv struct {
	ctx     context.Context
	cluster *cluster.Cluster
	kube    kubernetes.Interface
	gw      gwclient.Interface
	source  *kube.Source
	changes *changeLog
}

// TestControllerOnRealAPIServer runs the controller's Kubernetes parts against a real
// kube-apiserver: the informer source, the status writer and leader election. The
// subtests share one control plane and build on each other's objects.
func TestControllerOnRealAPIServer(t *testing.T) {
	c := cluster.Start(t)
	c.InstallGatewayAPI(t)
	env := startSource(t, c)
	t.Run("Source", env.testSource)
	t.Run("StatusWriter", env.testStatusWriter)
	t.Run("StatusWriterConflictsAndScale", env.testWriterConflictsAndScale)
	t.Run("LeaderElection", env.testLeaderElection)
}

func startSource(t *testing.T, c *cluster.Cluster) *controllerEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	env := &controllerEnv{ctx: ctx, cluster: c, kube: kubernetes.NewForConfigOrDie(c.Config),
		gw: gwclient.NewForConfigOrDie(c.Config), changes: &changeLog{}}
	src, err := kube.NewSource(env.kube, env.gw, kube.SourceOptions{OnChange: env.changes.add})
	if err != nil {
		t.Fatal(err)
	}
	env.source = src
	t.Cleanup(func() { cancel(); src.Shutdown() })
	started := make(chan error, 1)
	go func() { started <- src.Start(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the informer caches did not sync within 60s")
	}
	return env
}

// changeLog records the Source's notifications.
type changeLog struct {
	mu      sync.Mutex
	changes []kube.Change
	times   []time.Time
}

func (l *changeLog) add(c kube.Change) {
	l.mu.Lock()
	l.changes = append(l.changes, c)
	l.times = append(l.times, time.Now())
	l.mu.Unlock()
}

// mark returns a position in the log, for since and waitFor.
func (l *changeLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.changes)
}

func (l *changeLog) since(pos int) []kube.Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.changes[pos:])
}

// waitFor waits for a notification of the object after pos and returns when it came.
func (l *changeLog) waitFor(t *testing.T, pos int, kind kube.Kind, namespace, name string) time.Time {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for i := pos; i < len(l.changes); i++ {
			if c := l.changes[i]; c.Kind == kind && c.Namespace == namespace && c.Name == name {
				at := l.times[i]
				l.mu.Unlock()
				return at
			}
		}
		l.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("no notification of %s %s/%s", kind, namespace, name)
	return time.Time{}
}

func (l *changeLog) has(pos int, kind kube.Kind, namespace, name string) bool {
	return slices.Contains(l.since(pos), kube.Change{Kind: kind, Namespace: namespace, Name: name})
}

// settle makes sure the Source has delivered every earlier event of the kind: it
// changes a label of a marker object of that kind and waits for that notification,
// which an informer delivers after all earlier events of its kind.
func (e *controllerEnv) settle(t *testing.T, kind kube.Kind) {
	t.Helper()
	pos := e.changes.mark()
	label := map[string]string{"touched": fmt.Sprint(time.Now().UnixNano())}
	gw := e.gw.GatewayV1()
	namespace, name := "default", "marker"
	var touch func() error
	switch kind {
	case kube.KindGatewayClass:
		namespace, name = "", "other"
		touch = func() error {
			o, err := gw.GatewayClasses().Get(e.ctx, name, metav1.GetOptions{})
			if err == nil {
				o.Labels = label
				_, err = gw.GatewayClasses().Update(e.ctx, o, metav1.UpdateOptions{})
			}
			return err
		}
	case kube.KindGateway:
		touch = func() error {
			o, err := gw.Gateways(namespace).Get(e.ctx, name, metav1.GetOptions{})
			if err == nil {
				o.Labels = label
				_, err = gw.Gateways(namespace).Update(e.ctx, o, metav1.UpdateOptions{})
			}
			return err
		}
	case kube.KindHTTPRoute:
		touch = func() error {
			o, err := gw.HTTPRoutes(namespace).Get(e.ctx, name, metav1.GetOptions{})
			if err == nil {
				o.Labels = label
				_, err = gw.HTTPRoutes(namespace).Update(e.ctx, o, metav1.UpdateOptions{})
			}
			return err
		}
	default:
		t.Fatalf("no marker object of kind %s", kind)
	}
	mustDo(t, "touching the "+string(kind)+" marker", retryOnConflict(touch))
	e.changes.waitFor(t, pos, kind, namespace, name)
}

func retryOnConflict(fn func() error) error {
	for range 5 {
		if err := fn(); !apierrors.IsConflict(err) {
			return err
		}
	}
	return errors.New("conflict after 5 attempts")
}

func (e *controllerEnv) testSource(t *testing.T) {
	gw := e.gw.GatewayV1()
	port := gwv1.PortNumber(80)
	mustDo(t, "class", create(gw.GatewayClasses().Create(e.ctx, gatewayClass("switchyard", translate.ControllerName), metav1.CreateOptions{})))
	mustDo(t, "other class", create(gw.GatewayClasses().Create(e.ctx, gatewayClass("other", otherController), metav1.CreateOptions{})))
	mustDo(t, "gateway", create(gw.Gateways("default").Create(e.ctx, gateway("gw", "switchyard"), metav1.CreateOptions{})))
	mustDo(t, "marker gateway", create(gw.Gateways("default").Create(e.ctx, gateway("marker", "other"), metav1.CreateOptions{})))
	mustDo(t, "service", create(e.kube.CoreV1().Services("default").Create(e.ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}, metav1.CreateOptions{})))
	mustDo(t, "marker route", create(gw.HTTPRoutes("default").Create(e.ctx, route("marker", port, "marker"), metav1.CreateOptions{})))

	// A new HTTPRoute notifies, and is in the next Input.
	pos := e.changes.mark()
	start := time.Now()
	mustDo(t, "route", create(gw.HTTPRoutes("default").Create(e.ctx, route("web", port, "gw"), metav1.CreateOptions{})))
	seen := e.changes.waitFor(t, pos, kube.KindHTTPRoute, "default", "web")
	t.Logf("HTTPRoute create to notification: %v", seen.Sub(start).Round(100*time.Microsecond))
	if !slices.ContainsFunc(e.source.Input().HTTPRoutes, func(r *gwv1.HTTPRoute) bool { return r.Name == "web" }) {
		t.Error("the notified HTTPRoute is not in Input")
	}

	e.checkStatusOnlyUpdateIsIgnored(t)
	e.checkSecretsAndConfigMaps(t)

	// The caches hold no managedFields, though the API server keeps them.
	stored, err := gw.Gateways("default").Get(e.ctx, "gw", metav1.GetOptions{})
	mustDo(t, "get gateway", err)
	if len(stored.ManagedFields) == 0 || len(e.source.Gateway(key("gw")).ManagedFields) != 0 {
		t.Errorf("managedFields: %d stored, %d cached; want some stored and none cached",
			len(stored.ManagedFields), len(e.source.Gateway(key("gw")).ManagedFields))
	}
}

// checkStatusOnlyUpdateIsIgnored writes a Gateway's status as another client and
// checks that the Source saw it without notifying, while a label change notifies.
func (e *controllerEnv) checkStatusOnlyUpdateIsIgnored(t *testing.T) {
	t.Helper()
	gateways := e.gw.GatewayV1().Gateways("default")
	pos := e.changes.mark()
	obj, err := gateways.Get(e.ctx, "gw", metav1.GetOptions{})
	mustDo(t, "get gateway", err)
	obj.Status.Conditions = []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionUnknown, Reason: "Pending",
		Message: "status-only update", LastTransitionTime: metav1.Now()}}
	written, err := gateways.UpdateStatus(e.ctx, obj, metav1.UpdateOptions{})
	mustDo(t, "status update", err)
	e.settle(t, kube.KindGateway)
	if cached := e.source.Gateway(key("gw")); cached.ResourceVersion != written.ResourceVersion {
		t.Fatalf("the cache has Gateway version %s, want the status update's %s", cached.ResourceVersion, written.ResourceVersion)
	}
	if e.changes.has(pos, kube.KindGateway, "default", "gw") {
		t.Error("a status-only Gateway update notified")
	}

	pos = e.changes.mark()
	mustDo(t, "label gateway", retryOnConflict(func() error {
		o, err := gateways.Get(e.ctx, "gw", metav1.GetOptions{})
		if err == nil {
			o.Labels = map[string]string{"team": "a"}
			_, err = gateways.Update(e.ctx, o, metav1.UpdateOptions{})
		}
		return err
	}))
	e.changes.waitFor(t, pos, kube.KindGateway, "default", "gw")
}

// checkSecretsAndConfigMaps checks that only TLS Secrets keep their data in the
// cache, and that only ConfigMaps a GatewayClass refers to notify.
func (e *controllerEnv) checkSecretsAndConfigMaps(t *testing.T) {
	t.Helper()
	secrets := e.kube.CoreV1().Secrets("default")
	pos := e.changes.mark()
	mustDo(t, "opaque secret", create(secrets.Create(e.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: "default"},
		Data: map[string][]byte{"password": []byte("hunter2")}}, metav1.CreateOptions{})))
	mustDo(t, "tls secret", create(secrets.Create(e.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cert", Namespace: "default"},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("crt"), "tls.key": []byte("key")}}, metav1.CreateOptions{})))
	e.changes.waitFor(t, pos, kube.KindSecret, "default", "cert")
	for _, s := range e.source.Input().Secrets {
		switch s.Name {
		case "plain":
			if s.Data != nil || s.Type != corev1.SecretTypeOpaque {
				t.Errorf("cached Opaque Secret keeps data %v (type %q)", s.Data, s.Type)
			}
		case "cert":
			if string(s.Data["tls.key"]) != "key" {
				t.Errorf("cached TLS Secret lost its key: %v", s.Data)
			}
		}
	}

	ns := gwv1.Namespace("default")
	class := gatewayClass("parameterised", otherController)
	class.Spec.ParametersRef = &gwv1.ParametersReference{Kind: "ConfigMap", Name: "params", Namespace: &ns}
	mustDo(t, "class with parameters", create(e.gw.GatewayV1().GatewayClasses().Create(e.ctx, class, metav1.CreateOptions{})))
	e.changes.waitFor(t, pos, kube.KindGatewayClass, "", "parameterised")
	configMaps := e.kube.CoreV1().ConfigMaps("default")
	pos = e.changes.mark()
	for _, name := range []string{"unrelated", "params"} {
		mustDo(t, name, create(configMaps.Create(e.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Data: map[string]string{"serviceType": "ClusterIP"}}, metav1.CreateOptions{})))
	}
	e.changes.waitFor(t, pos, kube.KindConfigMap, "default", "params")
	if e.changes.has(pos, kube.KindConfigMap, "default", "unrelated") {
		t.Error("a ConfigMap that no GatewayClass refers to notified")
	}
	if cms := e.source.ConfigMaps(); len(cms) != 1 || cms[0].Name != "params" || cms[0].Data["serviceType"] != "ClusterIP" {
		t.Errorf("ConfigMaps() = %v, want only the referenced one, with its data", cms)
	}
}

func (e *controllerEnv) testStatusWriter(t *testing.T) {
	w := status.NewWriter(e.gw, nil)
	first := time.Now()
	pos := e.changes.mark()
	out := e.translate(first)
	got := w.Apply(e.ctx, out, e.source)
	if got.Writes < 3 || got.Errors != 0 {
		t.Fatalf("first Apply %+v, want the GatewayClass, Gateway and HTTPRoute written", got)
	}
	route := e.readRoute(t, "web")
	if len(route.Status.Parents) != 1 {
		t.Fatalf("route parents %+v, want one", route.Status.Parents)
	}
	p := route.Status.Parents[0]
	for _, typ := range []string{"Accepted", "ResolvedRefs"} {
		c := findCondition(p.Conditions, typ)
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != route.Generation {
			t.Errorf("route condition %s = %+v, want True at generation %d", typ, c, route.Generation)
		}
	}
	gwObj, err := e.gw.GatewayV1().Gateways("default").Get(e.ctx, "gw", metav1.GetOptions{})
	mustDo(t, "get gateway", err)
	if c := findCondition(gwObj.Status.Conditions, "Accepted"); c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != gwObj.Generation {
		t.Errorf("Gateway Accepted = %+v, want True at generation %d", c, gwObj.Generation)
	}
	other, err := e.gw.GatewayV1().GatewayClasses().Get(e.ctx, "other", metav1.GetOptions{})
	mustDo(t, "get other class", err)
	if c := findCondition(other.Status.Conditions, "Accepted"); c == nil || c.Reason != "Pending" {
		t.Errorf("another controller's GatewayClass status was changed: %+v", other.Status.Conditions)
	}

	// The same output again writes nothing, even before the cache has seen the writes.
	if again := w.Apply(e.ctx, out, e.source); again.Writes != 0 || again.Conflicts != 0 {
		t.Errorf("second Apply of the same output %+v, want no writes", again)
	}
	// The writes did not notify.
	for _, kind := range []kube.Kind{kube.KindGatewayClass, kube.KindGateway, kube.KindHTTPRoute} {
		e.settle(t, kind)
	}
	for _, c := range e.changes.since(pos) {
		gatewayAPI := c.Kind == kube.KindGatewayClass || c.Kind == kube.KindGateway || c.Kind == kube.KindHTTPRoute
		if gatewayAPI && c.Name != "marker" && c.Name != "other" {
			t.Errorf("the status writes caused notification %+v", c)
		}
	}

	// A later translation of the same objects keeps lastTransitionTime.
	e.waitCached(t, "web", func(r *gwv1.HTTPRoute) bool { return len(r.Status.Parents) == 1 })
	if later := w.Apply(e.ctx, e.translate(first.Add(time.Hour)), e.source); later.Writes != 0 {
		t.Errorf("Apply of a later translation %+v, want no writes", later)
	}
	before := findCondition(p.Conditions, "Accepted").LastTransitionTime
	after := findCondition(e.readRoute(t, "web").Status.Parents[0].Conditions, "Accepted").LastTransitionTime
	if !after.Equal(&before) {
		t.Errorf("lastTransitionTime moved from %v to %v", before, after)
	}
	e.checkForeignParentKept(t, w)
}

// checkForeignParentKept gives a route a status entry of another controller and
// checks that the writer keeps it, and removes its own entry once the route leaves
// our Gateway.
func (e *controllerEnv) checkForeignParentKept(t *testing.T, w *status.Writer) {
	t.Helper()
	routes := e.gw.GatewayV1().HTTPRoutes("default")
	shared := route("shared", 80, "gw")
	shared.Spec.ParentRefs = append(shared.Spec.ParentRefs, gwv1.ParentReference{Name: "marker"})
	created, err := routes.Create(e.ctx, shared, metav1.CreateOptions{})
	mustDo(t, "shared route", err)
	foreign := gwv1.RouteParentStatus{ParentRef: gwv1.ParentReference{Name: "marker"}, ControllerName: otherController,
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted",
			Message: "served elsewhere", ObservedGeneration: created.Generation, LastTransitionTime: metav1.Now()}}}
	created.Status.Parents = []gwv1.RouteParentStatus{foreign}
	_, err = routes.UpdateStatus(e.ctx, created, metav1.UpdateOptions{})
	mustDo(t, "foreign status", err)
	e.waitCached(t, "shared", func(r *gwv1.HTTPRoute) bool { return len(r.Status.Parents) == 1 })

	w.Apply(e.ctx, e.translate(time.Now()), e.source)
	parents := e.readRoute(t, "shared").Status.Parents
	if len(parents) != 2 || parents[0].ControllerName != otherController || parents[0].Conditions[0].Message != "served elsewhere" ||
		parents[1].ControllerName != translate.ControllerName {
		t.Fatalf("parents %+v, want the other controller's entry kept and ours added", parents)
	}

	// The route leaves our Gateway: our entry goes, the other stays.
	mustDo(t, "move route", retryOnConflict(func() error {
		r, err := routes.Get(e.ctx, "shared", metav1.GetOptions{})
		if err == nil {
			r.Spec.ParentRefs = []gwv1.ParentReference{{Name: "marker"}}
			_, err = routes.Update(e.ctx, r, metav1.UpdateOptions{})
		}
		return err
	}))
	e.waitCached(t, "shared", func(r *gwv1.HTTPRoute) bool { return len(r.Spec.ParentRefs) == 1 })
	w.Apply(e.ctx, e.translate(time.Now()), e.source)
	parents = e.readRoute(t, "shared").Status.Parents
	if len(parents) != 1 || parents[0].ControllerName != otherController {
		t.Errorf("parents %+v after the route left our Gateway, want only the other controller's", parents)
	}
}

// testWriterConflictsAndScale writes with a stale view of a route that another
// client has changed, then writes the status of many routes at once.
func (e *controllerEnv) testWriterConflictsAndScale(t *testing.T) {
	w := status.NewWriter(e.gw, nil)
	w.Apply(e.ctx, e.translate(time.Now()), e.source)
	stale := status.InputObjects(e.source.Input())
	routes := e.gw.GatewayV1().HTTPRoutes("default")
	var generation int64
	mustDo(t, "break backend", retryOnConflict(func() error {
		r, err := routes.Get(e.ctx, "web", metav1.GetOptions{})
		if err == nil {
			r.Spec.Rules[0].BackendRefs[0].Port = ptr(gwv1.PortNumber(81))
			r, err = routes.Update(e.ctx, r, metav1.UpdateOptions{})
		}
		if err == nil {
			generation = r.Generation
		}
		return err
	}))
	e.waitCached(t, "web", func(r *gwv1.HTTPRoute) bool { return r.Generation == generation })
	got := w.Apply(e.ctx, e.translate(time.Now()), stale)
	if got.Conflicts < 1 || got.Errors != 0 || got.Writes < 1 {
		t.Errorf("Apply with a stale view %+v, want a conflict, then a write", got)
	}
	c := findCondition(e.readRoute(t, "web").Status.Parents[0].Conditions, "ResolvedRefs")
	if c == nil || c.Status != metav1.ConditionFalse || c.ObservedGeneration != generation {
		t.Errorf("ResolvedRefs after the conflict = %+v, want False at generation %d", c, generation)
	}

	const n = 200
	for i := range n {
		mustDo(t, "route", create(routes.Create(e.ctx, route(fmt.Sprintf("bulk-%03d", i), 80, "gw"), metav1.CreateOptions{})))
	}
	e.waitCached(t, fmt.Sprintf("bulk-%03d", n-1), func(*gwv1.HTTPRoute) bool { return true })
	start := time.Now()
	got = w.Apply(e.ctx, e.translate(time.Now()), e.source)
	took := time.Since(start)
	if got.Writes < n || got.Errors != 0 {
		t.Errorf("Apply of %d new routes %+v, want at least %d writes", n, got, n)
	}
	t.Logf("status of %d routes written in %v (%.0f writes/s, %d workers)", got.Writes, took.Round(time.Millisecond),
		float64(got.Writes)/took.Seconds(), status.DefaultWorkers)
	if again := w.Apply(e.ctx, e.translate(time.Now()), e.source); again.Writes != 0 {
		t.Errorf("second Apply over %d routes %+v, want no writes", n, again)
	}
}

// testLeaderElection runs two electors on one Lease. One leads; when its network
// fails it steps down and the other takes over once the Lease expires; when the
// new leader is stopped it releases the Lease and the first takes over at once.
func (e *controllerEnv) testLeaderElection(t *testing.T) {
	var partitioned atomic.Bool
	cfg := rest.CopyConfig(e.cluster.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			if partitioned.Load() {
				return nil, errors.New("network partitioned by the test")
			}
			return rt.RoundTrip(req)
		})
	})
	a := e.startElector(t, "replica-a", kubernetes.NewForConfigOrDie(cfg))
	a.waitLeading(t, 20*time.Second)
	b := e.startElector(t, "replica-b", e.kube)
	watch := watchLeaders(a, b)
	defer watch.stop(t)
	time.Sleep(2 * time.Second)
	if !a.IsLeader() || b.IsLeader() {
		t.Fatalf("leaders: a=%v b=%v, want a only", a.IsLeader(), b.IsLeader())
	}
	lease, err := e.kube.CoordinationV1().Leases("default").Get(e.ctx, "switchyard-controller", metav1.GetOptions{})
	mustDo(t, "get lease", err)
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "replica-a" {
		t.Errorf("Lease holder %v, want replica-a", lease.Spec.HolderIdentity)
	}

	// The leader loses the API server without releasing the Lease.
	partitioned.Store(true)
	start := time.Now()
	took := b.waitLeading(t, 15*time.Second)
	t.Logf("failover after the leader lost the API server (no release): %v", took.Round(10*time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("failover without release took %v, want under 10s", took)
	}
	if stepped := a.stoppedAt.Load(); stepped == nil || stepped.After(start.Add(took)) {
		t.Errorf("replica-a did not step down before replica-b took over")
	}
	partitioned.Store(false)
	time.Sleep(2 * time.Second)
	if a.IsLeader() {
		t.Error("replica-a leads again while replica-b holds the Lease")
	}

	// A graceful stop releases the Lease: the other replica leads at its next retry.
	b.cancel()
	start = time.Now()
	took = a.waitLeading(t, 15*time.Second)
	t.Logf("handover after the leader stopped gracefully: %v", took.Round(10*time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("graceful handover took %v, want under 10s", took)
	}
	select {
	case <-b.done:
		mustDo(t, "replica-b Run", b.runErr)
	case <-time.After(10 * time.Second):
		t.Error("replica-b's Run did not return after its context ended")
	}
	if b.stoppedAt.Load() == nil {
		t.Error("replica-b's OnStoppedLeading was not called")
	}
}

type elector struct {
	*leader.Elector
	cancel context.CancelFunc
	// done is closed when Run returned, with its error in runErr.
	done      chan struct{}
	runErr    error
	stoppedAt atomic.Pointer[time.Time]
}

func (e *controllerEnv) startElector(t *testing.T, identity string, client kubernetes.Interface) *elector {
	t.Helper()
	el := &elector{done: make(chan struct{})}
	var err error
	el.Elector, err = leader.New(leader.Options{Client: client, Namespace: "default", Name: "switchyard-controller",
		Identity: identity, OnStartedLeading: func(context.Context) {},
		OnStoppedLeading: func() { now := time.Now(); el.stoppedAt.Store(&now) }})
	mustDo(t, "leader.New", err)
	ctx, cancel := context.WithCancel(e.ctx)
	el.cancel = cancel
	go func() {
		defer close(el.done)
		el.runErr = el.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-el.done })
	return el
}

// waitLeading waits until the elector leads and returns how long that took.
func (el *elector) waitLeading(t *testing.T, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for !el.IsLeader() {
		if time.Since(start) > timeout {
			t.Fatalf("%s did not lead within %v", el.Identity(), timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// leaderWatch samples electors and counts moments when more than one leads.
type leaderWatch struct {
	quit chan struct{}
	done chan struct{}
	both atomic.Int64
}

func watchLeaders(electors ...*elector) *leaderWatch {
	w := &leaderWatch{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.quit:
				return
			case <-time.After(5 * time.Millisecond):
			}
			leading := 0
			for _, el := range electors {
				if el.IsLeader() {
					leading++
				}
			}
			if leading > 1 {
				w.both.Add(1)
			}
		}
	}()
	return w
}

func (w *leaderWatch) stop(t *testing.T) {
	close(w.quit)
	<-w.done
	if n := w.both.Load(); n > 0 {
		t.Errorf("two electors led at once in %d samples", n)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// translate translates the Source's current objects as the controller would.
func (e *controllerEnv) translate(now time.Time) *translate.Output {
	in := e.source.Input()
	in.Options.Now = now
	return translate.Translate(in)
}

func (e *controllerEnv) readRoute(t *testing.T, name string) *gwv1.HTTPRoute {
	t.Helper()
	r, err := e.gw.GatewayV1().HTTPRoutes("default").Get(e.ctx, name, metav1.GetOptions{})
	mustDo(t, "get route", err)
	return r
}

// waitCached waits until the Source's cached route satisfies ok.
func (e *controllerEnv) waitCached(t *testing.T, name string, ok func(*gwv1.HTTPRoute) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if r := e.source.HTTPRoute(key(name)); r != nil && ok(r) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the cache did not reach the expected state of HTTPRoute %s", name)
}

func findCondition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

func key(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: "default", Name: name}
}

func gatewayClass(name, controller string) *gwv1.GatewayClass {
	return &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: gwv1.GatewayClassSpec{ControllerName: gwv1.GatewayController(controller)}}
}

func gateway(name, class string) *gwv1.Gateway {
	return &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: gwv1.GatewaySpec{GatewayClassName: gwv1.ObjectName(class),
			Listeners: []gwv1.Listener{{Name: "http", Protocol: gwv1.HTTPProtocolType, Port: 80}}}}
}

func route(name string, port gwv1.PortNumber, parent string) *gwv1.HTTPRoute {
	return &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: gwv1.ObjectName(parent)}}},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
				BackendObjectReference: gwv1.BackendObjectReference{Name: "web", Port: &port}}}}}},
		}}
}

func mustDo(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestSourceWithoutOptionalCRDs runs the informer source on a cluster that has only
// the core Gateway API CRDs, without Switchyard's: the optional kinds are found
// missing, left unwatched (even with a dynamic client), read as empty, and the caches
// still sync; the status writer, given a dynamic client, writes as before.
func TestSourceWithoutOptionalCRDs(t *testing.T) {
	c := cluster.Start(t)
	c.InstallGatewayAPIKinds(t, "gatewayclasses", "gateways", "httproutes", "referencegrants")
	gw := gwclient.NewForConfigOrDie(c.Config)
	missing, err := kube.MissingKinds(gw.Discovery())
	if err != nil {
		t.Fatal(err)
	}
	want := []kube.Kind{kube.KindBackendTLS, kube.KindListenerSet, kube.KindTrafficPolicy, kube.KindRollout}
	for _, kind := range want {
		if !missing[kind] {
			t.Errorf("%s is not reported missing", kind)
		}
	}
	if len(missing) != len(want) {
		t.Fatalf("missing kinds %v; want %v", missing, want)
	}
	dyn := dynamic.NewForConfigOrDie(c.Config)
	src, err := kube.NewSource(kubernetes.NewForConfigOrDie(c.Config), gw, kube.SourceOptions{Missing: missing, Dynamic: dyn})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer func() { cancel(); src.Shutdown() }()
	if err := src.Start(ctx); err != nil {
		t.Fatalf("caches did not sync without the optional CRDs: %v", err)
	}
	in := src.Input()
	if len(in.BackendTLSPolicies) != 0 || len(in.ListenerSets) != 0 || len(in.TrafficPolicies) != 0 || len(in.Rollouts) != 0 {
		t.Fatalf("optional kinds read as %d BackendTLSPolicies, %d ListenerSets, %d TrafficPolicies, %d Rollouts",
			len(in.BackendTLSPolicies), len(in.ListenerSets), len(in.TrafficPolicies), len(in.Rollouts))
	}
	_, err = gw.GatewayV1().GatewayClasses().Create(ctx, gatewayClass("switchyard", translate.ControllerName), metav1.CreateOptions{})
	mustDo(t, "create GatewayClass", err)
	waitUntil(t, "the GatewayClass in the cache", func() bool { return src.GatewayClass("switchyard") != nil })
	in = src.Input()
	in.Options.Now = time.Now()
	w := status.NewWriter(gw, nil, status.WithDynamicClient(dyn))
	if got := w.Apply(ctx, translate.Translate(in), src); got.Writes != 1 || got.Errors != 0 {
		t.Errorf("status writes without the optional CRDs: %+v; want the GatewayClass written", got)
	}
	// With every CRD installed, nothing is missing.
	c.InstallGatewayAPIKinds(t, "listenersets", "backendtlspolicies")
	c.InstallSwitchyardAPI(t)
	if missing, err := kube.MissingKinds(gw.Discovery()); err != nil || len(missing) != 0 {
		t.Fatalf("after installing all CRDs: missing %v, %v", missing, err)
	}
}
