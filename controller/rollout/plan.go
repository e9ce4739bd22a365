package rollout

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// The analysis defaults of the CRD schema. An API server applies them; objects read
// from files never pass through one, so the driver applies them too.
const (
	DefaultAnalysisInterval = 30 * time.Second
	DefaultMinRequests      = 50
)

// PlanOf converts a Rollout's spec into the state machine's Plan. Translation refuses
// a Rollout whose spec this rejects (Accepted=False, reason Invalid), so the driver
// only meets these errors when the two disagree; it then leaves the rollout alone.
func PlanOf(spec v1alpha1.RolloutSpec) (Plan, error) {
	if len(spec.Steps) == 0 {
		return Plan{}, errors.New("spec.steps is empty")
	}
	plan := Plan{Steps: make([]Step, 0, len(spec.Steps))}
	for i, s := range spec.Steps {
		if s.Weight < 0 || s.Weight > 100 {
			return Plan{}, fmt.Errorf("spec.steps[%d].weight %d is not between 0 and 100", i, s.Weight)
		}
		step := Step{Weight: s.Weight}
		if s.Pause != nil {
			d, err := parseDuration(*s.Pause)
			if err != nil {
				return Plan{}, fmt.Errorf("spec.steps[%d].pause: %w", i, err)
			}
			step.Pause, step.HasPause = d, true
		}
		plan.Steps = append(plan.Steps, step)
	}
	if spec.Analysis != nil {
		a, err := analysisOf(spec.Analysis)
		if err != nil {
			return Plan{}, err
		}
		plan.Analysis = a
	}
	return plan, nil
}

// analysisOf converts the analysis block, applying the schema's defaults. Without
// maxErrorRate the error rate is not checked, and without maxLatencyP99 the latency is
// not.
func analysisOf(in *v1alpha1.RolloutAnalysis) (*Analysis, error) {
	a := &Analysis{Interval: DefaultAnalysisInterval, MinRequests: DefaultMinRequests, MaxErrorRate: -1}
	if in.Interval != nil {
		d, err := parseDuration(*in.Interval)
		if err != nil {
			return nil, fmt.Errorf("spec.analysis.interval: %w", err)
		}
		if d <= 0 {
			return nil, errors.New("spec.analysis.interval must be positive")
		}
		a.Interval = d
	}
	if in.MinRequests != nil {
		if *in.MinRequests < 1 {
			return nil, fmt.Errorf("spec.analysis.minRequests %d is below 1", *in.MinRequests)
		}
		a.MinRequests = int64(*in.MinRequests)
	}
	if in.MaxErrorRate != "" {
		rate, err := ParseRate(in.MaxErrorRate)
		if err != nil {
			return nil, fmt.Errorf("spec.analysis.maxErrorRate: %w", err)
		}
		a.MaxErrorRate = rate
	}
	if in.MaxLatencyP99 != nil {
		d, err := parseDuration(*in.MaxLatencyP99)
		if err != nil {
			return nil, fmt.Errorf("spec.analysis.maxLatencyP99: %w", err)
		}
		a.MaxLatencyP99 = d
	}
	return a, nil
}

// ParseRate parses a percentage such as "1%" or "0.5%" into a share from 0 to 1.
func ParseRate(s string) (float64, error) {
	number, ok := strings.CutSuffix(s, "%")
	if !ok {
		return 0, fmt.Errorf("%q is not a percentage such as \"1%%\"", s)
	}
	// ParseFloat alone would take forms the schema refuses ("1e1", "+1", "Inf").
	v, err := strconv.ParseFloat(number, 64)
	if !isDecimal(number) || err != nil || v > 100 {
		return 0, fmt.Errorf("%q is not a percentage from 0%% to 100%%", s)
	}
	return v / 100, nil
}

// isDecimal reports whether s is digits with at most one decimal point between them.
func isDecimal(s string) bool {
	whole, fraction, hasPoint := strings.Cut(s, ".")
	return allDigits(whole) && (!hasPoint || allDigits(fraction))
}

func allDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// parseDuration parses a Gateway API duration. Translation checks the stricter
// GEP-2257 syntax; here anything Go can read that is not negative will do.
func parseDuration(d gwv1.Duration) (time.Duration, error) {
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, err
	}
	if v < 0 {
		return 0, fmt.Errorf("%q is negative", d)
	}
	return v, nil
}
