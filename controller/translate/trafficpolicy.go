package translate

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

// TrafficPolicies attach to Gateways, HTTPRoutes (or one rule, by sectionName) and
// Services, and each top-level field is decided on its own:
//
//   - Rule fields (timeout, retry, rateLimit) are decided per rule as each Gateway
//     serves it: a rule policy, else an HTTPRoute policy, else a policy of a Service
//     the rule sends to, else a Gateway policy. The rule's own retry, and its own
//     timeouts.request, beat every policy. Of the Services of a rule with several
//     backendRefs, the first in the rule's order (as written, skipping references of
//     weight zero and those that do not resolve) whose Service has a policy setting
//     the field decides it.
//   - Backend fields (circuitBreaker, outlierDetection, healthCheck) are decided per
//     backend (one Service port): a policy of the Service, else a rule, HTTPRoute or
//     Gateway policy of a rule that sends to the backend, most specific first.
//
// East-west, the Service a mesh route is attached to (and whose default route it
// is) takes the Gateway's place: its policies are the least specific for the rules'
// fields and, like a Gateway's, may set the fields of the backends they send to.
//
// Among equals the oldest policy wins, then the first by namespace/name. Invalid
// policies take part in nothing.

// policyLevel is how specific a TrafficPolicy attachment is; for rule fields a
// higher level wins. Backend fields rank Service attachments first (see
// backendRank).
type policyLevel int

const (
	levelGateway policyLevel = iota
	levelService
	levelRoute
	levelRule
)

// policyTargetKey is what one targetRef of a TrafficPolicy selects: a Gateway, a
// Service, an HTTPRoute, or one rule of an HTTPRoute (by name, in section).
type policyTargetKey struct {
	level                    policyLevel
	namespace, name, section string
}

// describe names the target in messages, such as "HTTPRoute default/r rule \"a\"".
func (t policyTargetKey) describe() string {
	name := t.namespace + "/" + t.name
	switch t.level {
	case levelGateway:
		return "Gateway " + name
	case levelService:
		return "Service " + name
	case levelRule:
		return fmt.Sprintf("HTTPRoute %s rule %q", name, t.section)
	default:
		return "HTTPRoute " + name
	}
}

// rateLimitScope names the target in rate limit IDs. Buckets are shared by every
// filter with the same ID, so a limit attached to a Gateway is one set of buckets
// for all of its routes, one attached to a Service one set for every rule that
// sends to it, and one attached to an HTTPRoute (or a rule) one set for that route
// (or rule) on every Gateway that serves it.
func (t policyTargetKey) rateLimitScope() string {
	switch t.level {
	case levelGateway:
		return "gateway/" + t.name
	case levelService:
		return "service/" + t.name
	case levelRule:
		return "httproute/" + t.name + "/rule/" + t.section
	default:
		return "httproute/" + t.name
	}
}

// trafficPolicy is one TrafficPolicy as translation judged it.
type trafficPolicy struct {
	key types.NamespacedName
	// name is key as text, "<namespace>/<name>".
	name string
	obj  *v1alpha1.TrafficPolicy
	// settings is the policy in IR form; nil when the policy is invalid, and then it
	// contributes nothing.
	settings *policySettings
	// invalid says why the policy is invalid.
	invalid string
	// targets are the targets that exist; missing says, a sentence each, why the
	// others do not count.
	targets []policyTargetKey
	missing []string
	// conflicted, when set, names the policy that wins every field of this one on
	// every target of the same level.
	conflicted string
	// setsBackendFields is set when the policy sets a field that belongs to backends.
	setsBackendFields bool
}

// sets reports whether the policy is valid and sets the field.
func (p *trafficPolicy) sets(f policyField) bool {
	return p.settings != nil && p.settings.set[f]
}

// trafficPolicies holds the TrafficPolicies of one translation, where they apply and
// what came of them.
type trafficPolicies struct {
	ix  *index
	all []*trafficPolicy
	// byTarget lists the valid policies of each target in precedence order: the
	// oldest first, then by namespace/name.
	byTarget map[policyTargetKey][]*trafficPolicy
	// targeted holds the existing targets of every policy, valid or not, whose
	// ancestors are to be found.
	targeted map[policyTargetKey]bool
	// routeAncestors and serviceAncestors record which parents (owned Gateways and,
	// east-west, Services serving mesh routes) serve each route and send traffic to
	// each Service, for the policies' ancestors.
	routeAncestors   map[types.NamespacedName]map[policyTargetKey]bool
	serviceAncestors map[types.NamespacedName]map[policyTargetKey]bool
	// backendUse records, per IR backend, the Gateway, HTTPRoute and rule policies
	// of the rules that send to it, at the most specific level each is found.
	backendUse map[string]map[*trafficPolicy]policyLevel
	// overrides holds, per policy and field, where other settings won over the
	// policy's.
	overrides map[*trafficPolicy]*[numPolicyFields]overrideNote
	// applied records, per policy, the fields it sets somewhere.
	applied map[*trafficPolicy]*[numPolicyFields]bool
	// rules caches the rules of each route as each parent serves them.
	rules map[ruleCacheKey][]config.Rule
	// rateLimits holds the rate limit of each policy through each target.
	rateLimits map[rateLimitKey]*config.RateLimit
}

// rateLimitKey identifies a policy's rate limit as applied through one target.
type rateLimitKey struct {
	policy *trafficPolicy
	target policyTargetKey
}

// ruleCacheKey identifies a route's rules as one parent serves them.
type ruleCacheKey struct {
	parent   policyTargetKey
	compiled *compiledRoute
}

func newTrafficPolicies(ix *index, policies []*v1alpha1.TrafficPolicy) *trafficPolicies {
	tp := &trafficPolicies{
		ix:               ix,
		byTarget:         map[policyTargetKey][]*trafficPolicy{},
		targeted:         map[policyTargetKey]bool{},
		routeAncestors:   map[types.NamespacedName]map[policyTargetKey]bool{},
		serviceAncestors: map[types.NamespacedName]map[policyTargetKey]bool{},
		backendUse:       map[string]map[*trafficPolicy]policyLevel{},
		overrides:        map[*trafficPolicy]*[numPolicyFields]overrideNote{},
		applied:          map[*trafficPolicy]*[numPolicyFields]bool{},
		rules:            map[ruleCacheKey][]config.Rule{},
		rateLimits:       map[rateLimitKey]*config.RateLimit{},
	}
	for _, obj := range uniqueSorted(policies) {
		key := types.NamespacedName{Namespace: obj.Namespace, Name: obj.Name}
		p := &trafficPolicy{key: key, name: key.String(), obj: obj}
		tp.all = append(tp.all, p)
		err := tp.resolveTargets(p)
		for _, t := range p.targets {
			tp.targeted[t] = true
		}
		var settings *policySettings
		if err == nil {
			if settings, err = compilePolicySettings(&obj.Spec); err != nil {
				err = fmt.Errorf("spec.%w", err)
			}
		}
		if err != nil {
			p.invalid = sentence(err.Error())
			continue
		}
		p.settings = settings
		p.setsBackendFields = settings.setsAny(backendFields)
		for _, t := range p.targets {
			tp.byTarget[t] = append(tp.byTarget[t], p)
		}
	}
	for _, list := range tp.byTarget {
		slices.SortFunc(list, comparePolicyAge)
	}
	for _, p := range tp.all {
		if p.settings != nil {
			p.conflicted = tp.findConflict(p)
		}
	}
	return tp
}

// comparePolicyAge orders policies as the Gateway API prescribes for conflicts:
// older creationTimestamp first, then namespace/name.
func comparePolicyAge(x, y *trafficPolicy) int {
	if tx, ty := x.obj.CreationTimestamp.Time, y.obj.CreationTimestamp.Time; !tx.Equal(ty) {
		if tx.Before(ty) {
			return -1
		}
		return 1
	}
	return strings.Compare(x.name, y.name)
}

// sentence ends a message with a full stop.
func sentence(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// resolveTargets checks the targetRefs of a policy and sorts them into the targets
// that exist and those that do not. A reference of a kind that cannot be targeted
// makes the policy invalid.
func (tp *trafficPolicies) resolveTargets(p *trafficPolicy) error {
	refs := p.obj.Spec.TargetRefs
	if len(refs) == 0 {
		return fmt.Errorf("spec.targetRefs is empty")
	}
	if len(refs) > maxPolicyTargetRefs {
		return fmt.Errorf("spec.targetRefs has %d entries; at most %d are allowed", len(refs), maxPolicyTargetRefs)
	}
	for i, ref := range refs {
		key, err := trafficPolicyTarget(p.key.Namespace, ref)
		if err != nil {
			return fmt.Errorf("spec.targetRefs[%d]: %w", i, err)
		}
		if slices.Contains(p.targets, key) {
			continue
		}
		if why := tp.missingTarget(key); why != "" {
			if !slices.Contains(p.missing, why) {
				p.missing = append(p.missing, why)
			}
			continue
		}
		p.targets = append(p.targets, key)
	}
	return nil
}

// trafficPolicyTarget turns a targetRef into a target key, refusing kinds that cannot be
// targeted.
func trafficPolicyTarget(namespace string, ref gwv1.LocalPolicyTargetReferenceWithSectionName) (policyTargetKey, error) {
	key := policyTargetKey{namespace: namespace, name: string(ref.Name), section: str(ref.SectionName, "")}
	if key.name == "" {
		return key, fmt.Errorf("name is empty")
	}
	switch {
	case string(ref.Group) == gatewayGroup && ref.Kind == kindGateway:
		key.level = levelGateway
	case string(ref.Group) == gatewayGroup && ref.Kind == kindHTTPRoute:
		key.level = levelRoute
		if key.section != "" {
			key.level = levelRule
		}
		return key, nil
	case string(ref.Group) == coreGroup && ref.Kind == kindService:
		key.level = levelService
	default:
		return key, fmt.Errorf("kind %q in group %q cannot be targeted; use a Gateway, an HTTPRoute or a Service", ref.Kind, ref.Group)
	}
	if key.section != "" {
		return key, fmt.Errorf("sectionName is only supported on HTTPRoute targets (naming a rule)")
	}
	return key, nil
}

// missingTarget says why a target does not count, or "" when it exists.
func (tp *trafficPolicies) missingTarget(t policyTargetKey) string {
	nn := types.NamespacedName{Namespace: t.namespace, Name: t.name}
	switch t.level {
	case levelGateway:
		gw := tp.ix.gatewayByKey[nn]
		if gw == nil {
			return fmt.Sprintf("Gateway %s does not exist.", nn)
		}
		if !tp.ix.ownsClass(string(gw.Spec.GatewayClassName)) {
			return fmt.Sprintf("Gateway %s is not served by %s.", nn, tp.ix.controllerName)
		}
	case levelService:
		if tp.ix.services[nn] == nil {
			return fmt.Sprintf("Service %s does not exist.", nn)
		}
	default:
		route := tp.ix.routeByKey[nn]
		if route == nil {
			return fmt.Sprintf("HTTPRoute %s does not exist.", nn)
		}
		if t.level == levelRule && !slices.ContainsFunc(route.Spec.Rules, func(r gwv1.HTTPRouteRule) bool { return str(r.Name, "") == t.section }) {
			return fmt.Sprintf("HTTPRoute %s has no rule named %q.", nn, t.section)
		}
	}
	return ""
}

// findConflict reports, when another policy of the same target precedes this one
// for every field this one sets on every one of its targets, which policy that is.
func (tp *trafficPolicies) findConflict(p *trafficPolicy) string {
	var fields []string
	for f := range numPolicyFields {
		if p.settings.set[f] {
			fields = append(fields, policyFieldNames[f])
		}
	}
	if len(fields) == 0 || len(p.targets) == 0 {
		return ""
	}
	var winner *trafficPolicy
	for _, t := range p.targets {
		for f := range numPolicyFields {
			if !p.settings.set[f] {
				continue
			}
			q := firstSetting(tp.byTarget[t], f)
			if q == p {
				return ""
			}
			if winner == nil {
				winner = q
			}
		}
	}
	return fmt.Sprintf("TrafficPolicy %s takes precedence on the same targets for every field this policy sets (%s): it is older, or as old and first by name.",
		winner.key, strings.Join(fields, ", "))
}

// firstSetting returns the first policy of a precedence-ordered list that sets the
// field.
func firstSetting(list []*trafficPolicy, f policyField) *trafficPolicy {
	for _, p := range list {
		if p.settings.set[f] {
			return p
		}
	}
	return nil
}

// overrideNote is where other settings won a field over a policy: the first place,
// described, and how many places in all.
type overrideNote struct {
	first  string
	places int
}

// String renders the note as a sentence.
func (n overrideNote) String() string {
	switch n.places {
	case 1:
		return n.first + "."
	case 2:
		return n.first + " (and in 1 other place)."
	}
	return fmt.Sprintf("%s (and in %d other places).", n.first, n.places-1)
}

// noteOverride records that a setting took the field from the policy at a place.
// winner and where describe the setting and the place; they are functions so that
// only the first place of each field, the one described, costs any text.
func (tp *trafficPolicies) noteOverride(p *trafficPolicy, f policyField, winner, where func() string) {
	notes := tp.overrides[p]
	if notes == nil {
		notes = &[numPolicyFields]overrideNote{}
		tp.overrides[p] = notes
	}
	if notes[f].places == 0 {
		notes[f].first = fmt.Sprintf("Its %s is overridden by %s for %s", policyFieldNames[f], winner(), where())
	}
	notes[f].places++
}

// noteApplied records that the policy's setting of the field applies somewhere.
func (tp *trafficPolicies) noteApplied(p *trafficPolicy, f policyField) {
	applied := tp.applied[p]
	if applied == nil {
		applied = &[numPolicyFields]bool{}
		tp.applied[p] = applied
	}
	applied[f] = true
}

// addAncestor records a parent (a Gateway or a Service) in a set of ancestors.
func addAncestor(m map[types.NamespacedName]map[policyTargetKey]bool, key types.NamespacedName, parent policyTargetKey) {
	set := m[key]
	if set == nil {
		set = map[policyTargetKey]bool{}
		m[key] = set
	}
	set[parent] = true
}

// gatewayParent is the policy target key of a Gateway as the parent of routes.
func gatewayParent(key types.NamespacedName) policyTargetKey {
	return policyTargetKey{level: levelGateway, namespace: key.Namespace, name: key.Name}
}

// serviceParent is the policy target key of a Service as the parent of mesh routes.
func serviceParent(key types.NamespacedName) policyTargetKey {
	return policyTargetKey{level: levelService, namespace: key.Namespace, name: key.Name}
}
