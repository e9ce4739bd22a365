package translate

import (
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// conditionSet collects the conditions of one object; setting a type twice keeps the
// last value, so later, more specific checks can overrule earlier defaults.
type conditionSet struct {
	generation int64
	now        time.Time
	byType     map[string]metav1.Condition
}

func newConditionSet(generation int64, now time.Time) *conditionSet {
	return &conditionSet{generation: generation, now: now, byType: map[string]metav1.Condition{}}
}

// set records a condition of the given type.
func (c *conditionSet) set(condType string, ok bool, reason, message string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	c.byType[condType] = metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: c.generation,
		LastTransitionTime: metav1.NewTime(c.now),
	}
}

// has reports whether a condition of the type has been recorded.
func (c *conditionSet) has(condType string) bool {
	_, ok := c.byType[condType]
	return ok
}

// isTrue reports whether the condition of the type is recorded with status True.
func (c *conditionSet) isTrue(condType string) bool {
	cond, ok := c.byType[condType]
	return ok && cond.Status == metav1.ConditionTrue
}

// list returns the conditions sorted by type, so equal inputs give equal status.
func (c *conditionSet) list() []metav1.Condition {
	out := make([]metav1.Condition, 0, len(c.byType))
	for _, cond := range c.byType {
		out = append(out, cond)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}
