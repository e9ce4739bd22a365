package rollout

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/controller/translate"
)

// ConditionReady is the Rollout condition that says whether it runs as planned:
// True while progressing, paused or promoted, False when aborted or unusable.
const ConditionReady = "Ready"

// ReasonInvalid is the Ready reason of a rollout whose plan cannot be used.
const ReasonInvalid = "Invalid"

// PromotedWarning ends the message of a promoted Rollout: the weights it put in force
// last only as long as the Rollout does.
const PromotedWarning = "Deleting this Rollout returns the traffic to the HTTPRoute's own weights: " +
	"send the HTTPRoute to the canary before deleting it."

// stale reports whether a stored status does not describe the rollout's current
// spec, so that the rollout starts again from its first step: there is no status,
// the spec changed since (a new generation), or it does not fit the plan.
func stale(status v1alpha1.RolloutStatus, generation int64, plan Plan) bool {
	switch v1alpha1.RolloutPhase(status.Phase) {
	case v1alpha1.RolloutProgressing, v1alpha1.RolloutPaused, v1alpha1.RolloutPromoted, v1alpha1.RolloutAborted:
	default:
		return true
	}
	return status.ObservedGeneration != generation || status.CurrentStep < 0 ||
		int(status.CurrentStep) >= len(plan.Steps)
}

// stateOf is the machine state a (not stale) status stands for. A status without
// stepStartedAt starts its step's pause now.
func stateOf(status v1alpha1.RolloutStatus, judged bool, now time.Time) State {
	st := State{Phase: Phase(status.Phase), Step: int(status.CurrentStep), CanaryWeight: status.CanaryWeight,
		StepStartedAt: now, Judged: judged, Message: status.Message}
	if status.StepStartedAt != nil {
		st.StepStartedAt = status.StepStartedAt.Time
	}
	return st
}

// statusOf is the status a machine state stands for, with the conditions updated
// from those of the previous status.
func statusOf(plan Plan, st State, generation int64, accepted metav1.Condition, now time.Time,
	previous []metav1.Condition) v1alpha1.RolloutStatus {
	status := v1alpha1.RolloutStatus{
		Phase:              v1alpha1.RolloutPhase(st.Phase),
		CurrentStep:        int32(st.Step),
		CanaryWeight:       st.CanaryWeight,
		StepStartedAt:      &metav1.Time{Time: st.StepStartedAt},
		Message:            st.Message,
		ObservedGeneration: generation,
	}
	if st.Phase == Promoted && !strings.HasSuffix(status.Message, PromotedWarning) {
		status.Message += ". " + PromotedWarning
	}
	status.Conditions = conditionsWith(previous, generation, now, accepted, readyOf(plan, st))
	return status
}

// withConditions returns status with its conditions replaced, and nothing else
// changed: not even observedGeneration, which describes the phase and step.
func withConditions(status v1alpha1.RolloutStatus, generation int64, accepted, ready metav1.Condition,
	now time.Time) v1alpha1.RolloutStatus {
	out := *status.DeepCopy()
	out.Conditions = conditionsWith(status.Conditions, generation, now, accepted, ready)
	return out
}

// conditionsWith returns a copy of previous with conds set. A condition keeps its
// lastTransitionTime while its status stays the same.
func conditionsWith(previous []metav1.Condition, generation int64, now time.Time, conds ...metav1.Condition) []metav1.Condition {
	out := make([]metav1.Condition, len(previous))
	copy(out, previous)
	for _, c := range conds {
		c.ObservedGeneration = generation
		if c.LastTransitionTime.IsZero() {
			c.LastTransitionTime = metav1.NewTime(now)
		}
		meta.SetStatusCondition(&out, c)
	}
	return out
}

// readyOf is the Ready condition of an accepted rollout; its message says what a
// progressing rollout waits for.
func readyOf(plan Plan, st State) metav1.Condition {
	c := metav1.Condition{Type: ConditionReady, Status: metav1.ConditionTrue, Reason: string(st.Phase)}
	switch st.Phase {
	case Aborted:
		c.Status, c.Message = metav1.ConditionFalse, st.Message
	case Progressing:
		c.Message = describeWait(plan, st)
	case Paused:
		c.Message = "paused: resume or promote it through the admin API"
	case Promoted:
		c.Message = PromotedWarning
	}
	return c
}

// notReady is the Ready condition of a rollout that cannot move.
func notReady(res translate.RolloutResult, planErr error) metav1.Condition {
	c := metav1.Condition{Type: ConditionReady, Status: metav1.ConditionFalse}
	if planErr != nil {
		c.Reason, c.Message = ReasonInvalid, planErr.Error()
		return c
	}
	c.Reason = res.Accepted.Reason
	if c.Reason == "" {
		c.Reason = "NotAccepted"
	}
	c.Message = "not accepted: " + res.Accepted.Message
	return c
}

// waitingFor says what a progressing rollout waits for before its next step:
// "analysis", "pause" or "promote".
func waitingFor(plan Plan, st State) string {
	step := plan.Steps[st.Step]
	last := st.Step == len(plan.Steps)-1
	switch {
	case plan.Analysis != nil && !st.Judged && step.Weight > 0:
		return "analysis"
	case !last && !step.HasPause:
		return "promote"
	case step.HasPause:
		return "pause"
	}
	return ""
}

// describeWait says in words what a progressing rollout waits for.
func describeWait(plan Plan, st State) string {
	weight := fmt.Sprintf("%d%% to the canary", st.CanaryWeight)
	switch waitingFor(plan, st) {
	case "analysis":
		a := plan.Analysis
		return fmt.Sprintf("%s; waiting for an analysis window of %v with at least %d canary requests and no breach",
			weight, a.Interval, a.MinRequests)
	case "promote":
		return weight + "; waiting for a manual promote"
	case "pause":
		return fmt.Sprintf("%s until %s", weight,
			st.StepStartedAt.Add(plan.Steps[st.Step].Pause).UTC().Format(time.RFC3339))
	}
	return weight
}
