package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/admin"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

// This file renders the admin API's answers as tables for switchyard ctl.

// rolloutList is the answer of GET /api/v1/rollouts.
type rolloutList struct {
	Rollouts []admin.RolloutView `json:"rollouts"`
}

// statusProblems is the part of GET /api/v1/status that ctl shows.
type statusProblems struct {
	Problems []struct {
		Kind, Name, Condition, Reason, Message string
	} `json:"problems"`
}

// table writes tab-separated rows in aligned columns.
type table struct {
	w *tabwriter.Writer
}

func newTable(out io.Writer, header ...string) *table {
	t := &table{w: tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.w, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.w.Flush() }

func renderRoutes(out io.Writer, v any) error {
	view := v.(*admin.RoutesView)
	fmt.Fprintf(out, "version %s\n", view.Version)
	t := newTable(out, "LISTENER", "VIRTUAL HOST", "HOSTNAME", "ROUTE", "RULE", "MATCH", "BACKENDS")
	for _, l := range view.Listeners {
		for _, vh := range l.VirtualHosts {
			for _, tier := range vh.Tiers {
				hostname := tier.Hostname
				if tier.Kind == "Any" {
					hostname = "*"
				}
				for _, m := range tier.Matches {
					t.row(l.Name, vh.Name, hostname, m.Route, ruleLabel(m), conditions(m.Conditions), backends(m.Backends))
				}
			}
		}
	}
	return t.flush()
}

// ruleLabel names a rule (and match) of a route: "1 (main)", "0.2".
func ruleLabel(m admin.RouteMatch) string {
	s := strconv.Itoa(m.Rule)
	if m.Match != nil && *m.Match > 0 {
		s += "." + strconv.Itoa(*m.Match)
	}
	if m.RuleName != "" {
		s += " (" + m.RuleName + ")"
	}
	return s
}

// conditions summarises a match: "PathPrefix /v1 GET X-Canary=yes ?page~[0-9]+".
func conditions(m *config.Match) string {
	if m == nil {
		return "PathPrefix /"
	}
	var parts []string
	if m.Path != nil {
		parts = append(parts, string(m.Path.Type)+" "+m.Path.Value)
	} else {
		parts = append(parts, "PathPrefix /")
	}
	if m.Method != "" {
		parts = append(parts, m.Method)
	}
	value := func(prefix string, vm config.ValueMatch) string {
		op := "="
		if vm.Type == config.MatchRegularExpression {
			op = "~"
		}
		return prefix + vm.Name + op + vm.Value
	}
	for _, h := range m.Headers {
		parts = append(parts, value("", h))
	}
	for _, q := range m.QueryParams {
		parts = append(parts, value("?", q))
	}
	return strings.Join(parts, " ")
}

func backends(refs []admin.RouteBackend) string {
	var parts []string
	for _, b := range refs {
		name := b.Backend
		if b.Invalid != "" {
			name = "invalid: " + b.Invalid
		}
		parts = append(parts, fmt.Sprintf("%s (%d)", name, b.Weight))
	}
	return strings.Join(parts, ", ")
}

func renderMatch(out io.Writer, v any) error {
	view := v.(*admin.MatchView)
	r := view.Request
	target := r.Path
	if r.Query != "" {
		target += "?" + r.Query
	}
	fmt.Fprintf(out, "%s %s%s (version %s)\n", r.Method, r.Host, target, view.Version)
	if len(view.Listeners) == 0 {
		fmt.Fprintln(out, "no listener serves this request")
	}
	for _, l := range view.Listeners {
		fmt.Fprintf(out, "\nlistener %s: %s", l.Listener, l.Result)
		if l.Chosen != nil {
			fmt.Fprintf(out, ", route %s rule %s -> %s", l.Chosen.Route, ruleLabel(*l.Chosen), backends(l.Chosen.Backends))
		}
		if l.VirtualHost != "" {
			fmt.Fprintf(out, " (virtual host %s)", l.VirtualHost)
		}
		fmt.Fprintln(out)
		if l.OmittedForHostname > 0 {
			fmt.Fprintf(out, "%d matches of routes whose hostnames do not accept the host are left out (--all lists them)\n", l.OmittedForHostname)
		}
		if len(l.Candidates) == 0 {
			continue
		}
		t := newTable(out, "OUTCOME", "ROUTE", "RULE", "MATCH", "HOSTNAME", "WHY")
		for _, c := range l.Candidates {
			hostname := string(c.Tier)
			if c.TierHostname != "" {
				hostname = c.TierHostname
			}
			var why []string
			for _, reason := range c.Reasons {
				why = append(why, reason.Criterion+": "+reason.Detail)
			}
			t.row(c.Outcome, c.Route, ruleLabel(c.RouteMatch), conditions(c.Conditions), hostname, strings.Join(why, "; "))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	return nil
}

func renderBackends(out io.Writer, v any) error {
	view := v.(*admin.BackendsView)
	t := newTable(out, "BACKEND", "ENDPOINT", "STATE", "IN-FLIGHT", "REQUESTS", "FAILURES", "NOTE")
	for _, b := range view.Backends {
		summary := fmt.Sprintf("%d requests, %d errors", b.Outcomes.Requests, b.Outcomes.Errors)
		if b.Outcomes.P99Millis != nil {
			summary += fmt.Sprintf(", p99 %gms", *b.Outcomes.P99Millis)
		}
		if b.Breaker.Overflows > 0 {
			summary += fmt.Sprintf(", %d turned away by the breaker", b.Breaker.Overflows)
		}
		var inFlight int64
		for _, e := range b.Endpoints {
			inFlight += e.InFlight
		}
		t.row(b.Name, "", "", strconv.FormatInt(inFlight, 10), "", "", summary)
		for _, e := range b.Endpoints {
			note := ""
			if !e.EjectedUntil.IsZero() {
				note = "ejected until " + e.EjectedUntil.Local().Format(time.TimeOnly)
			}
			t.row("", e.Address, e.State, strconv.FormatInt(e.InFlight, 10),
				strconv.FormatUint(e.Requests, 10), strconv.FormatUint(e.Failures, 10), note)
		}
	}
	return t.flush()
}

func renderDrain(out io.Writer, v any) error {
	view := v.(*admin.DrainView)
	t := newTable(out, "BACKEND", "ENDPOINT", "DRAINED", "AVAILABLE")
	var empty []string
	for _, e := range view.Endpoints {
		t.row(e.Backend, e.Address, strconv.FormatBool(e.Drained), strconv.Itoa(e.Available))
		if e.Available == 0 {
			empty = append(empty, e.Backend)
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	switch len(empty) {
	case 0:
	case 1:
		fmt.Fprintf(out, "warning: %s now has no endpoint taking requests and answers 503\n", empty[0])
	default:
		fmt.Fprintf(out, "warning: %s now have no endpoint taking requests and answer 503\n", strings.Join(empty, ", "))
	}
	return nil
}

func renderRateLimits(out io.Writer, v any) error {
	view := v.(*admin.RateLimitsView)
	t := newTable(out, "ID", "MODE", "ENFORCEMENT", "RULES", "ATTACHED TO")
	for _, rl := range view.RateLimits {
		var rules, places []string
		for _, r := range rl.Rules {
			key := string(r.Key.Type)
			if r.Key.Name != "" {
				key += " " + r.Key.Name
			}
			rules = append(rules, fmt.Sprintf("%d/%s+%d by %s", r.Requests, r.Per.D(), r.Burst, key))
		}
		for _, at := range rl.AttachedTo {
			place := fmt.Sprintf("%s rule %d", at.Route, at.Rule)
			if at.Backend != "" {
				place += " -> " + at.Backend
			}
			places = append(places, place)
		}
		t.row(rl.ID, rl.Mode, rl.Enforcement, strings.Join(rules, "; "), strings.Join(places, ", "))
	}
	return t.flush()
}

func renderRollouts(out io.Writer, v any) error {
	t := newTable(out, "ROLLOUT", "PHASE", "STEP", "CANARY WEIGHT", "WAITING", "MESSAGE")
	for _, r := range v.(*rolloutList).Rollouts {
		rolloutRow(t, r)
	}
	return t.flush()
}

func renderRollout(out io.Writer, v any) error {
	t := newTable(out, "ROLLOUT", "PHASE", "STEP", "CANARY WEIGHT", "WAITING", "MESSAGE")
	rolloutRow(t, *v.(*admin.RolloutView))
	return t.flush()
}

func rolloutRow(t *table, r admin.RolloutView) {
	t.row(r.Namespace+"/"+r.Name, r.Phase, fmt.Sprintf("%d/%d", r.CurrentStep+1, r.Steps),
		fmt.Sprintf("%d%%", r.CanaryWeight), r.Waiting, r.Message)
}

func renderGateways(out io.Writer, v any) error {
	view := v.(*admin.GatewaysView)
	fmt.Fprintf(out, "newest version %s\n", view.NewestVersion)
	t := newTable(out, "NODE", "ROLE", "INSTANCE", "CONNECTED", "ACKED VERSION", "LAG", "LAST ACK", "ERROR")
	for _, g := range view.Gateways {
		lastAck := ""
		if !g.LastAck.IsZero() {
			lastAck = g.LastAck.Local().Format(time.DateTime)
		}
		errText := g.AckError
		if g.SendError != "" {
			errText = g.SendError
		}
		t.row(g.Node, g.Role, g.Instance, strconv.FormatBool(g.Connected), g.AckedVersion, lagLabel(g.Lag), lastAck, errText)
	}
	return t.flush()
}

// lagLabel is "in sync", "2 versions, 3.5s" or "unknown".
func lagLabel(l admin.GatewayLag) string {
	switch {
	case l.InSync:
		return "in sync"
	case l.Versions < 0:
		return "unknown"
	}
	return fmt.Sprintf("%d versions, %s", l.Versions, (time.Duration(l.Seconds * float64(time.Second))).Round(100*time.Millisecond))
}

func renderGraph(out io.Writer, v any) error {
	view := v.(*admin.GraphView)
	fmt.Fprintf(out, "edges over the last %s\n", view.Window)
	t := newTable(out, "CALLER", "CALLEE", "REQ/S", "ERRORS", "P50", "P90", "P99", "REQUESTS")
	for _, e := range view.Edges {
		t.row(e.Caller, e.Callee, strconv.FormatFloat(e.RequestsPerSecond, 'f', 2, 64),
			strconv.FormatFloat(100*e.ErrorRate, 'f', 2, 64)+"%", millisLabel(e.LatencyMs.P50),
			millisLabel(e.LatencyMs.P90), millisLabel(e.LatencyMs.P99), strconv.FormatInt(e.Requests, 10))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if view.OmittedEdges > 0 {
		fmt.Fprintf(out, "%d quieter edges left out\n", view.OmittedEdges)
	}
	return nil
}

// millisLabel shows a latency in milliseconds, with fewer decimals as it grows.
func millisLabel(ms float64) string {
	decimals := 2
	switch {
	case ms >= 100:
		decimals = 0
	case ms >= 10:
		decimals = 1
	}
	return strconv.FormatFloat(ms, 'f', decimals, 64) + "ms"
}

func renderStatus(out io.Writer, v any) error {
	view := v.(*statusProblems)
	if len(view.Problems) == 0 {
		fmt.Fprintln(out, "every condition is healthy")
		return nil
	}
	t := newTable(out, "KIND", "NAME", "CONDITION", "REASON", "MESSAGE")
	for _, p := range view.Problems {
		t.row(p.Kind, p.Name, p.Condition, p.Reason, p.Message)
	}
	return t.flush()
}
