package translate

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

// The limits of the Rollout CRD, checked here too because files skip its schema.
const (
	maxRolloutSteps        = 32
	maxRolloutHeaderMatch  = 8
	maxHeaderMatchValueLen = 4096
)

// The reasons of a Rollout's Accepted condition besides the policy ones.
const (
	rolloutReasonBackendNotFound = "BackendNotFound"
)

// errorRatePattern is the CRD's pattern for analysis.maxErrorRate.
var errorRatePattern = regexp.MustCompile(`^(100|[0-9]{1,2}(\.[0-9]+)?)%$`)

// rolloutPlan is one Rollout as translation judged it.
type rolloutPlan struct {
	key types.NamespacedName
	obj *v1alpha1.Rollout
	// reason and message give Accepted=False when reason is set; such a Rollout
	// changes nothing.
	reason, message string
	// stable and canary are the IR names of the backends.
	stable, canary string
	// weight is the canary's percentage in force; live says whether header-matched
	// requests go to the canary.
	weight int32
	live   bool
	// rules are the HTTPRoute rules the Rollout shifts, by route and rule index.
	rules []shiftedRule
}

// shiftedRule is one HTTPRoute rule a Rollout shifts, or the default mesh route of
// a Service port.
type shiftedRule struct {
	route types.NamespacedName
	index int
	// meshDefault, when set, is the Service port whose default mesh route is
	// shifted; route and index are then unused.
	meshDefault backendOrigin
}

// describe names the rule in messages.
func (r shiftedRule) describe() string {
	if r.meshDefault != (backendOrigin{}) {
		return fmt.Sprintf("the default mesh route of Service %s port %d", r.meshDefault.service, r.meshDefault.port)
	}
	return fmt.Sprintf("HTTPRoute %s rule %d", r.route, r.index)
}

// rollouts holds the Rollouts of one translation.
type rollouts struct {
	plans []*rolloutPlan
	// byRoute lists, per route, the rules that accepted Rollouts shift.
	byRoute map[types.NamespacedName][]ruleShift
	// byMeshDefault holds, per Service port, the accepted Rollout that shifts its
	// default mesh route.
	byMeshDefault map[backendOrigin]*rolloutPlan
}

// ruleShift is a rule index and the Rollout that shifts it.
type ruleShift struct {
	index int
	plan  *rolloutPlan
}

// newRollouts judges every Rollout, oldest first, so that of two Rollouts that
// shift one rule the older keeps it and the other is reported Conflicted.
func newRollouts(ix *index, in []*v1alpha1.Rollout) *rollouts {
	rs := &rollouts{byRoute: map[types.NamespacedName][]ruleShift{}, byMeshDefault: map[backendOrigin]*rolloutPlan{}}
	for _, obj := range uniqueSorted(in) {
		rs.plans = append(rs.plans, &rolloutPlan{key: types.NamespacedName{Namespace: obj.Namespace, Name: obj.Name}, obj: obj})
	}
	byAge := slices.Clone(rs.plans)
	slices.SortStableFunc(byAge, func(x, y *rolloutPlan) int {
		if tx, ty := x.obj.CreationTimestamp.Time, y.obj.CreationTimestamp.Time; !tx.Equal(ty) {
			if tx.Before(ty) {
				return -1
			}
			return 1
		}
		return strings.Compare(x.key.String(), y.key.String())
	})
	claimed := map[shiftedRule]*rolloutPlan{}
	for _, plan := range byAge {
		ix.evaluateRollout(plan)
		if plan.reason != "" {
			continue
		}
		for _, r := range plan.rules {
			if owner := claimed[r]; owner != nil {
				plan.reason = string(gwv1.PolicyReasonConflicted)
				plan.message = fmt.Sprintf("Rollout %s already shifts %s: it is older, or as old and first by name.", owner.key, r.describe())
				break
			}
		}
		if plan.reason != "" {
			continue
		}
		for _, r := range plan.rules {
			claimed[r] = plan
			if r.meshDefault != (backendOrigin{}) {
				rs.byMeshDefault[r.meshDefault] = plan
				continue
			}
			rs.byRoute[r.route] = append(rs.byRoute[r.route], ruleShift{index: r.index, plan: plan})
		}
	}
	return rs
}

// evaluateRollout checks a Rollout, finds where it stands and the rules it shifts,
// and resolves its backends. Problems are recorded on the plan.
func (ix *index) evaluateRollout(plan *rolloutPlan) {
	r := plan.obj
	if err := validateRollout(&r.Spec); err != nil {
		plan.reason, plan.message = string(gwv1.PolicyReasonInvalid), sentence(err.Error())
		return
	}
	weight, live, err := rolloutPosition(r)
	if err != nil {
		plan.reason, plan.message = string(gwv1.PolicyReasonInvalid), sentence(err.Error())
		return
	}
	plan.weight, plan.live = weight, live
	ns := r.Namespace
	plan.stable = ns + "/" + string(r.Spec.Stable.Name) + ":" + strconv.Itoa(int(r.Spec.Stable.Port))
	plan.canary = ns + "/" + string(r.Spec.Canary.Name) + ":" + strconv.Itoa(int(r.Spec.Canary.Port))
	rules, missing := ix.rolloutRules(r)
	if missing != "" {
		plan.reason, plan.message = string(gwv1.PolicyReasonTargetNotFound), missing
		return
	}
	for _, b := range []v1alpha1.RolloutBackend{r.Spec.Stable, r.Spec.Canary} {
		if why := ix.missingServicePort(ns, b); why != "" {
			plan.reason, plan.message = rolloutReasonBackendNotFound, why
			return
		}
	}
	// The canary is added to rules as any backendRef would be, so it must resolve as
	// one (its protocol, and any BackendTLSPolicy of it, must be usable).
	res := ix.resolveBackend(ns, canaryReference(r))
	if res.name == "" {
		plan.reason, plan.message = rolloutReasonBackendNotFound, sentence("The canary cannot be used: "+res.detail+res.tlsProblem)
		return
	}
	plan.rules = rules
}

// canaryReference is a backendRef to the Rollout's canary.
func canaryReference(r *v1alpha1.Rollout) gwv1.BackendObjectReference {
	return gwv1.BackendObjectReference{Name: r.Spec.Canary.Name, Port: ptrTo(gwv1.PortNumber(r.Spec.Canary.Port))}
}

// missingServicePort says why a Rollout backend does not resolve, or "".
func (ix *index) missingServicePort(ns string, b v1alpha1.RolloutBackend) string {
	svc := ix.services[types.NamespacedName{Namespace: ns, Name: string(b.Name)}]
	if svc == nil {
		return fmt.Sprintf("Service %s/%s does not exist.", ns, b.Name)
	}
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == b.Port }) {
		return fmt.Sprintf("Service %s/%s has no port %d.", ns, b.Name, b.Port)
	}
	return ""
}

// rolloutRules finds the rules a Rollout shifts: those of its target (one rule by
// sectionName, or every rule of an HTTPRoute, or every rule of every route of its
// namespace for a Service target) that send to the stable backend. With the mesh on,
// a Service target also shifts the default mesh route of the stable Service port
// when no HTTPRoute names that port as its parent (a port named only by refused
// routes is served by its default route unshifted). It says why when there are none.
func (ix *index) rolloutRules(r *v1alpha1.Rollout) ([]shiftedRule, string) {
	t := r.Spec.TargetRef
	ns := r.Namespace
	var routes []*gwv1.HTTPRoute
	if t.Kind == kindService {
		if ix.services[types.NamespacedName{Namespace: ns, Name: string(t.Name)}] == nil {
			return nil, fmt.Sprintf("Service %s/%s does not exist.", ns, t.Name)
		}
		for _, route := range ix.routes {
			if route.Namespace == ns {
				routes = append(routes, route)
			}
		}
	} else {
		route := ix.routeByKey[types.NamespacedName{Namespace: ns, Name: string(t.Name)}]
		if route == nil {
			return nil, fmt.Sprintf("HTTPRoute %s/%s does not exist.", ns, t.Name)
		}
		if t.SectionName != nil && !slices.ContainsFunc(route.Spec.Rules, func(rule gwv1.HTTPRouteRule) bool { return str(rule.Name, "") == string(*t.SectionName) }) {
			return nil, fmt.Sprintf("HTTPRoute %s/%s has no rule named %q.", ns, t.Name, *t.SectionName)
		}
		routes = append(routes, route)
	}
	var out []shiftedRule
	for _, route := range routes {
		for i := range route.Spec.Rules {
			rule := &route.Spec.Rules[i]
			if t.SectionName != nil && str(rule.Name, "") != string(*t.SectionName) {
				continue
			}
			if slices.ContainsFunc(rule.BackendRefs, func(b gwv1.HTTPBackendRef) bool { return refersTo(route.Namespace, b, ns, r.Spec.Stable) }) {
				out = append(out, shiftedRule{route: types.NamespacedName{Namespace: route.Namespace, Name: route.Name}, index: i})
			}
		}
	}
	stable := backendOrigin{service: types.NamespacedName{Namespace: ns, Name: string(r.Spec.Stable.Name)}, port: r.Spec.Stable.Port}
	if t.Kind == kindService && ix.mesh != nil && ix.mesh.hasDefaultRoute(stable) {
		out = append(out, shiftedRule{meshDefault: stable})
	}
	if len(out) == 0 {
		return nil, fmt.Sprintf("No rule of %s %s/%s%s sends to Service %s/%s port %d.", t.Kind, ns, t.Name,
			describeRuleSection(t.SectionName), ns, r.Spec.Stable.Name, r.Spec.Stable.Port)
	}
	return out, ""
}

func describeRuleSection(section *gwv1.SectionName) string {
	if section == nil {
		return ""
	}
	return fmt.Sprintf(" named %q", *section)
}

// refersTo reports whether a backendRef of a route names the Service port b.
func refersTo(routeNamespace string, ref gwv1.HTTPBackendRef, ns string, b v1alpha1.RolloutBackend) bool {
	r := ref.BackendObjectReference
	return str(r.Group, coreGroup) == coreGroup && str(r.Kind, kindService) == kindService &&
		str(r.Namespace, routeNamespace) == ns && r.Name == b.Name && r.Port != nil && int32(*r.Port) == b.Port
}

// rolloutPosition reads where a Rollout stands from its status: the canary weight
// in force and whether the rollout is live. A new Rollout, or one whose spec
// changed since its status was written, stands at its first step.
func rolloutPosition(r *v1alpha1.Rollout) (int32, bool, error) {
	st := r.Status
	if st.Phase == "" || st.ObservedGeneration != r.Generation {
		return r.Spec.Steps[0].Weight, true, nil
	}
	if st.CanaryWeight < 0 || st.CanaryWeight > 100 {
		return 0, false, fmt.Errorf("status.canaryWeight %d is not in 0-100", st.CanaryWeight)
	}
	switch st.Phase {
	case v1alpha1.RolloutProgressing, v1alpha1.RolloutPaused:
		return st.CanaryWeight, true, nil
	case v1alpha1.RolloutPromoted:
		return st.CanaryWeight, false, nil
	case v1alpha1.RolloutAborted:
		return 0, false, nil
	}
	return 0, false, fmt.Errorf("status.phase %q is not Progressing, Paused, Promoted or Aborted", st.Phase)
}

// validateRollout checks every value of a Rollout's spec.
func validateRollout(s *v1alpha1.RolloutSpec) error {
	t := s.TargetRef
	switch {
	case string(t.Group) == gatewayGroup && t.Kind == kindHTTPRoute:
	case string(t.Group) == coreGroup && t.Kind == kindService:
		if t.SectionName != nil {
			return fmt.Errorf("spec.targetRef: sectionName is only supported on an HTTPRoute target (naming a rule)")
		}
	default:
		return fmt.Errorf("spec.targetRef: kind %q in group %q cannot be targeted; use an HTTPRoute or a Service", t.Kind, t.Group)
	}
	if t.Name == "" {
		return fmt.Errorf("spec.targetRef.name is empty")
	}
	for _, b := range []struct {
		field   string
		backend v1alpha1.RolloutBackend
	}{{"spec.stable", s.Stable}, {"spec.canary", s.Canary}} {
		if b.backend.Name == "" {
			return fmt.Errorf("%s.name is empty", b.field)
		}
		if b.backend.Port < 1 || b.backend.Port > 65535 {
			return fmt.Errorf("%s.port %d is not in 1-65535", b.field, b.backend.Port)
		}
	}
	if s.Stable == s.Canary {
		return fmt.Errorf("spec.stable and spec.canary are the same backend")
	}
	if len(s.Steps) == 0 || len(s.Steps) > maxRolloutSteps {
		return fmt.Errorf("spec.steps has %d entries; 1 to %d are allowed", len(s.Steps), maxRolloutSteps)
	}
	for i, step := range s.Steps {
		if step.Weight < 0 || step.Weight > 100 {
			return fmt.Errorf("spec.steps[%d].weight %d is not in 0-100", i, step.Weight)
		}
		if _, err := policyDuration(fmt.Sprintf("spec.steps[%d].pause", i), step.Pause, 0, false); err != nil {
			return err
		}
	}
	if err := validateHeaderMatch(s.HeaderMatch); err != nil {
		return err
	}
	return validateAnalysis(s.Analysis)
}

func validateHeaderMatch(list []v1alpha1.RolloutHeaderMatch) error {
	if len(list) > maxRolloutHeaderMatch {
		return fmt.Errorf("spec.headerMatch has %d entries; at most %d are allowed", len(list), maxRolloutHeaderMatch)
	}
	for i, h := range list {
		if !httpguts.ValidHeaderFieldName(string(h.Name)) {
			return fmt.Errorf("spec.headerMatch[%d].name %q is not a valid header name", i, h.Name)
		}
		if len(h.Value) > maxHeaderMatchValueLen || !httpguts.ValidHeaderFieldValue(h.Value) {
			return fmt.Errorf("spec.headerMatch[%d].value is not a valid header value of at most %d bytes", i, maxHeaderMatchValueLen)
		}
	}
	return nil
}

func validateAnalysis(a *v1alpha1.RolloutAnalysis) error {
	if a == nil {
		return nil
	}
	if _, err := policyDuration("spec.analysis.interval", a.Interval, 0, true); err != nil {
		return err
	}
	if a.MinRequests != nil && *a.MinRequests < 1 {
		return fmt.Errorf("spec.analysis.minRequests %d is less than 1", *a.MinRequests)
	}
	if a.MaxErrorRate != "" && !errorRatePattern.MatchString(a.MaxErrorRate) {
		return fmt.Errorf("spec.analysis.maxErrorRate %q is not a percentage such as \"1%%\" or \"0.5%%\"", a.MaxErrorRate)
	}
	_, err := policyDuration("spec.analysis.maxLatencyP99", a.MaxLatencyP99, 0, true)
	return err
}

// results renders what translation found of every Rollout; backends are the
// snapshot's and the mesh's, sorted by name.
func (rs *rollouts) results(ix *index, backends []config.Backend, now time.Time) map[types.NamespacedName]RolloutResult {
	out := make(map[types.NamespacedName]RolloutResult, len(rs.plans))
	for _, plan := range rs.plans {
		conds := newConditionSet(plan.obj.Generation, now)
		accepted := string(gwv1.PolicyConditionAccepted)
		if plan.reason != "" {
			conds.set(accepted, false, plan.reason, plan.message)
		} else {
			conds.set(accepted, true, string(gwv1.PolicyReasonAccepted), fmt.Sprintf("The rollout shifts %d rule(s) from %s to %s; the canary has %d%%.",
				len(plan.rules), plan.stable, plan.canary, plan.weight))
		}
		res := RolloutResult{Accepted: conds.byType[accepted], StableBackend: plan.stable, CanaryBackend: plan.canary}
		if plan.reason == "" {
			res.Rules = len(plan.rules)
			res.CanaryBackends = backendsOf(ix, backends, plan.key.Namespace, plan.obj.Spec.Canary)
		}
		out[plan.key] = res
	}
	return out
}

// backendsOf lists the names of the snapshot's backends that stand for the Service
// port b, in the snapshot's order (sorted by name).
func backendsOf(ix *index, backends []config.Backend, ns string, b v1alpha1.RolloutBackend) []string {
	want := backendOrigin{service: types.NamespacedName{Namespace: ns, Name: string(b.Name)}, port: b.Port}
	var names []string
	for i := range backends {
		if origin, ok := ix.backendOrigins[backends[i].Name]; ok && origin == want {
			names = append(names, backends[i].Name)
		}
	}
	return names
}
