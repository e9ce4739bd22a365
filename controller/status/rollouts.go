package status

import (
	"context"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// ErrNotLeading is returned by RolloutStore.Save on a replica that does not lead:
// only the leader writes to the API server.
var ErrNotLeading = errors.New("status: not the leader; the Rollout status is not written")

// RolloutCache gives the store the Rollouts as the informer cache holds them.
// kube.Source implements it.
type RolloutCache interface {
	// Rollout returns the cached Rollout, or nil. The store never modifies it.
	Rollout(key types.NamespacedName) *v1alpha1.Rollout
}

// RolloutStore keeps the rollout driver's state in the Rollouts' status on the API
// server. Load reads the informer cache; Save writes the status subresource. The
// driver owns every status field but the Accepted condition, which the status Writer
// keeps from translation: Save leaves it as it is, and the Writer changes nothing
// else. Its methods are safe for concurrent use.
type RolloutStore struct {
	client  dynamic.Interface
	cache   RolloutCache
	leading func() bool

	// saved remembers, per Rollout, the object the API server returned for the last
	// Save, under the resourceVersion the cache showed then, so that Load returns what
	// was saved until the cache catches up (see Writer.written).
	mu    sync.Mutex
	saved map[types.NamespacedName]savedRollout
}

type savedRollout struct {
	replaced string
	object   *v1alpha1.Rollout
}

// NewRolloutStore returns a store that reads cache and writes through client.
// leading reports whether this replica may write; nil means always.
func NewRolloutStore(client dynamic.Interface, cache RolloutCache, leading func() bool) *RolloutStore {
	if leading == nil {
		leading = func() bool { return true }
	}
	return &RolloutStore{client: client, cache: cache, leading: leading, saved: map[types.NamespacedName]savedRollout{}}
}

// Load returns the Rollout's status and whether the Rollout exists. The status is
// the newest the store knows: its own last Save while the cache has not caught up
// with it, else the cache's. The error is always nil: the cache cannot fail.
func (s *RolloutStore) Load(key types.NamespacedName) (v1alpha1.RolloutStatus, bool, error) {
	obj := s.latest(key, s.cache.Rollout(key))
	if obj == nil {
		return v1alpha1.RolloutStatus{}, false, nil
	}
	return *obj.Status.DeepCopy(), true, nil
}

// latest returns the newest known state of the Rollout the cache holds as cached
// (nil when it does not hold it). Records the cache has caught up with are dropped.
func (s *RolloutStore) latest(key types.NamespacedName, cached *v1alpha1.Rollout) *v1alpha1.Rollout {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.saved[key]
	if !ok {
		return cached
	}
	if cached != nil && rec.replaced == cached.ResourceVersion {
		return rec.object
	}
	delete(s.saved, key)
	return cached
}

// Save writes the driver's part of the Rollout's status: phase, currentStep,
// canaryWeight, stepStartedAt, message, observedGeneration and every condition but
// Accepted. Nothing is written when the status already is so. A conflict (someone
// else wrote the Rollout meanwhile) is retried on a fresh read, up to a bound. A
// Rollout that is gone gives an error for which apierrors.IsNotFound is true.
func (s *RolloutStore) Save(ctx context.Context, key types.NamespacedName, st v1alpha1.RolloutStatus) error {
	if !s.leading() {
		return ErrNotLeading
	}
	resource := s.client.Resource(rolloutResource).Namespace(key.Namespace)
	client := typedDynamic[v1alpha1.Rollout]{resource: resource, gvk: v1alpha1.GroupVersion.WithKind(kindRollout)}
	cached := s.cache.Rollout(key)
	obj := s.latest(key, cached)
	cachedVersion := ""
	if cached != nil {
		cachedVersion = cached.ResourceVersion
	}
	for attempt := 1; ; attempt++ {
		if obj == nil {
			fresh, err := client.Get(ctx, key.Name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("status: reading Rollout %s: %w", key, err)
			}
			obj = fresh
		}
		merged := withDriverStatus(obj.Status, st)
		if sameStatus(obj.Status, merged) {
			return nil
		}
		c := *obj
		c.Status = merged
		updated, err := client.UpdateStatus(ctx, &c, metav1.UpdateOptions{})
		if err == nil {
			s.remember(key, cachedVersion, updated)
			return nil
		}
		if !apierrors.IsConflict(err) || attempt == maxAttempts || ctx.Err() != nil {
			return fmt.Errorf("status: writing Rollout %s (attempt %d): %w", key, attempt, err)
		}
		obj = nil
	}
}

// remember records what a Save wrote, while the cache showed the version replaced.
func (s *RolloutStore) remember(key types.NamespacedName, replaced string, updated *v1alpha1.Rollout) {
	if replaced == "" {
		return // the cache did not hold the Rollout; it will show the write when it does
	}
	s.mu.Lock()
	s.saved[key] = savedRollout{replaced: replaced, object: updated}
	s.mu.Unlock()
}

// withDriverStatus is the status to write for a Save: the driver's fields and
// conditions from st, and the Accepted condition from current. Conditions keep their
// place and, while their status does not change, their lastTransitionTime; new ones
// are added at the end, so that saving an unchanged status changes nothing.
func withDriverStatus(current, st v1alpha1.RolloutStatus) v1alpha1.RolloutStatus {
	out := *st.DeepCopy()
	out.Conditions = nil
	for _, c := range current.Conditions {
		if c.Type == conditionAccepted {
			out.Conditions = append(out.Conditions, c)
		} else if d := findCondition(st.Conditions, c.Type); d != nil {
			if d.Status == c.Status {
				d.LastTransitionTime = c.LastTransitionTime
			}
			out.Conditions = append(out.Conditions, *d)
		}
	}
	for _, d := range st.Conditions {
		if d.Type != conditionAccepted && findCondition(current.Conditions, d.Type) == nil {
			out.Conditions = append(out.Conditions, d)
		}
	}
	return out
}

// findCondition returns a copy of the condition of that type, or nil.
func findCondition(conditions []metav1.Condition, typ string) *metav1.Condition {
	for _, c := range conditions {
		if c.Type == typ {
			return &c
		}
	}
	return nil
}
