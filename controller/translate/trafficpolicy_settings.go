package translate

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

// policyField is one top-level field of a TrafficPolicy. Precedence is decided for
// each field on its own, so a policy may win one field and lose another.
type policyField int

const (
	fieldTimeout policyField = iota
	fieldRetry
	fieldCircuitBreaker
	fieldOutlierDetection
	fieldHealthCheck
	fieldRateLimit
	numPolicyFields
)

// policyFieldNames are the fields' names in the API, for messages.
var policyFieldNames = [numPolicyFields]string{"timeout", "retry", "circuitBreaker", "outlierDetection", "healthCheck", "rateLimit"}

// ruleFields are applied to HTTPRoute rules; the others belong to backends.
var ruleFields = []policyField{fieldTimeout, fieldRetry, fieldRateLimit}

// backendFields are applied to backends (one Service port each).
var backendFields = []policyField{fieldCircuitBreaker, fieldOutlierDetection, fieldHealthCheck}

// The defaults of the TrafficPolicy CRD. The API server applies them to objects it
// stores, but manifests read from files never pass through it, so translation
// applies them too and both sources mean the same.
const (
	defaultRetryAttempts        = 2
	defaultRetryBackoff         = 25 * time.Millisecond
	defaultRetryMaxBackoff      = 250 * time.Millisecond
	defaultBudgetPercent        = 20
	defaultBudgetMinPerSecond   = 10
	defaultOutlierInterval      = 10 * time.Second
	defaultOutlierBaseEjection  = 30 * time.Second
	defaultOutlierMaxEjection   = 50
	defaultHealthInterval       = 5 * time.Second
	defaultHealthTimeout        = time.Second
	defaultHealthyThreshold     = 2
	defaultUnhealthyThreshold   = 3
	maxRetryAttempts            = 10
	maxRetryOn                  = 16
	maxRateLimitRules           = 8
	maxPolicyTargetRefs         = 16
	defaultRateLimitMode        = config.RateLimitLocal
	defaultRateLimitFailureMode = "LocalFallback"
)

// defaultRetryOn is what a retry without retryOn retries.
var defaultRetryOn = []config.RetryCondition{config.RetryConnectFailure, config.RetryReset, config.RetryGatewayError}

// policySettings is a TrafficPolicy's spec in IR form, with the defaults applied.
type policySettings struct {
	// set says which top-level fields the policy sets.
	set [numPolicyFields]bool
	// requestTimeout is timeout.request, when hasRequestTimeout. A timeout with only
	// idle still sets the field (and so overrides less specific timeouts), but bounds
	// nothing the IR can express.
	requestTimeout    config.Duration
	hasRequestTimeout bool
	retry             *config.Retry
	circuitBreaker    *config.CircuitBreaker
	outlierDetection  *config.OutlierDetection
	healthCheck       *config.HealthCheck
	// rateLimit has no ID yet: each scope the policy applies to gets its own.
	rateLimit *config.RateLimit
}

// setsAny reports whether the settings set one of the fields.
func (s *policySettings) setsAny(fields []policyField) bool {
	for _, f := range fields {
		if s.set[f] {
			return true
		}
	}
	return false
}

// compilePolicySettings checks every value of a TrafficPolicy's settings (the CRD
// schema checks some of them, but files skip it) and translates them.
func compilePolicySettings(spec *v1alpha1.TrafficPolicySpec) (*policySettings, error) {
	s := &policySettings{}
	var err error
	if t := spec.Timeout; t != nil {
		s.set[fieldTimeout] = true
		if t.Request != nil {
			if s.requestTimeout, err = policyDuration("timeout.request", t.Request, 0, false); err != nil {
				return nil, err
			}
			s.hasRequestTimeout = true
		}
		if _, err = policyDuration("timeout.idle", t.Idle, 0, false); err != nil {
			return nil, err
		}
	}
	if r := spec.Retry; r != nil {
		s.set[fieldRetry] = true
		if s.retry, err = compilePolicyRetry(r); err != nil {
			return nil, err
		}
	}
	if cb := spec.CircuitBreaker; cb != nil {
		s.set[fieldCircuitBreaker] = true
		if s.circuitBreaker, err = compileCircuitBreaker(cb); err != nil {
			return nil, err
		}
	}
	if od := spec.OutlierDetection; od != nil {
		s.set[fieldOutlierDetection] = true
		if s.outlierDetection, err = compileOutlierDetection(od); err != nil {
			return nil, err
		}
	}
	if hc := spec.HealthCheck; hc != nil {
		s.set[fieldHealthCheck] = true
		if s.healthCheck, err = compileHealthCheck(hc); err != nil {
			return nil, err
		}
	}
	if rl := spec.RateLimit; rl != nil {
		s.set[fieldRateLimit] = true
		if s.rateLimit, err = compileRateLimit(rl); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// policyDuration parses an optional Gateway API duration, giving def when it is
// unset. When positive is set, zero is refused.
func policyDuration(field string, d *gwv1.Duration, def time.Duration, positive bool) (config.Duration, error) {
	if d == nil {
		return config.Duration(def), nil
	}
	v, err := parseGatewayDuration(string(*d))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	if positive && v <= 0 {
		return 0, fmt.Errorf("%s must be longer than zero", field)
	}
	return config.Duration(v), nil
}

// intField reads an optional count, giving def when it is unset, and checks that it
// lies in [lo, hi].
func intField(field string, v *int32, def, lo, hi int) (int, error) {
	if v == nil {
		return def, nil
	}
	if int(*v) < lo || int(*v) > hi {
		if hi == math.MaxInt32 {
			return 0, fmt.Errorf("%s %d is less than %d", field, *v, lo)
		}
		return 0, fmt.Errorf("%s %d is not in %d-%d", field, *v, lo, hi)
	}
	return int(*v), nil
}

func compilePolicyRetry(r *v1alpha1.RetryPolicy) (*config.Retry, error) {
	out := &config.Retry{IdempotentOnly: !r.NonIdempotent}
	var err error
	if out.Attempts, err = intField("retry.attempts", r.Attempts, defaultRetryAttempts, 0, maxRetryAttempts); err != nil {
		return nil, err
	}
	if out.PerTryTimeout, err = policyDuration("retry.perTryTimeout", r.PerTryTimeout, 0, false); err != nil {
		return nil, err
	}
	if out.On, out.Codes, err = compileRetryOn(r.RetryOn); err != nil {
		return nil, err
	}
	var base, maxWait *gwv1.Duration
	if r.Backoff != nil {
		base, maxWait = r.Backoff.Base, r.Backoff.Max
	}
	if out.Backoff, err = policyDuration("retry.backoff.base", base, defaultRetryBackoff, false); err != nil {
		return nil, err
	}
	if out.MaxBackoff, err = policyDuration("retry.backoff.max", maxWait, defaultRetryMaxBackoff, false); err != nil {
		return nil, err
	}
	// Waits are never below base, as the API says, so a max below it (such as the
	// default max under a long base) keeps every wait at base.
	out.MaxBackoff = max(out.MaxBackoff, out.Backoff)
	// A budget always applies, so that retries cannot multiply the load on a failing
	// backend unless the policy says how much they may.
	var percent, perSecond *int32
	if r.Budget != nil {
		percent, perSecond = r.Budget.Percent, r.Budget.MinRetriesPerSecond
	}
	out.Budget = &config.RetryBudget{}
	if out.Budget.Percent, err = intField("retry.budget.percent", percent, defaultBudgetPercent, 0, 100); err != nil {
		return nil, err
	}
	if out.Budget.MinRetriesPerSecond, err = intField("retry.budget.minRetriesPerSecond", perSecond, defaultBudgetMinPerSecond, 0, math.MaxInt32); err != nil {
		return nil, err
	}
	return out, nil
}

// compileRetryOn splits retryOn into failure classes and status codes. The IR reads
// an empty class list as connect failures, resets and timeouts, so a list of codes
// alone also retries those (all of which the backend never answered).
func compileRetryOn(list []v1alpha1.RetryOn) ([]config.RetryCondition, []int, error) {
	if len(list) > maxRetryOn {
		return nil, nil, fmt.Errorf("retry.retryOn has %d entries; at most %d are allowed", len(list), maxRetryOn)
	}
	if len(list) == 0 {
		return slices.Clone(defaultRetryOn), nil, nil
	}
	var on []config.RetryCondition
	var codes []int
	for i, item := range list {
		switch cond := config.RetryCondition(item); cond {
		case config.RetryConnectFailure, config.RetryReset, config.RetryGatewayError, config.Retry5xx:
			if !slices.Contains(on, cond) {
				on = append(on, cond)
			}
			continue
		}
		code, ok := statusCode(string(item))
		if !ok {
			return nil, nil, fmt.Errorf("retry.retryOn[%d] %q is not connect-failure, reset, gateway-error, 5xx or a status code from 400 to 599", i, item)
		}
		if !slices.Contains(codes, code) {
			codes = append(codes, code)
		}
	}
	sort.Ints(codes)
	if len(on) == 0 {
		// An empty list means the default failure classes to the data plane; a
		// policy that names only status codes retries only those.
		on = []config.RetryCondition{config.RetryStatusCodesOnly}
	}
	return on, codes, nil
}

// statusCode parses a three-digit status code from 400 to 599.
func statusCode(s string) (int, bool) {
	if len(s) != 3 {
		return 0, false
	}
	code := 0
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		code = code*10 + int(s[i]-'0')
	}
	return code, code >= 400 && code <= 599
}

func compileCircuitBreaker(cb *v1alpha1.CircuitBreakerPolicy) (*config.CircuitBreaker, error) {
	out := &config.CircuitBreaker{}
	var err error
	if out.MaxConnections, err = intField("circuitBreaker.maxConnections", cb.MaxConnections, 0, 1, math.MaxInt32); err != nil {
		return nil, err
	}
	if out.MaxPendingRequests, err = intField("circuitBreaker.maxPendingRequests", cb.MaxPendingRequests, 0, 1, math.MaxInt32); err != nil {
		return nil, err
	}
	if out.MaxRequests, err = intField("circuitBreaker.maxRequests", cb.MaxRequests, 0, 1, math.MaxInt32); err != nil {
		return nil, err
	}
	if out.MaxRetries, err = intField("circuitBreaker.maxRetries", cb.MaxRetries, 0, 0, math.MaxInt32); err != nil {
		return nil, err
	}
	return out, nil
}

func compileOutlierDetection(od *v1alpha1.OutlierDetectionPolicy) (*config.OutlierDetection, error) {
	out := &config.OutlierDetection{}
	var err error
	if out.Consecutive5xx, err = intField("outlierDetection.consecutive5xx", od.Consecutive5xx, 0, 1, math.MaxInt32); err != nil {
		return nil, err
	}
	if out.ConsecutiveGatewayErrors, err = intField("outlierDetection.consecutiveGatewayErrors", od.ConsecutiveGatewayErrors, 0, 1, math.MaxInt32); err != nil {
		return nil, err
	}
	if out.Interval, err = policyDuration("outlierDetection.interval", od.Interval, defaultOutlierInterval, true); err != nil {
		return nil, err
	}
	if out.BaseEjectionTime, err = policyDuration("outlierDetection.baseEjectionTime", od.BaseEjectionTime, defaultOutlierBaseEjection, true); err != nil {
		return nil, err
	}
	if out.MaxEjectionPercent, err = intField("outlierDetection.maxEjectionPercent", od.MaxEjectionPercent, defaultOutlierMaxEjection, 0, 100); err != nil {
		return nil, err
	}
	return out, nil
}

func compileHealthCheck(hc *v1alpha1.HealthCheckPolicy) (*config.HealthCheck, error) {
	if !strings.HasPrefix(hc.Path, "/") || strings.ContainsFunc(hc.Path, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("healthCheck.path %q must start with \"/\" and hold no spaces or control characters", hc.Path)
	}
	out := &config.HealthCheck{Path: hc.Path}
	var err error
	if out.Interval, err = policyDuration("healthCheck.interval", hc.Interval, defaultHealthInterval, true); err != nil {
		return nil, err
	}
	if out.Timeout, err = policyDuration("healthCheck.timeout", hc.Timeout, defaultHealthTimeout, true); err != nil {
		return nil, err
	}
	if out.HealthyThreshold, err = intField("healthCheck.healthyThreshold", hc.HealthyThreshold, defaultHealthyThreshold, 1, math.MaxInt32); err != nil {
		return nil, err
	}
	if out.UnhealthyThreshold, err = intField("healthCheck.unhealthyThreshold", hc.UnhealthyThreshold, defaultUnhealthyThreshold, 1, math.MaxInt32); err != nil {
		return nil, err
	}
	return out, nil
}

// compileRateLimit checks a rate limit at least as strictly as the data plane's
// RateLimit filter does, so that an accepted policy never makes a snapshot that the
// gateways refuse.
func compileRateLimit(rl *v1alpha1.RateLimitPolicy) (*config.RateLimit, error) {
	out := &config.RateLimit{Mode: defaultRateLimitMode}
	switch rl.Mode {
	case "":
	case v1alpha1.RateLimitMode(config.RateLimitLocal), v1alpha1.RateLimitMode(config.RateLimitGlobal):
		out.Mode = config.RateLimitMode(rl.Mode)
	default:
		return nil, fmt.Errorf("rateLimit.mode %q is not Global or Local", rl.Mode)
	}
	failureMode := string(rl.FailureMode)
	switch failureMode {
	case "":
		failureMode = defaultRateLimitFailureMode
	case "LocalFallback", "Allow", "Deny":
	default:
		return nil, fmt.Errorf("rateLimit.failureMode %q is not LocalFallback, Allow or Deny", rl.FailureMode)
	}
	// The failure mode only means something where Redis is involved.
	if out.Mode == config.RateLimitGlobal {
		out.FailureMode = failureMode
	}
	if len(rl.Rules) == 0 || len(rl.Rules) > maxRateLimitRules {
		return nil, fmt.Errorf("rateLimit.rules has %d entries; 1 to %d are allowed", len(rl.Rules), maxRateLimitRules)
	}
	for i := range rl.Rules {
		r, err := compileRateLimitRule(&rl.Rules[i], fmt.Sprintf("rateLimit.rules[%d]", i))
		if err != nil {
			return nil, err
		}
		out.Rules = append(out.Rules, r)
	}
	return out, nil
}

func compileRateLimitRule(r *v1alpha1.RateLimitRule, where string) (config.RateLimitRule, error) {
	out := config.RateLimitRule{Requests: r.Requests, Burst: r.Burst}
	switch r.Key.Type {
	case v1alpha1.RateLimitKeyType(config.KeyClientIP), v1alpha1.RateLimitKeyType(config.KeyRoute),
		v1alpha1.RateLimitKeyType(config.KeyCaller):
		// A name means nothing to these keys; it is left out of the IR.
		out.Key = config.RateLimitKey{Type: config.RateLimitKeyType(r.Key.Type)}
	case v1alpha1.RateLimitKeyType(config.KeyHeader):
		if !httpguts.ValidHeaderFieldName(r.Key.Name) {
			return out, fmt.Errorf("%s.key.name %q is not a valid header name", where, r.Key.Name)
		}
		out.Key = config.RateLimitKey{Type: config.KeyHeader, Name: r.Key.Name}
	default:
		return out, fmt.Errorf("%s.key.type %q is not ClientIP, Header, Route or Caller", where, r.Key.Type)
	}
	if r.Requests < 1 {
		return out, fmt.Errorf("%s.requests %d is less than 1", where, r.Requests)
	}
	if r.Burst < 0 {
		return out, fmt.Errorf("%s.burst %d is negative", where, r.Burst)
	}
	if r.Burst > math.MaxInt64-r.Requests {
		return out, fmt.Errorf("%s: requests plus burst is too large", where)
	}
	per, err := policyDuration(where+".per", &r.Per, 0, true)
	if err != nil {
		return out, err
	}
	out.Per = per
	return out, nil
}
