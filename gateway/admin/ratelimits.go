package admin

import (
	"fmt"
	"sort"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// RateLimitsView is what GET /api/v1/ratelimits shows: the rate limits of the
// serving configuration and how this replica enforces them.
type RateLimitsView struct {
	// Version is the serving snapshot's version.
	Version string `json:"version"`
	// Redis reports whether Global limits are kept in a shared Redis.
	Redis bool `json:"redis"`
	// Replicas is how many replicas this one counts as sharing Global limits.
	Replicas int `json:"replicas"`
	// RateLimits are sorted by ID.
	RateLimits []RateLimitView `json:"rateLimits"`
}

// RateLimitView is one rate limit (a TrafficPolicy's rateLimit) and where it
// applies.
type RateLimitView struct {
	// ID names the policy; filters with the same ID and rule share buckets.
	ID string `json:"id"`
	// Mode is Local or Global; FailureMode applies to Global while Redis is down.
	Mode        string `json:"mode"`
	FailureMode string `json:"failureMode,omitempty"`
	// Enforcement is how this replica enforces it: Local (the whole limit per
	// replica), Redis (one limit shared through Redis) or LocalShare (Global
	// without Redis: each replica allows its share, limit / replicas).
	Enforcement string `json:"enforcement"`
	// Rules are the token buckets a request must fit.
	Rules []config.RateLimitRule `json:"rules"`
	// AttachedTo lists the rules (and backend references) that apply it.
	AttachedTo []RateLimitAttachment `json:"attachedTo"`
}

// RateLimitAttachment is one place a rate limit applies.
type RateLimitAttachment struct {
	// Listener, VirtualHost, Route and Rule locate the rule.
	Listener    string `json:"listener"`
	VirtualHost string `json:"virtualHost"`
	Route       string `json:"route"`
	Rule        int    `json:"rule"`
	// Backend is set when the filter belongs to one backend reference of the rule.
	Backend string `json:"backend,omitempty"`
}

// RateLimits collects the RateLimit filters of the serving snapshot.
func (d engineDataPlane) RateLimits() RateLimitsView {
	snap, _ := d.engine.Snapshot()
	redis, replicas := d.engine.RateLimitSharing()
	view := RateLimitsView{Redis: redis, Replicas: replicas, RateLimits: []RateLimitView{}}
	if snap == nil {
		return view
	}
	view.Version = snap.Version
	byKey := map[string]*RateLimitView{}
	add := func(f *config.Filter, at RateLimitAttachment) {
		rl := f.RateLimit
		if f.Type != config.FilterRateLimit || rl == nil {
			return
		}
		// Filters with the same ID but other settings (a policy being edited while
		// a Rollout holds an older copy, say) are shown apart.
		key := fmt.Sprintf("%s\x00%s\x00%s\x00%v", rl.ID, rl.Mode, rl.FailureMode, rl.Rules)
		v := byKey[key]
		if v == nil {
			v = &RateLimitView{ID: rl.ID, Mode: string(rl.Mode), FailureMode: rl.FailureMode,
				Enforcement: enforcement(rl.Mode, redis), Rules: rl.Rules}
			byKey[key] = v
		}
		v.AttachedTo = append(v.AttachedTo, at)
	}
	walkRules(snap, func(at RateLimitAttachment, rule *config.Rule) {
		for i := range rule.Filters {
			add(&rule.Filters[i], at)
		}
		for _, ref := range rule.Backends {
			for i := range ref.Filters {
				withBackend := at
				withBackend.Backend = ref.Backend
				add(&ref.Filters[i], withBackend)
			}
		}
	})
	for _, v := range byKey {
		view.RateLimits = append(view.RateLimits, *v)
	}
	sort.Slice(view.RateLimits, func(i, j int) bool {
		a, b := view.RateLimits[i], view.RateLimits[j]
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		return a.AttachedTo[0].Route < b.AttachedTo[0].Route
	})
	return view
}

// walkRules calls f for every rule of the snapshot, with where it is.
func walkRules(snap *config.Snapshot, f func(RateLimitAttachment, *config.Rule)) {
	for li := range snap.Listeners {
		l := &snap.Listeners[li]
		for vi := range l.VirtualHosts {
			vh := &l.VirtualHosts[vi]
			for ri := range vh.Routes {
				route := &vh.Routes[ri]
				for i := range route.Rules {
					f(RateLimitAttachment{Listener: l.Name, VirtualHost: vh.Name, Route: route.Name, Rule: i}, &route.Rules[i])
				}
			}
		}
	}
}

func enforcement(mode config.RateLimitMode, redis bool) string {
	switch {
	case mode != config.RateLimitGlobal:
		return "Local"
	case redis:
		return "Redis"
	}
	return "LocalShare"
}
