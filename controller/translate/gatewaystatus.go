package translate

import (
	"fmt"
	"strings"
	"time"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// status renders the Gateway's status after routes have been attached.
func (gs *gatewayState) status(now time.Time) gwv1.GatewayStatus {
	st := gwv1.GatewayStatus{Listeners: []gwv1.ListenerStatus{}}
	switch {
	case gs.placed:
		if len(gs.statusAddresses) > 0 {
			st.Addresses = gs.statusAddresses
		}
	case gs.address != "":
		st.Addresses = []gwv1.GatewayStatusAddress{{Type: ptrTo(gwv1.IPAddressType), Value: gs.address}}
	}
	for _, l := range gs.listeners {
		st.Listeners = append(st.Listeners, l.status(now))
	}
	conds := newConditionSet(gs.gw.Generation, now)
	gs.setAccepted(conds)
	gs.setProgrammed(conds)
	gs.setInsecureFrontend(conds)
	st.Conditions = conds.list()
	return st
}

func (gs *gatewayState) setAccepted(conds *conditionSet) {
	accepted := string(gwv1.GatewayConditionAccepted)
	if gs.problem != nil && gs.problem.acceptedReason != "" {
		conds.set(accepted, false, gs.problem.acceptedReason, gs.problem.message)
		return
	}
	var good, bad []string
	for _, l := range gs.listeners {
		if l.accepted {
			good = append(good, l.name)
		} else {
			bad = append(bad, l.name)
		}
	}
	switch {
	case len(bad) == 0 && len(good) > 0:
		conds.set(accepted, true, string(gwv1.GatewayReasonAccepted), "The Gateway is accepted.")
	case len(good) > 0:
		conds.set(accepted, true, string(gwv1.GatewayReasonListenersNotValid),
			fmt.Sprintf("Listeners %s are not valid; listeners %s are accepted.", strings.Join(bad, ", "), strings.Join(good, ", ")))
	default:
		conds.set(accepted, false, string(gwv1.GatewayReasonListenersNotValid), "No listener of the Gateway is valid.")
	}
}

func (gs *gatewayState) setProgrammed(conds *conditionSet) {
	programmed := string(gwv1.GatewayConditionProgrammed)
	if gs.problem != nil {
		conds.set(programmed, false, gs.problem.programmedReason, gs.problem.message)
		return
	}
	for _, l := range gs.listeners {
		if l.accepted && l.unplaced != "" {
			conds.set(programmed, false, string(gwv1.GatewayReasonNoResources), "Listener "+l.name+": "+l.unplaced)
			return
		}
	}
	anyProgrammed := false
	for _, l := range gs.listeners {
		if l.portTaken != "" {
			conds.set(programmed, false, string(gwv1.GatewayReasonAddressNotUsable), "Listener "+l.name+": "+l.portTaken)
			return
		}
		anyProgrammed = anyProgrammed || l.programmed()
	}
	if !anyProgrammed {
		conds.set(programmed, false, string(gwv1.GatewayReasonInvalid), "No listener of the Gateway can be programmed.")
		return
	}
	conds.set(programmed, true, string(gwv1.GatewayReasonProgrammed), "The Gateway is programmed.")
}

// status renders one listener's status.
func (l *listenerState) status(now time.Time) gwv1.ListenerStatus {
	conds := newConditionSet(l.generation(), now)
	if l.accepted {
		conds.set(string(gwv1.ListenerConditionAccepted), true, string(gwv1.ListenerReasonAccepted), "The listener is accepted.")
	} else {
		conds.set(string(gwv1.ListenerConditionAccepted), false, l.acceptedReason, l.acceptedDetail)
	}
	if l.conflictReason != "" {
		conds.set(string(gwv1.ListenerConditionConflicted), true, l.conflictReason, l.conflictDetail)
	} else {
		conds.set(string(gwv1.ListenerConditionConflicted), false, string(gwv1.ListenerReasonNoConflicts), "The listener does not conflict with another.")
	}
	if l.refsProblem != "" {
		conds.set(string(gwv1.ListenerConditionResolvedRefs), false, l.refsProblem, l.refsDetail)
	} else {
		conds.set(string(gwv1.ListenerConditionResolvedRefs), true, string(gwv1.ListenerReasonResolvedRefs), "All references are resolved.")
	}
	if l.programmed() {
		conds.set(string(gwv1.ListenerConditionProgrammed), true, string(gwv1.ListenerReasonProgrammed), "The listener is programmed.")
	} else {
		conds.set(string(gwv1.ListenerConditionProgrammed), false, string(gwv1.ListenerReasonInvalid), l.notProgrammedReason())
	}
	return gwv1.ListenerStatus{
		Name:           gwv1.SectionName(l.name),
		SupportedKinds: l.supportedKinds,
		AttachedRoutes: l.attachedRoutes,
		Conditions:     conds.list(),
	}
}

// notProgrammedReason explains, in one sentence, why the listener is not served.
func (l *listenerState) notProgrammedReason() string {
	switch {
	case l.gateway.problem != nil:
		return l.gateway.problem.message
	case !l.accepted:
		return "The listener is not accepted: " + l.acceptedDetail
	case l.unplaced != "":
		return l.unplaced
	case l.portTaken != "":
		return l.portTaken
	case !l.allowsHTTPRoute:
		return "The listener allows no supported route kind."
	default:
		return "The listener has no usable certificate."
	}
}
