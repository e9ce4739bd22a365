package translate

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// ruleCandidates are the valid policies that may set the fields of one rule as one
// parent serves it, each list in precedence order. The parent is a Gateway or,
// east-west, the Service a mesh route is attached to; its policies are the least
// specific.
type ruleCandidates struct {
	rule, route, parent []*trafficPolicy
	// services are the policies of the Services the rule sends to, in the order of
	// the rule's backendRefs as written, and serviceTargets their targets.
	services       [][]*trafficPolicy
	serviceTargets []policyTargetKey
	ruleTarget     policyTargetKey
	routeTarget    policyTargetKey
	parentTarget   policyTargetKey
}

// rulePick is the policy that sets a field of a rule and the target it is attached
// through.
type rulePick struct {
	p      *trafficPolicy
	target policyTargetKey
}

// pick finds the policy whose setting of a rule field applies: one attached to the
// rule, else to the route, else to a Service the rule sends to (the first of the
// rule's backendRefs, as written, whose Service has one), else to the parent.
func (c *ruleCandidates) pick(f policyField) rulePick {
	if p := firstSetting(c.rule, f); p != nil {
		return rulePick{p: p, target: c.ruleTarget}
	}
	if p := firstSetting(c.route, f); p != nil {
		return rulePick{p: p, target: c.routeTarget}
	}
	for i, list := range c.services {
		if p := firstSetting(list, f); p != nil {
			return rulePick{p: p, target: c.serviceTargets[i]}
		}
	}
	if p := firstSetting(c.parent, f); p != nil {
		return rulePick{p: p, target: c.parentTarget}
	}
	return rulePick{}
}

// each calls fn for every candidate policy, once per list it is in.
func (c *ruleCandidates) each(fn func(*trafficPolicy)) {
	for _, list := range [][]*trafficPolicy{c.rule, c.route, c.parent} {
		for _, p := range list {
			fn(p)
		}
	}
	for _, list := range c.services {
		for _, p := range list {
			fn(p)
		}
	}
}

// rulesFor returns a route's rules as a parent serves them (a Gateway, or east-west
// a Service; see gatewayParent and serviceParent) with the TrafficPolicies that
// apply, and records which parent serves the route and sends to which backends.
// Rules that no policy changes are shared with other parents.
func (tp *trafficPolicies) rulesFor(parent policyTargetKey, route *gwv1.HTTPRoute, compiled *compiledRoute, rules []config.Rule) []config.Rule {
	if len(tp.targeted) == 0 {
		return rules
	}
	key := ruleCacheKey{parent: parent, compiled: compiled}
	if out, ok := tp.rules[key]; ok {
		return out
	}
	routeKey := types.NamespacedName{Namespace: route.Namespace, Name: route.Name}
	addAncestor(tp.routeAncestors, routeKey, parent)
	tp.noteParent(parent)
	base := ruleCandidates{
		routeTarget:  policyTargetKey{level: levelRoute, namespace: route.Namespace, name: route.Name},
		parentTarget: parent,
	}
	base.route = tp.byTarget[base.routeTarget]
	base.parent = tp.byTarget[parent]
	var out []config.Rule
	for i := range rules {
		if i >= len(route.Spec.Rules) {
			break
		}
		c := base
		if name := str(route.Spec.Rules[i].Name, ""); name != "" {
			c.ruleTarget = policyTargetKey{level: levelRule, namespace: route.Namespace, name: route.Name, section: name}
			c.rule = tp.byTarget[c.ruleTarget]
		}
		where := func() string { return fmt.Sprintf("rule %d of HTTPRoute %s on %s", i, routeKey, parent.describe()) }
		if rule, changed := tp.applyRule(&c, &rules[i], &route.Spec.Rules[i], where); changed {
			if out == nil {
				out = slices.Clone(rules)
			}
			out[i] = rule
		}
	}
	if out == nil {
		out = rules
	}
	tp.rules[key] = out
	return out
}

// defaultMeshRule returns the rule of a Service port's default mesh route with the
// TrafficPolicies that apply: those of the Services it sends to (the port's own, and
// a Rollout's canary), else those of the Service as parent. spec is the rule as an
// HTTPRoute rule would say it, for the backendRefs written.
func (tp *trafficPolicies) defaultMeshRule(parent policyTargetKey, rule config.Rule, spec *gwv1.HTTPRouteRule, where func() string) config.Rule {
	if len(tp.targeted) == 0 {
		return rule
	}
	tp.noteParent(parent)
	c := ruleCandidates{parentTarget: parent, parent: tp.byTarget[parent]}
	out, _ := tp.applyRule(&c, &rule, spec, where)
	return out
}

// applyRule completes the candidates of one rule with the policies of the Services
// it sends to, records its backends, and applies the winning policies. For rule
// fields, a Service that is both the parent and a destination of the rule is a
// candidate once, as a destination (which ranks higher).
func (tp *trafficPolicies) applyRule(c *ruleCandidates, rule *config.Rule, spec *gwv1.HTTPRouteRule, where func() string) (config.Rule, bool) {
	tp.addServiceCandidates(c, rule, spec)
	tp.noteBackends(c, rule)
	if c.parentTarget.level == levelService && slices.Contains(c.serviceTargets, c.parentTarget) {
		c.parent = nil
	}
	return tp.applyToRule(c, rule, spec, where)
}

// noteParent records a Service that serves mesh routes as an ancestor of its own
// policies.
func (tp *trafficPolicies) noteParent(parent policyTargetKey) {
	if parent.level == levelService && tp.targeted[parent] {
		addAncestor(tp.serviceAncestors, types.NamespacedName{Namespace: parent.namespace, Name: parent.name}, parent)
	}
}

// addServiceCandidates lists the policies of the Services the rule sends to, in the
// order of its backendRefs as written. References that do not resolve and those of
// weight zero (which receive no traffic) are skipped, and so are the canaries that
// a Rollout adds, so that a rollout's progress never changes which policy applies.
func (tp *trafficPolicies) addServiceCandidates(c *ruleCandidates, rule *config.Rule, spec *gwv1.HTTPRouteRule) {
	for j := range spec.BackendRefs {
		if j >= len(rule.Backends) {
			break
		}
		if spec.BackendRefs[j].Weight != nil && *spec.BackendRefs[j].Weight == 0 {
			continue
		}
		origin, ok := tp.ix.backendOrigins[rule.Backends[j].Backend]
		if !ok {
			continue
		}
		t := policyTargetKey{level: levelService, namespace: origin.service.Namespace, name: origin.service.Name}
		if list := tp.byTarget[t]; len(list) > 0 && !slices.Contains(c.serviceTargets, t) {
			c.services = append(c.services, list)
			c.serviceTargets = append(c.serviceTargets, t)
		}
	}
}

// noteBackends records that the parent sends traffic to the backends of a rule
// (references and mirrors), and which of the rule's policies may set their backend
// fields. The parent's policies rank as a Gateway's.
func (tp *trafficPolicies) noteBackends(c *ruleCandidates, rule *config.Rule) {
	levels := [...]struct {
		level policyLevel
		list  []*trafficPolicy
	}{{levelRule, c.rule}, {levelRoute, c.route}, {levelGateway, c.parent}}
	note := func(name string) {
		if name == "" {
			return
		}
		if origin, ok := tp.ix.backendOrigins[name]; ok {
			svc := policyTargetKey{level: levelService, namespace: origin.service.Namespace, name: origin.service.Name}
			if tp.targeted[svc] {
				addAncestor(tp.serviceAncestors, origin.service, c.parentTarget)
			}
		}
		for _, l := range levels {
			for _, p := range l.list {
				if !p.setsBackendFields {
					continue
				}
				level := l.level
				use := tp.backendUse[name]
				if use == nil {
					use = map[*trafficPolicy]policyLevel{}
					tp.backendUse[name] = use
				}
				if prev, seen := use[p]; !seen || level > prev {
					use[p] = level
				}
			}
		}
	}
	mirrors := func(fs []config.Filter) {
		for _, f := range fs {
			if f.RequestMirror != nil {
				note(f.RequestMirror.Backend)
			}
		}
	}
	mirrors(rule.Filters)
	for _, b := range rule.Backends {
		note(b.Backend)
		mirrors(b.Filters)
	}
}

// ownSetting describes the rule's own field that beats every policy for a policy
// field, or "" when the rule has none: its retry, and its timeouts.request (a
// backendRequest timeout of its own is kept alongside a policy's request timeout).
func ownSetting(f policyField, spec *gwv1.HTTPRouteRule) string {
	switch {
	case f == fieldRetry && spec.Retry != nil:
		return "the rule's own retry field"
	case f == fieldTimeout && spec.Timeouts != nil && spec.Timeouts.Request != nil:
		return "the rule's own timeouts.request field"
	}
	return ""
}

// applyToRule applies the rule fields of the winning policies to one rule and
// records the settings they override. It reports whether the rule changed.
// where describes the rule, for messages.
func (tp *trafficPolicies) applyToRule(c *ruleCandidates, rule *config.Rule, spec *gwv1.HTTPRouteRule, where func() string) (config.Rule, bool) {
	out := *rule
	changed := false
	for _, f := range ruleFields {
		own := ownSetting(f, spec)
		var win rulePick
		if own == "" {
			win = c.pick(f)
		}
		winner := func() string {
			if own != "" {
				return own
			}
			return "TrafficPolicy " + win.p.name
		}
		c.each(func(p *trafficPolicy) {
			if p != win.p && p.sets(f) {
				tp.noteOverride(p, f, winner, where)
			}
		})
		if win.p == nil {
			continue
		}
		tp.noteApplied(win.p, f)
		changed = true
		s := win.p.settings
		switch f {
		case fieldTimeout:
			t := config.Timeouts{}
			if out.Timeouts != nil {
				t = *out.Timeouts
			}
			t.Request = s.requestTimeout
			if t == (config.Timeouts{}) {
				out.Timeouts = nil
			} else {
				out.Timeouts = &t
			}
		case fieldRetry:
			out.Retry = s.retry
		case fieldRateLimit:
			// The limit comes first, so that requests over it cost nothing more.
			filters := make([]config.Filter, 0, len(out.Filters)+1)
			filters = append(filters, config.Filter{Type: config.FilterRateLimit, RateLimit: tp.rateLimit(win)})
			out.Filters = append(filters, out.Filters...)
		}
	}
	return out, changed
}

// rateLimit is the rate limit a policy applies through a target, made once: its ID
// names the policy and the target's scope (see rateLimitScope).
func (tp *trafficPolicies) rateLimit(win rulePick) *config.RateLimit {
	key := rateLimitKey{policy: win.p, target: win.target}
	if rl, ok := tp.rateLimits[key]; ok {
		return rl
	}
	rl := *win.p.settings.rateLimit
	rl.ID = "trafficpolicy/" + win.p.name + "/" + win.target.rateLimitScope()
	tp.rateLimits[key] = &rl
	return &rl
}

// backendCandidate is a policy that may set the fields of a backend, and its rank.
type backendCandidate struct {
	p    *trafficPolicy
	rank int
}

// backendRank orders attachments for backend fields: a Service is the most
// specific attachment of its own backends, then come rules, routes and Gateways
// that send to them.
func backendRank(level policyLevel) int {
	if level == levelService {
		return int(levelRule) + 1
	}
	return int(level)
}

// applyToBackends sets the backend fields of the snapshot's backends from the
// policies that win them, and records the settings they override.
func (tp *trafficPolicies) applyToBackends(backends []config.Backend) {
	if len(tp.byTarget) == 0 {
		return
	}
	for i := range backends {
		b := &backends[i]
		candidates := tp.backendCandidates(b.Name)
		for _, f := range backendFields {
			var win *trafficPolicy
			for _, c := range candidates {
				switch {
				case !c.p.sets(f):
				case win == nil:
					win = c.p
				default:
					tp.noteOverride(c.p, f, func() string { return "TrafficPolicy " + win.name }, func() string { return "backend " + b.Name })
				}
			}
			if win == nil {
				continue
			}
			tp.noteApplied(win, f)
			switch f {
			case fieldCircuitBreaker:
				b.CircuitBreaker = win.settings.circuitBreaker
			case fieldOutlierDetection:
				b.OutlierDetection = win.settings.outlierDetection
			case fieldHealthCheck:
				b.HealthCheck = win.settings.healthCheck
			}
		}
	}
}

// backendCandidates lists the policies that may set a backend's fields, most
// specific first, then in precedence order.
func (tp *trafficPolicies) backendCandidates(name string) []backendCandidate {
	ranks := map[*trafficPolicy]int{}
	if origin, ok := tp.ix.backendOrigins[name]; ok {
		svc := policyTargetKey{level: levelService, namespace: origin.service.Namespace, name: origin.service.Name}
		for _, p := range tp.byTarget[svc] {
			if p.setsBackendFields {
				ranks[p] = backendRank(levelService)
			}
		}
	}
	for p, level := range tp.backendUse[name] {
		if prev, seen := ranks[p]; !seen || backendRank(level) > prev {
			ranks[p] = backendRank(level)
		}
	}
	out := make([]backendCandidate, 0, len(ranks))
	for p, r := range ranks {
		out = append(out, backendCandidate{p: p, rank: r})
	}
	slices.SortFunc(out, func(x, y backendCandidate) int {
		if x.rank != y.rank {
			return y.rank - x.rank
		}
		return comparePolicyAge(x.p, y.p)
	})
	return out
}
