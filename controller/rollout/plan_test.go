package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

func TestParseRate(t *testing.T) {
	good := map[string]float64{"1%": 0.01, "0.5%": 0.005, "100%": 1, "0%": 0, "12.25%": 0.1225}
	for in, want := range good {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1", "%", "-1%", "+1%", "1e1%", "101%", "Inf%", ".5%", "5.%", "1 %", "0x1%"} {
		if got, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %v, want an error", in, got)
		}
	}
}

func TestPlanOf(t *testing.T) {
	plan, err := PlanOf(rollout(&v1alpha1.RolloutAnalysis{}, step(10, "1m30s"), step(100, "")).Spec)
	if err != nil {
		t.Fatal(err)
	}
	want := Plan{Steps: []Step{{Weight: 10, Pause: 90 * time.Second, HasPause: true}, {Weight: 100}},
		Analysis: &Analysis{Interval: DefaultAnalysisInterval, MinRequests: DefaultMinRequests, MaxErrorRate: -1}}
	if len(plan.Steps) != 2 || plan.Steps[0] != want.Steps[0] || plan.Steps[1] != want.Steps[1] || *plan.Analysis != *want.Analysis {
		t.Fatalf("plan %+v %+v, want %+v %+v", plan, plan.Analysis, want, want.Analysis)
	}
	plan, err = PlanOf(rollout(strictAnalysis(), step(0, "0s")).Spec)
	if err != nil || plan.Analysis.MaxErrorRate != 0.01 || plan.Analysis.MaxLatencyP99 != 500*time.Millisecond ||
		plan.Analysis.MinRequests != 50 || !plan.Steps[0].HasPause {
		t.Fatalf("strict plan %+v %+v, %v", plan, plan.Analysis, err)
	}
	bad := map[string]v1alpha1.RolloutSpec{
		"spec.steps is empty":         rollout(nil).Spec,
		"weight 101":                  rollout(nil, step(101, "")).Spec,
		"spec.steps[1].pause":         rollout(nil, step(1, ""), step(2, "soon")).Spec,
		"spec.analysis.interval":      rollout(&v1alpha1.RolloutAnalysis{Interval: duration("0s")}, step(1, "")).Spec,
		"spec.analysis.minRequests":   rollout(&v1alpha1.RolloutAnalysis{MinRequests: int32Ptr(0)}, step(1, "")).Spec,
		"spec.analysis.maxErrorRate":  rollout(&v1alpha1.RolloutAnalysis{MaxErrorRate: "1"}, step(1, "")).Spec,
		"spec.analysis.maxLatencyP99": rollout(&v1alpha1.RolloutAnalysis{MaxLatencyP99: duration("-1s")}, step(1, "")).Spec,
	}
	for want, spec := range bad {
		if _, err := PlanOf(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("PlanOf with a bad %s: %v", want, err)
		}
	}
}
