package rollout

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func plan(analysis *Analysis) Plan {
	return Plan{Steps: []Step{{Weight: 10, Pause: 10 * time.Minute, HasPause: true}, {Weight: 50}, {Weight: 100}}, Analysis: analysis}
}

func TestPausedStepsAdvanceOnTimeAndManualStepsWait(t *testing.T) {
	p := plan(nil)
	st := Start(p, t0)
	if st.CanaryWeight != 10 || st.Phase != Progressing {
		t.Fatalf("start: %+v", st)
	}
	if st = Advance(p, st, t0.Add(9*time.Minute)); st.Step != 0 {
		t.Fatal("advanced before the pause was over")
	}
	st = Advance(p, st, t0.Add(10*time.Minute))
	if st.Step != 1 || st.CanaryWeight != 50 {
		t.Fatalf("after the pause: %+v", st)
	}
	// Step 2 has no pause: it waits for an operator however long it takes.
	if st = Advance(p, st, t0.Add(240*time.Hour)); st.Step != 1 {
		t.Fatal("a step without pause advanced on its own")
	}
	st, err := Act(p, st, ActPromote, false, t0.Add(241*time.Hour))
	if err != nil || st.Step != 2 || st.CanaryWeight != 100 || st.Phase != Progressing {
		t.Fatalf("promote: %+v %v", st, err)
	}
	// The last step completes the rollout.
	if st = Advance(p, st, t0.Add(242*time.Hour)); st.Phase != Promoted || st.CanaryWeight != 100 {
		t.Fatalf("last step: %+v", st)
	}
	if _, err := Act(p, st, ActAbort, false, t0); err == nil {
		t.Fatal("a promoted rollout was aborted")
	}
}

func TestAnalysisGatesAndAborts(t *testing.T) {
	a := &Analysis{Interval: 30 * time.Second, MinRequests: 50, MaxErrorRate: 0.01, MaxLatencyP99: 500 * time.Millisecond}
	p := plan(a)
	st := Start(p, t0)
	// Too few requests decide nothing, and the step does not advance unjudged.
	st = Judge(p, st, Sample{Requests: 10, Errors: 10})
	if st.Phase != Progressing || st.Judged {
		t.Fatalf("a thin window decided: %+v", st)
	}
	if st = Advance(p, st, t0.Add(time.Hour)); st.Step != 0 {
		t.Fatal("an unjudged step advanced")
	}
	st = Judge(p, st, Sample{Requests: 100, Errors: 1, P99: 100 * time.Millisecond})
	if st = Advance(p, st, t0.Add(time.Hour)); st.Step != 1 || st.Judged {
		t.Fatalf("a passing window did not let the step advance: %+v", st)
	}
	// A breach aborts to zero and says why.
	bad := Judge(p, st, Sample{Requests: 100, Errors: 5, P99: 100 * time.Millisecond})
	if bad.Phase != Aborted || bad.CanaryWeight != 0 || !strings.Contains(bad.Message, "error rate 5.00%") {
		t.Fatalf("error breach: %+v", bad)
	}
	slow := Judge(p, st, Sample{Requests: 100, P99: time.Second})
	if slow.Phase != Aborted || !strings.Contains(slow.Message, "p99") {
		t.Fatalf("latency breach: %+v", slow)
	}
}

func TestOperatorActions(t *testing.T) {
	p := plan(nil)
	st := Start(p, t0)
	st, _ = Act(p, st, ActPause, false, t0)
	if st = Advance(p, st, t0.Add(time.Hour)); st.Phase != Paused || st.Step != 0 {
		t.Fatalf("a paused rollout moved: %+v", st)
	}
	if _, err := Act(p, Start(p, t0), ActResume, false, t0); err == nil {
		t.Fatal("resumed a rollout that was not paused")
	}
	st, _ = Act(p, st, ActResume, false, t0.Add(time.Hour))
	if st.Phase != Progressing || !st.StepStartedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("resume: %+v", st)
	}
	full, _ := Act(p, st, ActPromote, true, t0)
	if full.Phase != Promoted || full.CanaryWeight != 100 {
		t.Fatalf("full promote: %+v", full)
	}
	aborted, _ := Act(p, st, ActAbort, false, t0)
	if aborted.Phase != Aborted || aborted.CanaryWeight != 0 {
		t.Fatalf("abort: %+v", aborted)
	}
	if _, err := Act(p, st, "rewind", false, t0); err == nil {
		t.Fatal("an unknown action was accepted")
	}
}

// TestZeroWeightStepNeedsNoAnalysis checks that a step that sends the canary no
// weighted traffic advances on its pause alone, since no window could judge it.
func TestZeroWeightStepNeedsNoAnalysis(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := Plan{Steps: []Step{{Weight: 0, Pause: time.Minute, HasPause: true}, {Weight: 100}},
		Analysis: &Analysis{Interval: time.Second, MinRequests: 10, MaxErrorRate: 0.01}}
	st := Start(p, t0)
	if st = Advance(p, st, t0.Add(30*time.Second)); st.Step != 0 {
		t.Fatalf("advanced before the pause ended: step %d", st.Step)
	}
	if st = Advance(p, st, t0.Add(time.Minute)); st.Step != 1 || st.CanaryWeight != 100 {
		t.Fatalf("after the pause: step %d weight %d, want step 1 at 100", st.Step, st.CanaryWeight)
	}
	if st = Advance(p, st, t0.Add(2*time.Minute)); st.Phase != Progressing {
		t.Fatalf("the last step completed without a judged window: %s", st.Phase)
	}
}

// TestLastStepHoldsItsPause checks that a last step with a pause holds its weight for
// the pause before the rollout completes (with an analysis, judged as well), as every
// other step does; only a last step without a pause completes at once.
func TestLastStepHoldsItsPause(t *testing.T) {
	a := &Analysis{Interval: 30 * time.Second, MinRequests: 10, MaxErrorRate: 0.01}
	p := Plan{Steps: []Step{{Weight: 10, Pause: time.Minute, HasPause: true}, {Weight: 100, Pause: 10 * time.Minute, HasPause: true}},
		Analysis: a}
	st := Judge(p, Start(p, t0), Sample{Requests: 100})
	if st = Advance(p, st, t0.Add(time.Minute)); st.Step != 1 {
		t.Fatalf("setup: %+v", st)
	}
	st = Judge(p, st, Sample{Requests: 100})
	if st = Advance(p, st, t0.Add(2*time.Minute)); st.Phase != Progressing {
		t.Fatalf("the last step completed before its pause was over: %+v", st)
	}
	if got := waitingFor(p, st); got != "pause" {
		t.Fatalf("the last step waits for %q, want pause", got)
	}
	// A breach during the last step's pause still aborts.
	if bad := Judge(p, st, Sample{Requests: 100, Errors: 50}); bad.Phase != Aborted {
		t.Fatalf("a breach during the last pause: %+v", bad)
	}
	if st = Advance(p, st, t0.Add(11*time.Minute)); st.Phase != Promoted || st.CanaryWeight != 100 {
		t.Fatalf("after the last pause: %+v", st)
	}
}
