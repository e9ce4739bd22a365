// Package rollout drives Rollouts. Its state machine (Start, Judge, Advance, Act)
// decides which step is in force, when to move to the next, and when to abort, given
// the canary's measured errors and latency. It is pure: the caller supplies the time
// and the measurements and stores the state, so that the same decisions come out of a
// controller, a standalone gateway, or a test. The Driver is that caller: it
// measures the canary in analysis windows, applies the machine, and keeps each
// Rollout's status in a Store, for a controller and a standalone gateway alike.
package rollout

import (
	"fmt"
	"time"
)

// Phase is where a rollout stands.
type Phase string

// The phases of a rollout.
const (
	Progressing Phase = "Progressing"
	Paused      Phase = "Paused"
	Promoted    Phase = "Promoted"
	Aborted     Phase = "Aborted"
)

// Step is a canary weight and how long to hold it. Without Pause the step waits for
// a manual promote, except the last, which completes the rollout.
type Step struct {
	Weight int32
	Pause  time.Duration
	// HasPause says that Pause is set (a zero pause advances at once).
	HasPause bool
}

// Analysis is when the canary fails.
type Analysis struct {
	// Interval is how long each measurement window lasts.
	Interval time.Duration
	// MinRequests is how many canary requests a window needs to be judged.
	MinRequests int64
	// MaxErrorRate is the highest failing share, 0 to 1; negative disables it.
	MaxErrorRate float64
	// MaxLatencyP99 is the highest p99 latency; zero disables it.
	MaxLatencyP99 time.Duration
}

// Plan is a rollout's steps and analysis.
type Plan struct {
	Steps    []Step
	Analysis *Analysis
}

// State is where a rollout stands; the caller persists it.
type State struct {
	Phase         Phase
	Step          int
	CanaryWeight  int32
	StepStartedAt time.Time
	// Judged says that the current step has had a passing analysis window.
	Judged bool
	// Message says why the rollout is where it is.
	Message string
}

// Sample is the canary's traffic over one analysis window, over all replicas.
type Sample struct {
	Requests int64
	// Errors are 5xx answers, connection failures and timeouts.
	Errors int64
	P99    time.Duration
}

// Start is the state of a new rollout.
func Start(plan Plan, now time.Time) State {
	return State{Phase: Progressing, CanaryWeight: plan.Steps[0].Weight, StepStartedAt: now,
		Message: "step 1 of " + fmt.Sprint(len(plan.Steps))}
}

// Judge applies one analysis window to a progressing rollout: a breach aborts it to
// a weight of zero; a window with enough requests and no breach lets the step
// advance; a window with too few requests decides nothing.
func Judge(plan Plan, st State, s Sample) State {
	a := plan.Analysis
	if st.Phase != Progressing || a == nil || s.Requests < max(a.MinRequests, 1) {
		return st
	}
	rate := float64(s.Errors) / float64(s.Requests)
	switch {
	case a.MaxErrorRate >= 0 && rate > a.MaxErrorRate:
		return abort(st, fmt.Sprintf("canary error rate %.2f%% over %.2f%% (%d of %d requests)", rate*100, a.MaxErrorRate*100, s.Errors, s.Requests))
	case a.MaxLatencyP99 > 0 && s.P99 > a.MaxLatencyP99:
		return abort(st, fmt.Sprintf("canary p99 latency %v over %v", s.P99, a.MaxLatencyP99))
	}
	st.Judged = true
	return st
}

// Advance moves a progressing rollout on when its step's pause is over (and, with
// an analysis, the step has been judged): to the next step, or to Promoted after the
// last. A last step without a pause completes as soon as it may; one with a pause
// holds its weight for the pause first, under analysis like any other step.
func Advance(plan Plan, st State, now time.Time) State {
	if st.Phase != Progressing {
		return st
	}
	step := plan.Steps[st.Step]
	last := st.Step == len(plan.Steps)-1
	// A step that sends the canary no weighted traffic has nothing to judge (only
	// header-matched requests, if any, reach it), so it waits for its pause alone.
	if plan.Analysis != nil && !st.Judged && step.Weight > 0 {
		return st
	}
	if last && !step.HasPause {
		return promote(plan, st, now, false)
	}
	if !step.HasPause || now.Sub(st.StepStartedAt) < step.Pause {
		return st
	}
	if last {
		return promote(plan, st, now, false)
	}
	return next(plan, st, now)
}

// Action is an operator's command.
type Action string

// The actions an operator may take.
const (
	ActPromote Action = "promote"
	ActPause   Action = "pause"
	ActResume  Action = "resume"
	ActAbort   Action = "abort"
)

// Act applies an operator's command. Promote advances one step (full: to 100%).
func Act(plan Plan, st State, action Action, full bool, now time.Time) (State, error) {
	if st.Phase == Promoted || st.Phase == Aborted {
		return st, fmt.Errorf("the rollout is %s; nothing can change it", st.Phase)
	}
	switch action {
	case ActPromote:
		if full || st.Step == len(plan.Steps)-1 {
			return promote(plan, st, now, full), nil
		}
		return next(plan, st, now), nil
	case ActPause:
		st.Phase, st.Message = Paused, "paused by an operator"
		return st, nil
	case ActResume:
		if st.Phase != Paused {
			return st, fmt.Errorf("the rollout is %s, not paused", st.Phase)
		}
		st.Phase, st.StepStartedAt, st.Message = Progressing, now, "resumed by an operator"
		return st, nil
	case ActAbort:
		return abort(st, "aborted by an operator"), nil
	}
	return st, fmt.Errorf("unknown action %q", action)
}

func next(plan Plan, st State, now time.Time) State {
	st.Step++
	st.CanaryWeight = plan.Steps[st.Step].Weight
	st.StepStartedAt, st.Judged = now, false
	st.Message = fmt.Sprintf("step %d of %d", st.Step+1, len(plan.Steps))
	return st
}

func promote(plan Plan, st State, now time.Time, full bool) State {
	st.Phase, st.Step, st.StepStartedAt = Promoted, len(plan.Steps)-1, now
	st.CanaryWeight = plan.Steps[st.Step].Weight
	if full {
		st.CanaryWeight = 100
	}
	st.Message = fmt.Sprintf("promoted at %d%%", st.CanaryWeight)
	return st
}

func abort(st State, why string) State {
	st.Phase, st.CanaryWeight, st.Message = Aborted, 0, why
	return st
}
