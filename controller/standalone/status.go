package standalone

import (
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

// StatusReport is what the admin API shows at /api/v1/status in standalone mode: the
// status each object would carry in a cluster, and the conditions that are not OK.
type StatusReport struct {
	GatewayClasses map[string]gwv1.GatewayClassStatus `json:"gatewayClasses,omitempty"`
	Gateways       map[string]gwv1.GatewayStatus      `json:"gateways,omitempty"`
	HTTPRoutes     map[string]gwv1.HTTPRouteStatus    `json:"httpRoutes,omitempty"`
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
		GatewayClasses: map[string]gwv1.GatewayClassStatus{},
		Gateways:       map[string]gwv1.GatewayStatus{},
		HTTPRoutes:     map[string]gwv1.HTTPRouteStatus{},
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
	return rep
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
