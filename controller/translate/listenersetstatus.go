package translate

import (
	"time"

	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// reasonParentNotProgrammed is the ListenerSet Programmed reason the Gateway API
// documents for a parent Gateway that cannot be served; the API has no constant for it.
const reasonParentNotProgrammed gwv1.ListenerSetConditionReason = "ParentNotProgrammed"

// listenerSetStatuses renders the status of every ListenerSet that names an owned
// Gateway, after routes have been attached.
func listenerSetStatuses(gateways []*gatewayState, now time.Time) map[types.NamespacedName]gwv1.ListenerSetStatus {
	out := map[types.NamespacedName]gwv1.ListenerSetStatus{}
	for _, gs := range gateways {
		for _, s := range gs.sets {
			out[s.key] = s.status(now)
		}
	}
	return out
}

// reportListenerSets adds status.attachedListenerSets to the status of a Gateway
// that allows ListenerSets: the number of ListenerSets it accepted.
func (gs *gatewayState) reportListenerSets(st *gwv1.GatewayStatus) {
	if !allowsListenerSets(gs.gw) {
		return
	}
	var n int32
	for _, s := range gs.sets {
		if ok, _, _ := s.acceptance(); ok {
			n++
		}
	}
	st.AttachedListenerSets = &n
}

// status renders the ListenerSet's status.
func (s *listenerSetState) status(now time.Time) gwv1.ListenerSetStatus {
	st := gwv1.ListenerSetStatus{}
	for _, l := range s.listeners {
		st.Listeners = append(st.Listeners, l.entryStatus(now))
	}
	conds := newConditionSet(s.ls.Generation, now)
	ok, reason, detail := s.acceptance()
	conds.set(string(gwv1.ListenerSetConditionAccepted), ok, string(reason), detail)
	if !ok {
		conds.set(string(gwv1.ListenerSetConditionProgrammed), false, string(reason), detail)
	} else {
		ok, reason, detail = s.programmed()
		conds.set(string(gwv1.ListenerSetConditionProgrammed), ok, string(reason), detail)
	}
	st.Conditions = conds.list()
	return st
}

// programmed decides the Programmed condition of an accepted ListenerSet: true when
// the data plane serves at least one of its listeners.
func (s *listenerSetState) programmed() (bool, gwv1.ListenerSetConditionReason, string) {
	if p := s.gateway.problem; p != nil {
		return false, reasonParentNotProgrammed, "Gateway " + s.gateway.key.String() + " is not programmed: " + p.message
	}
	portReason := ""
	for _, l := range s.listeners {
		if l.programmed() {
			return true, gwv1.ListenerSetReasonProgrammed, "The ListenerSet is programmed."
		}
		switch {
		case portReason != "" || !l.valid():
		case l.unplaced != "":
			portReason = l.unplaced
		case l.portTaken != "":
			portReason = l.portTaken
		}
	}
	if portReason != "" {
		return false, gwv1.ListenerSetConditionReason(gwv1.ListenerEntryReasonPortUnavailable), portReason
	}
	return false, gwv1.ListenerSetReasonInvalid, "No listener of the ListenerSet can be programmed."
}

// entryStatus renders a ListenerSet listener's status: that of a Gateway listener,
// except that a conflicted listener gives its conflict as the reason it is not
// programmed.
func (l *listenerState) entryStatus(now time.Time) gwv1.ListenerEntryStatus {
	ls := l.status(now)
	if l.conflictReason != "" {
		for i := range ls.Conditions {
			if ls.Conditions[i].Type == string(gwv1.ListenerConditionProgrammed) {
				ls.Conditions[i].Reason = l.conflictReason
				ls.Conditions[i].Message = l.conflictDetail
			}
		}
	}
	return gwv1.ListenerEntryStatus{
		Name:           ls.Name,
		SupportedKinds: ls.SupportedKinds,
		AttachedRoutes: ls.AttachedRoutes,
		Conditions:     ls.Conditions,
	}
}
