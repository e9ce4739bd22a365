package standalone

import (
	"sort"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/controller/translate"
)

// StatusReport is what the admin API shows at /api/v1/status in standalone mode: the
// status each object would carry in a cluster, and the conditions that are not OK.
type StatusReport struct {
	GatewayClasses map[string]gwv1.GatewayClassStatus `json:"gatewayClasses,omitempty"`
	Gateways       map[string]gwv1.GatewayStatus      `json:"gateways,omitempty"`
	HTTPRoutes     map[string]gwv1.HTTPRouteStatus    `json:"httpRoutes,omitempty"`
	// TrafficPolicies holds each TrafficPolicy's status, by namespace/name.
	TrafficPolicies map[string]gwv1.PolicyStatus `json:"trafficPolicies,omitempty"`
	// Rollouts holds each Rollout's status, by namespace/name: translation's
	// Accepted condition and, where a rollout driver runs, where the rollout stands.
	Rollouts map[string]v1alpha1.RolloutStatus `json:"rollouts,omitempty"`
	// Problems lists every condition that is not in its healthy state.
	Problems []Problem `json:"problems,omitempty"`
	// BindErrors lists listeners whose socket could not be bound.
	BindErrors []BindError `json:"bindErrors,omitempty"`
}

// Problem is one unhealthy condition of one object.
type Problem struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Condition string `json:"condition"`
	Reason    string `json:"reason"`
	Message   string `json:"message"`
}

// BindError is a listener that could not be bound.
type BindError struct {
	Listener string `json:"listener"`
	Error    string `json:"error"`
}

// healthyFalse lists condition types whose healthy state is False.
var healthyFalse = map[string]bool{"Conflicted": true}

// NewStatusReport summarises a translation for the admin API: every status, and the
// conditions that are not in their healthy state.
func NewStatusReport(out *translate.Output) *StatusReport {
	rep := &StatusReport{
		GatewayClasses:  map[string]gwv1.GatewayClassStatus{},
		Gateways:        map[string]gwv1.GatewayStatus{},
		HTTPRoutes:      map[string]gwv1.HTTPRouteStatus{},
		TrafficPolicies: map[string]gwv1.PolicyStatus{},
		Rollouts:        map[string]v1alpha1.RolloutStatus{},
	}
	for name, st := range out.GatewayClasses {
		rep.GatewayClasses[name] = st
		rep.collect("GatewayClass", name, st.Conditions)
	}
	for nn, st := range out.Gateways {
		name := nn.String()
		rep.Gateways[name] = st
		rep.collect("Gateway", name, st.Conditions)
		for _, l := range st.Listeners {
			rep.collect("Gateway", name+"/"+string(l.Name), l.Conditions)
		}
	}
	for nn, st := range out.HTTPRoutes {
		name := nn.String()
		rep.HTTPRoutes[name] = st
		for _, p := range st.Parents {
			rep.collect("HTTPRoute", name+" (parent "+string(p.ParentRef.Name)+")", p.Conditions)
		}
	}
	for nn, st := range out.TrafficPolicies {
		name := nn.String()
		rep.TrafficPolicies[name] = st
		for _, a := range st.Ancestors {
			rep.collect("TrafficPolicy", name+" (ancestor "+string(a.AncestorRef.Name)+")", a.Conditions)
		}
	}
	for nn, res := range out.Rollouts {
		name := nn.String()
		rep.Rollouts[name] = v1alpha1.RolloutStatus{Conditions: []metav1.Condition{res.Accepted}}
		rep.collect("Rollout", name, []metav1.Condition{res.Accepted})
	}
	rep.sortProblems()
	return rep
}

// withRolloutStatuses returns a copy of the report in which each Rollout shows the
// status the rollout driver keeps, with translation's Accepted condition, which is
// newer than the driver's copy until its next tick.
func (rep *StatusReport) withRolloutStatuses(stored map[types.NamespacedName]v1alpha1.RolloutStatus) *StatusReport {
	out := *rep
	out.Rollouts = make(map[string]v1alpha1.RolloutStatus, len(rep.Rollouts))
	out.Problems = nil
	for _, p := range rep.Problems {
		if p.Kind != "Rollout" {
			out.Problems = append(out.Problems, p)
		}
	}
	for nn, st := range stored {
		name := nn.String()
		fromTranslation, ok := rep.Rollouts[name]
		if !ok {
			continue
		}
		for _, c := range fromTranslation.Conditions {
			meta.SetStatusCondition(&st.Conditions, c)
		}
		out.Rollouts[name] = st
	}
	for name, st := range rep.Rollouts {
		if _, ok := out.Rollouts[name]; !ok {
			out.Rollouts[name] = st
		}
	}
	for name, st := range out.Rollouts {
		out.collect("Rollout", name, st.Conditions)
	}
	out.sortProblems()
	return &out
}

func (rep *StatusReport) sortProblems() {
	sort.Slice(rep.Problems, func(i, j int) bool {
		a, b := rep.Problems[i], rep.Problems[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Condition < b.Condition
	})
}

func (rep *StatusReport) collect(kind, name string, conds []metav1.Condition) {
	for _, c := range conds {
		healthy := metav1.ConditionTrue
		if healthyFalse[c.Type] {
			healthy = metav1.ConditionFalse
		}
		if c.Status == healthy {
			continue
		}
		rep.Problems = append(rep.Problems, Problem{
			Kind: kind, Name: name, Condition: c.Type, Reason: c.Reason, Message: c.Message,
		})
	}
}
