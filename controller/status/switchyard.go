package status

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/controller/translate"
)

// The kinds of Switchyard's own API the writer updates, as they appear in logs and
// in the objects it sends.
const (
	kindTrafficPolicy = "TrafficPolicy"
	kindRollout       = "Rollout"
)

// The resources of Switchyard's own kinds, which have no generated clientset.
var (
	trafficPolicyResource = v1alpha1.GroupVersion.WithResource("trafficpolicies")
	rolloutResource       = v1alpha1.GroupVersion.WithResource("rollouts")
)

// conditionAccepted is the Rollout condition that translation decides; the other
// Rollout status fields and conditions belong to the rollout driver.
const conditionAccepted = "Accepted"

// SwitchyardObjects is implemented by Objects that also serve Switchyard's own kinds
// (kube.Source and InputObjects do). The writer writes TrafficPolicy and Rollout
// status only through Objects that implement it, and only with a dynamic client
// (WithDynamicClient).
type SwitchyardObjects interface {
	Objects
	// TrafficPolicies returns every TrafficPolicy, so that this controller's
	// ancestors can be removed from policies that no longer reach its Gateways.
	TrafficPolicies() []*v1alpha1.TrafficPolicy
	// Rollouts returns every Rollout.
	Rollouts() []*v1alpha1.Rollout
}

// WithDynamicClient sets the client that writes the status of Switchyard's own kinds
// (TrafficPolicy, Rollout), which have no typed client. Without it their status is not
// written.
func WithDynamicClient(client dynamic.Interface) Option {
	return func(w *Writer) { w.dynamic = client }
}

// planSwitchyard adds the status writes of TrafficPolicies and Rollouts.
func (w *Writer) planSwitchyard(jobs []job, run *counters, out *translate.Output, current SwitchyardObjects) []job {
	for _, policy := range current.TrafficPolicies() {
		if policy == nil {
			continue
		}
		key := types.NamespacedName{Namespace: policy.Namespace, Name: policy.Name}
		desired, ok := out.TrafficPolicies[key]
		if !ok && !hasAncestorOf(policy.Status, w.controllerName) {
			continue
		}
		jobs = plan(jobs, run, w.trafficPolicyTarget(policy, desired.Ancestors))
	}
	for _, rollout := range current.Rollouts() {
		if rollout == nil {
			continue
		}
		result, ok := out.Rollouts[types.NamespacedName{Namespace: rollout.Namespace, Name: rollout.Name}]
		if !ok || result.Accepted.Type == "" {
			continue
		}
		jobs = plan(jobs, run, w.rolloutTarget(rollout, result.Accepted))
	}
	return jobs
}

// trafficPolicyTarget is the status write of a TrafficPolicy: desired are this
// controller's ancestors, merged as those of a BackendTLSPolicy are.
func (w *Writer) trafficPolicyTarget(cached *v1alpha1.TrafficPolicy, desired []gwv1.PolicyAncestorStatus) *target[*v1alpha1.TrafficPolicy, gwv1.PolicyStatus] {
	key := types.NamespacedName{Namespace: cached.Namespace, Name: cached.Name}
	client := typedDynamic[v1alpha1.TrafficPolicy]{resource: w.dynamic.Resource(trafficPolicyResource).Namespace(key.Namespace),
		gvk: v1alpha1.GroupVersion.WithKind(kindTrafficPolicy)}
	return newTarget(w, kindTrafficPolicy, key, cached, statusClient[*v1alpha1.TrafficPolicy](client),
		func(o *v1alpha1.TrafficPolicy) (gwv1.PolicyStatus, bool) {
			merged := mergePolicyStatus(o.Namespace, o.Status, desired, w.controllerName)
			return merged, !sameStatus(o.Status, merged)
		},
		func(o *v1alpha1.TrafficPolicy, st gwv1.PolicyStatus) *v1alpha1.TrafficPolicy {
			c := *o
			c.Status = st
			return &c
		})
}

// rolloutTarget is the status write of a Rollout's Accepted condition; the rest of
// its status is the rollout driver's and is kept as the object has it.
func (w *Writer) rolloutTarget(cached *v1alpha1.Rollout, accepted metav1.Condition) *target[*v1alpha1.Rollout, v1alpha1.RolloutStatus] {
	key := types.NamespacedName{Namespace: cached.Namespace, Name: cached.Name}
	client := typedDynamic[v1alpha1.Rollout]{resource: w.dynamic.Resource(rolloutResource).Namespace(key.Namespace),
		gvk: v1alpha1.GroupVersion.WithKind(kindRollout)}
	return newTarget(w, kindRollout, key, cached, statusClient[*v1alpha1.Rollout](client),
		func(o *v1alpha1.Rollout) (v1alpha1.RolloutStatus, bool) {
			merged := *o.Status.DeepCopy()
			merged.Conditions = setCondition(o.Status.Conditions, accepted)
			return merged, !sameStatus(o.Status, merged)
		},
		func(o *v1alpha1.Rollout, st v1alpha1.RolloutStatus) *v1alpha1.Rollout {
			c := *o
			c.Status = st
			return &c
		})
}

// setCondition returns a copy of conditions with c in place of the condition of its
// type (or added at the end), keeping that condition's lastTransitionTime when its
// status did not change.
func setCondition(conditions []metav1.Condition, c metav1.Condition) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(conditions)+1)
	replaced := false
	for _, existing := range conditions {
		if existing.Type != c.Type {
			out = append(out, existing)
			continue
		}
		if replaced {
			continue // a duplicate type, which the API's list-map forbids
		}
		next := c
		if existing.Status == c.Status {
			next.LastTransitionTime = existing.LastTransitionTime
		}
		out = append(out, next)
		replaced = true
	}
	if !replaced {
		out = append(out, c)
	}
	return out
}

// typedDynamic reads and writes one resource of typed objects of type T through the
// dynamic client, converting to and from unstructured objects.
type typedDynamic[T any] struct {
	resource dynamic.ResourceInterface
	gvk      schema.GroupVersionKind
}

// Get reads the object.
func (c typedDynamic[T]) Get(ctx context.Context, name string, opts metav1.GetOptions) (*T, error) {
	u, err := c.resource.Get(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	return fromUnstructured[T](u)
}

// UpdateStatus writes the object's status (the API server ignores the rest), with
// the object's resourceVersion as precondition.
func (c typedDynamic[T]) UpdateStatus(ctx context.Context, obj *T, opts metav1.UpdateOptions) (*T, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting a %s: %w", c.gvk.Kind, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(c.gvk)
	updated, err := c.resource.UpdateStatus(ctx, u, opts)
	if err != nil {
		return nil, err
	}
	return fromUnstructured[T](updated)
}

func fromUnstructured[T any](u *unstructured.Unstructured) (*T, error) {
	obj := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return nil, fmt.Errorf("converting %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return obj, nil
}
