package status

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const ours = gwv1.GatewayController("switchyard.dev/gateway-controller")

var (
	t0 = metav1.NewTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 = metav1.NewTime(time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC))
)

func cond(typ string, ok bool, reason string, at metav1.Time) metav1.Condition {
	st := metav1.ConditionFalse
	if ok {
		st = metav1.ConditionTrue
	}
	return metav1.Condition{Type: typ, Status: st, Reason: reason, Message: reason + " message", ObservedGeneration: 1, LastTransitionTime: at}
}

func TestMergeConditionsKeepsTransitionTimeOfUnchangedStatus(t *testing.T) {
	current := []metav1.Condition{cond("Accepted", true, "Accepted", t0), cond("ResolvedRefs", true, "ResolvedRefs", t0)}
	desired := []metav1.Condition{
		cond("Accepted", true, "Accepted", t1),             // unchanged status: keeps t0
		cond("ResolvedRefs", false, "BackendNotFound", t1), // status flipped: t1
		cond("Programmed", true, "Programmed", t1),         // new type: t1
	}
	got := mergeConditions(current, desired)
	want := []metav1.Time{t0, t1, t1}
	for i := range want {
		if !got[i].LastTransitionTime.Equal(&want[i]) {
			t.Errorf("condition %s lastTransitionTime %v, want %v", got[i].Type, got[i].LastTransitionTime, want[i])
		}
	}
	if got[1].Reason != "BackendNotFound" || got[0].ObservedGeneration != 1 {
		t.Errorf("merged conditions lost desired fields: %+v", got)
	}
	if !desired[0].LastTransitionTime.Equal(&t1) {
		t.Error("mergeConditions modified the desired conditions")
	}
	if mergeConditions(current, nil) != nil {
		t.Error("no desired conditions must give none")
	}
}

func TestMergeConditionsReasonChangeKeepsTimeButIsAChange(t *testing.T) {
	current := gwv1.GatewayClassStatus{Conditions: []metav1.Condition{cond("Accepted", true, "Accepted", t0)}}
	desired := gwv1.GatewayClassStatus{Conditions: []metav1.Condition{cond("Accepted", true, "SomethingElse", t1)}}
	merged := mergeGatewayClassStatus(current, desired)
	if !merged.Conditions[0].LastTransitionTime.Equal(&t0) {
		t.Errorf("a reason change moved lastTransitionTime to %v", merged.Conditions[0].LastTransitionTime)
	}
	if sameStatus(current, merged) {
		t.Error("a changed reason was not seen as a change")
	}
	// The same desired status with a later translation time is no change at all.
	again := gwv1.GatewayClassStatus{Conditions: []metav1.Condition{cond("Accepted", true, "Accepted", t1)}}
	if m := mergeGatewayClassStatus(current, again); !sameStatus(current, m) {
		t.Errorf("an identical status with a later time was seen as a change: %+v", m)
	}
}

func parentRef(name string, section string) gwv1.ParentReference {
	ref := gwv1.ParentReference{Name: gwv1.ObjectName(name)}
	if section != "" {
		s := gwv1.SectionName(section)
		ref.SectionName = &s
	}
	return ref
}

func parent(controller gwv1.GatewayController, ref gwv1.ParentReference, at metav1.Time, ok bool) gwv1.RouteParentStatus {
	return gwv1.RouteParentStatus{ParentRef: ref, ControllerName: controller,
		Conditions: []metav1.Condition{cond("Accepted", ok, "Accepted", at)}}
}

func TestMergeRouteStatus(t *testing.T) {
	other := gwv1.GatewayController("example.com/other")
	current := gwv1.HTTPRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: []gwv1.RouteParentStatus{
		parent(other, parentRef("theirs", ""), t0, true),
		parent(ours, parentRef("kept", ""), t0, true),
		parent(ours, parentRef("stale", ""), t0, true),
		parent(other, parentRef("kept", ""), t0, false), // another controller, same parent
	}}}
	desired := []gwv1.RouteParentStatus{
		parent(ours, parentRef("new", "http"), t1, true),
		parent(ours, parentRef("kept", ""), t1, true),
	}
	got := mergeRouteStatus("default", current, desired, ours)
	type entry struct {
		controller gwv1.GatewayController
		name       string
	}
	want := []entry{{other, "theirs"}, {ours, "kept"}, {other, "kept"}, {ours, "new"}}
	if len(got.Parents) != len(want) {
		t.Fatalf("merged %d parents, want %d: %+v", len(got.Parents), len(want), got.Parents)
	}
	for i, w := range want {
		p := got.Parents[i]
		if p.ControllerName != w.controller || string(p.ParentRef.Name) != w.name {
			t.Errorf("parent %d is %s %s, want %s %s", i, p.ControllerName, p.ParentRef.Name, w.controller, w.name)
		}
		if p.ControllerName == ours && (p.ParentRef.Group == nil || p.ParentRef.Kind == nil) {
			t.Errorf("our parent %d has no defaulted group and kind", i)
		}
	}
	kept := got.Parents[1].Conditions[0].LastTransitionTime
	if !kept.Equal(&t0) {
		t.Errorf("unchanged parent lastTransitionTime %v, want %v", kept, t0)
	}
	if got.Parents[2].Conditions[0].Status != metav1.ConditionFalse {
		t.Error("another controller's entry was changed")
	}

	// Merging again onto the result changes nothing, even with a later time, and with
	// the parentRef defaults spelled out as the API server stores them.
	later := []gwv1.RouteParentStatus{parent(ours, parentRef("new", "http"), metav1.NewTime(t1.Add(time.Hour)), true),
		parent(ours, parentRef("kept", ""), metav1.NewTime(t1.Add(time.Hour)), true)}
	if again := mergeRouteStatus("default", got, later, ours); !sameStatus(got, again) {
		t.Errorf("a second merge changed the status:\n%+v\n%+v", got.Parents, again.Parents)
	}
}

func TestMergeRouteStatusRemovesAllOurEntriesWhenNoneAreDesired(t *testing.T) {
	other := gwv1.GatewayController("example.com/other")
	current := gwv1.HTTPRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: []gwv1.RouteParentStatus{
		parent(ours, parentRef("gone", ""), t0, true),
		parent(other, parentRef("theirs", ""), t0, true),
	}}}
	got := mergeRouteStatus("default", current, nil, ours)
	if len(got.Parents) != 1 || got.Parents[0].ControllerName != other {
		t.Errorf("merged parents %+v, want only the other controller's", got.Parents)
	}
	if !hasParentOf(current, ours) || hasParentOf(got, ours) {
		t.Error("hasParentOf does not tell whether our entries are present")
	}
}

func TestMergeRouteStatusMatchesParentRefsWithDefaults(t *testing.T) {
	ns := gwv1.Namespace("default")
	group := gwv1.Group(gwv1.GroupName)
	kind := gwv1.Kind("Gateway")
	spelled := gwv1.ParentReference{Name: "gw", Namespace: &ns, Group: &group, Kind: &kind}
	current := gwv1.HTTPRouteStatus{RouteStatus: gwv1.RouteStatus{Parents: []gwv1.RouteParentStatus{
		parent(ours, spelled, t0, true)}}}
	got := mergeRouteStatus("default", current, []gwv1.RouteParentStatus{parent(ours, parentRef("gw", ""), t1, true)}, ours)
	if len(got.Parents) != 1 || !got.Parents[0].Conditions[0].LastTransitionTime.Equal(&t0) {
		t.Errorf("a parentRef with its defaults spelled out was not matched: %+v", got.Parents)
	}
	other := gwv1.Namespace("other")
	if keyOf("default", parentRef("gw", "")) == keyOf("default", gwv1.ParentReference{Name: "gw", Namespace: &other}) {
		t.Error("parents in different namespaces have the same key")
	}
}

// TestMergeRouteStatusAdoptsTheTranslatorsControllerName covers a writer configured
// with another name than translation: the desired entries' name still counts as
// ours, so repeated merges never add duplicates.
func TestMergeRouteStatusAdoptsTheTranslatorsControllerName(t *testing.T) {
	translator := gwv1.GatewayController("example.com/translator")
	desired := []gwv1.RouteParentStatus{parent(translator, parentRef("gw", ""), t0, true)}
	st := gwv1.HTTPRouteStatus{}
	for range 3 {
		st = mergeRouteStatus("default", st, desired, ours)
	}
	if len(st.Parents) != 1 {
		t.Errorf("three merges gave %d parents, want 1", len(st.Parents))
	}
}

func TestMergeGatewayStatus(t *testing.T) {
	current := gwv1.GatewayStatus{
		Conditions: []metav1.Condition{cond("Accepted", true, "Accepted", t0)},
		Listeners: []gwv1.ListenerStatus{
			{Name: "https", Conditions: []metav1.Condition{cond("Programmed", false, "Invalid", t0)}},
			{Name: "http", Conditions: []metav1.Condition{cond("Programmed", true, "Programmed", t0)}},
		},
	}
	desired := gwv1.GatewayStatus{
		Addresses:  []gwv1.GatewayStatusAddress{{Value: "10.0.0.1"}},
		Conditions: []metav1.Condition{cond("Accepted", true, "Accepted", t1)},
		Listeners: []gwv1.ListenerStatus{
			{Name: "http", AttachedRoutes: 2, SupportedKinds: []gwv1.RouteGroupKind{{Kind: "HTTPRoute"}},
				Conditions: []metav1.Condition{cond("Programmed", true, "Programmed", t1)}},
			{Name: "https", Conditions: []metav1.Condition{cond("Programmed", true, "Programmed", t1)}},
		},
	}
	got := mergeGatewayStatus(current, desired)
	if !got.Conditions[0].LastTransitionTime.Equal(&t0) {
		t.Error("Gateway condition lost its transition time")
	}
	if at := got.Listeners[0].Conditions[0].LastTransitionTime; !at.Equal(&t0) {
		t.Errorf("listener http (matched by name) lastTransitionTime %v, want %v", at, t0)
	}
	if at := got.Listeners[1].Conditions[0].LastTransitionTime; !at.Equal(&t1) {
		t.Errorf("listener https became programmed but lastTransitionTime is %v, want %v", at, t1)
	}
	if got.Addresses[0].Type == nil || *got.Addresses[0].Type != gwv1.IPAddressType {
		t.Error("address type not defaulted to IPAddress")
	}
	if g := got.Listeners[0].SupportedKinds[0].Group; g == nil || *g != gwv1.GroupName {
		t.Error("supported kind group not defaulted")
	}
	if desired.Addresses[0].Type != nil || desired.Listeners[0].SupportedKinds[0].Group != nil {
		t.Error("mergeGatewayStatus modified the desired status")
	}
	if again := mergeGatewayStatus(got, desired); !sameStatus(got, again) {
		t.Error("merging the same desired status twice is not stable")
	}
}
