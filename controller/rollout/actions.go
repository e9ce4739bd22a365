package rollout

import (
	"context"
	"fmt"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/controller/translate"
	"github.com/switchyard-dev/switchyard/gateway/admin"
)

// ActRollout applies an operator's action to a Rollout (admin.Rollouts). Errors wrap
// admin.ErrNotFound for an unknown Rollout, admin.ErrInvalid for an unknown action,
// and admin.ErrConflict for an action the rollout cannot take now (it is not
// accepted, or its phase does not allow it).
func (d *Driver) ActRollout(ctx context.Context, namespace, name, action string, full bool) (admin.RolloutView, error) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	if !known(Action(action)) {
		return admin.RolloutView{}, fmt.Errorf("%w: unknown action %q", admin.ErrInvalid, action)
	}
	ro := find(d.opts.Rollouts(), key)
	if ro == nil {
		return admin.RolloutView{}, fmt.Errorf("%w: there is no Rollout %s", admin.ErrNotFound, key)
	}
	res, ok := d.opts.Results()[key]
	if !ok || res.Accepted.Status != metav1.ConditionTrue {
		return admin.RolloutView{}, fmt.Errorf("%w: Rollout %s is not accepted%s", admin.ErrConflict, key, why(res, ok))
	}
	plan, err := PlanOf(ro.Spec)
	if err != nil {
		return admin.RolloutView{}, fmt.Errorf("%w: Rollout %s: %v", admin.ErrConflict, key, err)
	}
	d.mu.Lock()
	view, retranslate, err := d.act(ctx, ro, res, plan, Action(action), full)
	d.mu.Unlock()
	if retranslate && d.opts.OnChange != nil {
		d.opts.OnChange()
	}
	if err == nil {
		d.opts.Logger.Info("rollout action", "rollout", key, "action", action, "full", full,
			"phase", view.Phase, "weight", view.CanaryWeight)
	}
	return view, err
}

// act applies an action under the driver's lock.
func (d *Driver) act(ctx context.Context, ro *v1alpha1.Rollout, res translate.RolloutResult, plan Plan,
	action Action, full bool) (admin.RolloutView, bool, error) {
	key := types.NamespacedName{Namespace: ro.Namespace, Name: ro.Name}
	e, err := d.entry(ro)
	if err != nil {
		return admin.RolloutView{}, false, fmt.Errorf("loading the status of Rollout %s: %w", key, err)
	}
	now := d.opts.Now()
	st, _ := d.current(ro, plan, e, now)
	next, err := Act(plan, st, action, full, now)
	if err != nil {
		return admin.RolloutView{}, false, fmt.Errorf("%w: Rollout %s: %v", admin.ErrConflict, key, err)
	}
	// Whatever the action, the next analysis window starts afresh: traffic before a
	// pause, or at another weight, says nothing about the canary now.
	e.window, e.judged = window{}, next.Judged
	retranslate := d.commit(ctx, key, e, statusOf(plan, next, ro.Generation, res.Accepted, now, e.status.Conditions))
	view := d.view(ro, res, true, e)
	if e.dirty {
		return view, retranslate, fmt.Errorf("the %s of Rollout %s took effect but its status could not be stored; "+
			"the driver tries again at its next tick", action, key)
	}
	return view, retranslate, nil
}

// ListRollouts returns every Rollout as the driver sees it (admin.Rollouts).
func (d *Driver) ListRollouts() []admin.RolloutView {
	rollouts, results := d.opts.Rollouts(), d.opts.Results()
	views := make([]admin.RolloutView, 0, len(rollouts))
	d.mu.Lock()
	for _, ro := range rollouts {
		key := types.NamespacedName{Namespace: ro.Namespace, Name: ro.Name}
		e, err := d.entry(ro)
		if err != nil {
			e = &entry{status: v1alpha1.RolloutStatus{Message: "loading its status: " + err.Error()}}
		}
		res, ok := results[key]
		views = append(views, d.view(ro, res, ok, e))
	}
	d.mu.Unlock()
	sort.Slice(views, func(i, j int) bool {
		if views[i].Namespace != views[j].Namespace {
			return views[i].Namespace < views[j].Namespace
		}
		return views[i].Name < views[j].Name
	})
	return views
}

// view is what the admin API shows of one rollout.
func (d *Driver) view(ro *v1alpha1.Rollout, res translate.RolloutResult, translated bool, e *entry) admin.RolloutView {
	status := e.status
	v := admin.RolloutView{
		Namespace: ro.Namespace, Name: ro.Name,
		Accepted:      translated && res.Accepted.Status == metav1.ConditionTrue,
		Phase:         string(status.Phase),
		CurrentStep:   status.CurrentStep,
		Steps:         len(ro.Spec.Steps),
		CanaryWeight:  status.CanaryWeight,
		StableBackend: res.StableBackend,
		CanaryBackend: res.CanaryBackend,
		Message:       status.Message,
		LastWindow:    e.last,
	}
	if status.StepStartedAt != nil {
		v.StepStartedAt = status.StepStartedAt.Time
	}
	if !v.Accepted {
		v.Message = "not accepted" + why(res, translated)
		return v
	}
	plan, err := PlanOf(ro.Spec)
	if err != nil || stale(status, ro.Generation, plan) || status.Phase != v1alpha1.RolloutProgressing {
		return v
	}
	st := stateOf(status, e.judged, d.opts.Now())
	v.Waiting = waitingFor(plan, st)
	if v.Waiting == "pause" {
		v.NextStepAt = st.StepStartedAt.Add(plan.Steps[st.Step].Pause)
	}
	return v
}

// why says why a rollout is not accepted, for messages.
func why(res translate.RolloutResult, translated bool) string {
	if !translated {
		return ": the configuration has not been translated since it appeared"
	}
	return fmt.Sprintf(" (%s): %s", res.Accepted.Reason, res.Accepted.Message)
}

func known(a Action) bool {
	switch a {
	case ActPromote, ActPause, ActResume, ActAbort:
		return true
	}
	return false
}

func find(rollouts []*v1alpha1.Rollout, key types.NamespacedName) *v1alpha1.Rollout {
	for _, ro := range rollouts {
		if ro.Namespace == key.Namespace && ro.Name == key.Name {
			return ro
		}
	}
	return nil
}
