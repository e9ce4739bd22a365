// Package status writes the status that translation computed to the API server:
// only what changed, without resetting lastTransitionTime of unchanged conditions,
// without touching other controllers' objects or route entries, and many objects at
// a time so that thousands of routes are done in seconds.
package status

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclientset "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

// DefaultWorkers is how many status updates a Writer sends at once.
const DefaultWorkers = 8

// maxAttempts bounds the updates of one object in one Apply: a conflict means someone
// else wrote the object, so the writer reads it again and retries, but never forever.
const maxAttempts = 4

// Objects gives the writer the objects as the informer caches hold them; the
// writer compares their status with the desired one and writes only differences.
// The writer never modifies what it gets. kube.Source implements it.
type Objects interface {
	// GatewayClass returns the GatewayClass of that name, or nil.
	GatewayClass(name string) *gwv1.GatewayClass
	// Gateway returns the Gateway, or nil.
	Gateway(key types.NamespacedName) *gwv1.Gateway
	// HTTPRoutes returns every HTTPRoute, so that this controller's entries can be
	// removed from routes that no longer refer to its Gateways.
	HTTPRoutes() []*gwv1.HTTPRoute
	// BackendTLSPolicies returns every BackendTLSPolicy, so that this controller's
	// ancestors can be removed from policies its Gateways no longer use.
	BackendTLSPolicies() []*gwv1.BackendTLSPolicy
}

// Counters count what a Writer did.
type Counters struct {
	// Writes counts status updates the API server accepted.
	Writes int64
	// Unchanged counts objects whose status already was as desired.
	Unchanged int64
	// Conflicts counts updates refused because the object had changed meanwhile;
	// each is retried after reading the object again.
	Conflicts int64
	// Errors counts objects whose status could not be written. They are not retried
	// within the Apply; the next Apply tries again.
	Errors int64
}

// Option configures a Writer.
type Option func(*Writer)

// WithControllerName sets the controller name whose HTTPRoute status entries the
// writer owns; it must be the name translation used. The default is
// translate.ControllerName.
func WithControllerName(name string) Option {
	return func(w *Writer) {
		if name != "" {
			w.controllerName = gwv1.GatewayController(name)
		}
	}
}

// WithWorkers sets how many updates are sent at once; values below 1 mean 1. The
// client's rate limiter (rest.Config QPS and Burst) bounds the pace as well.
func WithWorkers(n int) Option {
	return func(w *Writer) { w.workers = max(n, 1) }
}

// Writer writes status. Apply calls must not overlap; the other methods are safe for
// concurrent use.
type Writer struct {
	client         gatewayclientset.Interface
	logger         *slog.Logger
	controllerName gwv1.GatewayController
	workers        int
	// dynamic writes the status of Switchyard's own kinds; nil skips them.
	dynamic dynamic.Interface

	total counters

	// written remembers, per object, the object the API server returned for the
	// writer's last update, under the resourceVersion the cache showed then. Until
	// the cache catches up with that write, it still shows that version; the writer
	// then compares with (and updates) the returned object instead, rather than
	// writing the same status again and meeting a conflict.
	mu      sync.Mutex
	written map[objectKey]writtenObject
	applies uint64
}

type objectKey struct {
	kind string
	key  types.NamespacedName
}

type writtenObject struct {
	replaced string
	object   any
	// apply is the number of the last Apply that wrote or used the record; records
	// an Apply did not touch belong to objects that are gone and are dropped.
	apply uint64
}

type counters struct {
	writes, unchanged, conflicts, errors atomic.Int64
}

func (c *counters) add(o *counters) {
	c.writes.Add(o.writes.Load())
	c.unchanged.Add(o.unchanged.Load())
	c.conflicts.Add(o.conflicts.Load())
	c.errors.Add(o.errors.Load())
}

func (c *counters) snapshot() Counters {
	return Counters{Writes: c.writes.Load(), Unchanged: c.unchanged.Load(),
		Conflicts: c.conflicts.Load(), Errors: c.errors.Load()}
}

// NewWriter returns a Writer that updates status through client. A nil logger means
// slog.Default().
func NewWriter(client gatewayclientset.Interface, logger *slog.Logger, opts ...Option) *Writer {
	if logger == nil {
		logger = slog.Default()
	}
	w := &Writer{client: client, logger: logger, controllerName: translate.ControllerName,
		workers: DefaultWorkers, written: map[objectKey]writtenObject{}}
	for _, o := range opts {
		o(w)
	}
	return w
}

// Counters returns what the writer did since it was made.
func (w *Writer) Counters() Counters { return w.total.snapshot() }

// Apply writes the status in out to every object whose current status differs,
// and returns what this call did. A failure is logged and counted, and never stops
// the other objects; since Apply always compares with the current objects, the next
// call retries it. Callers that translate rarely should call Apply again after a
// back-off when the result has Errors. Apply returns early when ctx is done.
func (w *Writer) Apply(ctx context.Context, out *translate.Output, current Objects) Counters {
	if out == nil || current == nil {
		return Counters{}
	}
	w.mu.Lock()
	w.applies++
	w.mu.Unlock()
	var run counters
	var jobs []job
	for name, desired := range out.GatewayClasses {
		jobs = plan(jobs, &run, w.gatewayClassTarget(name, desired, current))
	}
	for key, desired := range out.Gateways {
		jobs = plan(jobs, &run, w.gatewayTarget(key, desired, current))
	}
	if sets, ok := current.(ListenerSetObjects); ok {
		for key, desired := range out.ListenerSets {
			jobs = plan(jobs, &run, w.listenerSetTarget(key, desired, sets))
		}
	}
	for _, route := range current.HTTPRoutes() {
		if route == nil {
			continue
		}
		key := types.NamespacedName{Namespace: route.Namespace, Name: route.Name}
		desired, ok := out.HTTPRoutes[key]
		if !ok && !hasParentOf(route.Status, w.controllerName) {
			continue
		}
		jobs = plan(jobs, &run, w.routeTarget(route, desired.Parents))
	}
	for _, policy := range current.BackendTLSPolicies() {
		if policy == nil {
			continue
		}
		key := types.NamespacedName{Namespace: policy.Namespace, Name: policy.Name}
		desired, ok := out.BackendTLSPolicies[key]
		if !ok && !hasAncestorOf(policy.Status, w.controllerName) {
			continue
		}
		jobs = plan(jobs, &run, w.backendTLSPolicyTarget(policy, desired.Ancestors))
	}
	if own, ok := current.(SwitchyardObjects); ok && w.dynamic != nil {
		jobs = w.planSwitchyard(jobs, &run, out, own)
	}
	w.runAll(ctx, jobs, &run)
	w.forgetUntouched()
	w.total.add(&run)
	return run.snapshot()
}

// runAll runs the jobs on the writer's workers and waits for them.
func (w *Writer) runAll(ctx context.Context, jobs []job, run *counters) {
	queue := make(chan job)
	var wg sync.WaitGroup
	for range min(w.workers, len(jobs)) {
		wg.Go(func() {
			for job := range queue {
				job(ctx, run)
			}
		})
	}
	for _, job := range jobs {
		if ctx.Err() != nil {
			break
		}
		queue <- job
	}
	close(queue)
	wg.Wait()
}

// job is one status update to send.
type job func(ctx context.Context, run *counters)

// target is one object whose status may need writing.
type target[O any, S any] struct {
	w    *Writer
	kind string
	key  types.NamespacedName
	// object is the newest known state of the object (see latest).
	object O
	// cachedVersion is the resourceVersion the cache shows. A write is remembered
	// under it: while the cache still shows it, the written object is newer.
	cachedVersion string
	// merge returns the status to write onto an object and whether it differs from
	// the object's own.
	merge func(O) (S, bool)
	// get reads the object from the API server.
	get func(context.Context) (O, error)
	// update writes the status onto a copy of the object.
	update func(context.Context, O, S) (O, error)
}

// statusClient is the part of a typed Gateway API client that status writes use.
type statusClient[O any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (O, error)
	UpdateStatus(ctx context.Context, obj O, opts metav1.UpdateOptions) (O, error)
}

// newTarget builds the status write of the cached object: merge decides the status
// to write onto an object, and withStatus returns a shallow copy of an object with a
// status (enough for the client, which only reads it; the cached object must keep
// its own status).
func newTarget[O interface{ GetResourceVersion() string }, S any](w *Writer, kind string, key types.NamespacedName, cached O,
	client statusClient[O], merge func(O) (S, bool), withStatus func(O, S) O) *target[O, S] {
	version := cached.GetResourceVersion()
	return &target[O, S]{
		w: w, kind: kind, key: key,
		object:        latest(w, kind, key, cached, version),
		cachedVersion: version,
		merge:         merge,
		get: func(ctx context.Context) (O, error) {
			return client.Get(ctx, key.Name, metav1.GetOptions{})
		},
		update: func(ctx context.Context, o O, st S) (O, error) {
			return client.UpdateStatus(ctx, withStatus(o, st), metav1.UpdateOptions{})
		},
	}
}

// plan decides whether t needs a write: if so it adds the write to jobs, otherwise it
// counts t as unchanged. A nil target (nothing to write) adds nothing.
func plan[O any, S any](jobs []job, run *counters, t *target[O, S]) []job {
	if t == nil {
		return jobs
	}
	status, changed := t.merge(t.object)
	if !changed {
		run.unchanged.Add(1)
		return jobs
	}
	return append(jobs, func(ctx context.Context, run *counters) { t.write(ctx, run, status) })
}

// write updates the status, reading the object again and merging anew after a
// conflict, up to maxAttempts updates.
func (t *target[O, S]) write(ctx context.Context, run *counters, status S) {
	obj := t.object
	for attempt := 1; ; attempt++ {
		updated, err := t.update(ctx, obj, status)
		if err == nil {
			run.writes.Add(1)
			if t.cachedVersion != "" {
				t.w.remember(objectKey{t.kind, t.key}, t.cachedVersion, updated)
			}
			return
		}
		if apierrors.IsNotFound(err) {
			return // deleted meanwhile: there is nothing to report on
		}
		if !apierrors.IsConflict(err) || attempt == maxAttempts || ctx.Err() != nil {
			run.errors.Add(1)
			t.w.logger.Warn("status update failed", "kind", t.kind, "object", t.key.String(), "attempts", attempt, "error", err)
			return
		}
		run.conflicts.Add(1)
		fresh, err := t.get(ctx)
		if apierrors.IsNotFound(err) {
			return
		}
		if err != nil {
			run.errors.Add(1)
			t.w.logger.Warn("reading an object after a status conflict failed", "kind", t.kind, "object", t.key.String(), "error", err)
			return
		}
		var changed bool
		if status, changed = t.merge(fresh); !changed {
			run.unchanged.Add(1)
			return
		}
		obj = fresh
	}
}

// remember records the object the API server returned for an update made while the
// cache showed the resourceVersion replaced.
func (w *Writer) remember(k objectKey, replaced string, updated any) {
	w.mu.Lock()
	w.written[k] = writtenObject{replaced: replaced, object: updated, apply: w.applies}
	w.mu.Unlock()
}

// forgetUntouched drops the records of objects the current Apply did not visit.
func (w *Writer) forgetUntouched() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, rec := range w.written {
		if rec.apply != w.applies {
			delete(w.written, k)
		}
	}
}

// latest returns the newest known state of a cached object: the object returned by
// the writer's own update while the cache still shows the version it showed then,
// else the cached object. Records the cache has caught up with are dropped.
func latest[O any](w *Writer, kind string, key types.NamespacedName, cached O, version string) O {
	k := objectKey{kind, key}
	w.mu.Lock()
	defer w.mu.Unlock()
	rec, ok := w.written[k]
	if !ok || version == "" {
		return cached
	}
	if obj, isO := rec.object.(O); isO && rec.replaced == version {
		rec.apply = w.applies
		w.written[k] = rec
		return obj
	}
	delete(w.written, k)
	return cached
}
