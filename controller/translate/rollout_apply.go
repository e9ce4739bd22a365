package translate

import (
	"math"
	"slices"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// shiftRollouts applies the accepted Rollouts that shift rules of the route being
// compiled. The HTTPRoute object is never changed: only its rules in the IR.
func (c *routeCompiler) shiftRollouts(rules []config.Rule) {
	if len(c.ix.rollouts.byRoute) == 0 {
		return
	}
	shifts := c.ix.rollouts.byRoute[types.NamespacedName{Namespace: c.route.Namespace, Name: c.route.Name}]
	for _, s := range shifts {
		if s.index < len(rules) && s.index < len(c.route.Spec.Rules) {
			c.shiftRule(&rules[s.index], &c.route.Spec.Rules[s.index], s.plan)
		}
	}
}

// shiftRule gives the canary its percentage of each stable reference's weight: the
// stable reference keeps the rest, and the canary's share is added to the rule's own
// reference to the canary, or else to a canary reference appended after the rule's
// references (one per stable reference, with that reference's filters). Weights are
// scaled so that the split is exact in integers. While the Rollout is live and has
// header matches, requests with those headers go to the canary at any weight.
func (c *routeCompiler) shiftRule(rule *config.Rule, spec *gwv1.HTTPRouteRule, plan *rolloutPlan) {
	p := int64(plan.weight)
	headerRouted := plan.live && len(plan.obj.Spec.HeaderMatch) > 0
	if p == 0 && !headerRouted {
		return // the rule as written
	}
	ns := plan.key.Namespace
	n := min(len(spec.BackendRefs), len(rule.Backends))
	weights := make([]int64, len(rule.Backends), len(rule.Backends)+1)
	var stables []int
	canary := -1
	for j := range rule.Backends {
		w := int64(rule.Backends[j].Weight)
		switch {
		case j < n && refersTo(c.route.Namespace, spec.BackendRefs[j], ns, plan.obj.Spec.Stable):
			stables = append(stables, j)
			weights[j] = w * (100 - p)
		case j < n && canary < 0 && refersTo(c.route.Namespace, spec.BackendRefs[j], ns, plan.obj.Spec.Canary):
			canary = j
			weights[j] = w * 100
		default:
			weights[j] = w * 100
		}
	}
	target := canary
	backends := rule.Backends
	for _, s := range stables {
		share := int64(rule.Backends[s].Weight) * p
		if canary >= 0 {
			weights[canary] += share
			continue
		}
		res := c.resolve(canaryReference(plan.obj))
		backends = append(backends, config.BackendRef{Backend: res.name, Filters: slices.Clone(rule.Backends[s].Filters)})
		weights = append(weights, share)
		if target < 0 {
			target = len(backends) - 1
		}
	}
	for j, w := range exactWeights(weights) {
		backends[j].Weight = w
	}
	rule.Backends = backends
	if headerRouted && target >= 0 {
		hr := &config.HeaderRoute{Backend: target}
		for _, h := range plan.obj.Spec.HeaderMatch {
			hr.Headers = append(hr.Headers, config.Header{Name: string(h.Name), Value: h.Value})
		}
		rule.HeaderRoute = hr
	}
}

// exactWeights reduces weights by their greatest common divisor, which keeps their
// ratios exact, and only when they still do not fit in an int32 (weights beyond the
// API's maximum, from files) scales them down, keeping every non-zero weight above
// zero.
func exactWeights(ws []int64) []int32 {
	var g int64
	for _, w := range ws {
		g = gcd(g, w)
	}
	largest := int64(0)
	for i := range ws {
		if g > 1 {
			ws[i] /= g
		}
		largest = max(largest, ws[i])
	}
	divisor := int64(1)
	if largest > math.MaxInt32 {
		divisor = (largest + math.MaxInt32 - 1) / math.MaxInt32
	}
	out := make([]int32, len(ws))
	for i, w := range ws {
		scaled := w / divisor
		if w > 0 && scaled == 0 {
			scaled = 1
		}
		out[i] = int32(scaled)
	}
	return out
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
