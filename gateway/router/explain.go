package router

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// This file answers the questions operators ask of a route table: in which order are
// the matches tried (MatchOrder), and which match does a request hit and why do the
// others not (Explain). Neither runs on the request path, so both allocate freely.
//
// Explain takes its winner from Lookup itself and judges each condition with the
// compiled predicates Lookup uses (the same regular expressions, header and query
// comparisons), so that the explanation cannot disagree with routing. Only the path
// index is restated as a predicate, and the tests compare the two.

// TierKind says how specifically a route's hostname names a request's host, the
// first precedence criterion within a virtual host.
type TierKind string

const (
	// TierExact is a route hostname equal to the host.
	TierExact TierKind = "Exact"
	// TierWildcard is a wildcard route hostname whose suffix the host ends with;
	// longer suffixes are more specific.
	TierWildcard TierKind = "Wildcard"
	// TierAny is a route without hostnames, which accepts every host of its
	// virtual host.
	TierAny TierKind = "Any"
	// TierNone means no hostname of the route accepts the host.
	TierNone TierKind = "None"
)

// Candidate is one compiled match of a rule.
type Candidate struct {
	// Entry is what Lookup returns when the match wins.
	*Entry
	// MatchIndex is the index of Entry.Match in its rule's matches; 0 for a rule
	// without matches (Entry.Match is nil then).
	MatchIndex int
}

// Tier lists the matches of one hostname tier in the order Lookup tries them.
type Tier struct {
	// Kind is the tier's specificity.
	Kind TierKind
	// Hostname is the route hostname the tier holds ("a.example.com",
	// "*.example.com"), or "" for the routes without hostnames.
	Hostname string
	// Candidates are in precedence order.
	Candidates []Candidate
}

// VirtualHostOrder is the compiled match order of one virtual host.
type VirtualHostOrder struct {
	// VirtualHost is the virtual host the tiers belong to.
	VirtualHost *config.VirtualHost
	// Tiers are exact hostnames (alphabetically), then wildcards from the longest
	// suffix, then the routes without hostnames. A request tries the tiers that
	// accept its host in this order; a route with several hostnames is in several
	// tiers.
	Tiers []Tier
}

// MatchOrder returns, per virtual host in listener order, the matches of every
// hostname tier in the order Lookup tries them.
func (t *Table) MatchOrder() []VirtualHostOrder {
	out := make([]VirtualHostOrder, 0, len(t.vhosts))
	for _, vt := range t.vhosts {
		order := VirtualHostOrder{VirtualHost: vt.spec}
		for _, key := range slices.Sorted(maps.Keys(vt.exactHosts)) {
			order.Tiers = append(order.Tiers, vt.exactHosts[key].describe(TierExact, key))
		}
		wildcards := slices.Collect(maps.Keys(vt.wildcardHosts))
		slices.SortFunc(wildcards, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b)) })
		for _, key := range wildcards {
			order.Tiers = append(order.Tiers, vt.wildcardHosts[key].describe(TierWildcard, "*."+key))
		}
		if vt.anyHost != nil {
			order.Tiers = append(order.Tiers, vt.anyHost.describe(TierAny, ""))
		}
		out = append(out, order)
	}
	return out
}

// describe lists the tier's candidates in precedence order.
func (t *tier) describe(kind TierKind, hostname string) Tier {
	all := slices.Clone(t.small)
	for _, list := range t.exact {
		all = append(all, list...)
	}
	for _, list := range t.prefix {
		all = append(all, list...)
	}
	all = append(all, t.regex...)
	slices.SortFunc(all, compareCandidates)
	out := Tier{Kind: kind, Hostname: hostname, Candidates: make([]Candidate, len(all))}
	for i, c := range all {
		out.Candidates[i] = c.describe()
	}
	return out
}

func (c *candidate) describe() Candidate { return Candidate{Entry: &c.Entry, MatchIndex: c.matchIndex} }

// Outcome is what became of one match for a request.
type Outcome string

const (
	// OutcomeChosen is the match that serves the request.
	OutcomeChosen Outcome = "Chosen"
	// OutcomeNotMatched means at least one condition of the match does not hold.
	OutcomeNotMatched Outcome = "NotMatched"
	// OutcomeOutranked means every condition holds but a match of higher
	// precedence serves the request.
	OutcomeOutranked Outcome = "Outranked"
)

// Criterion names what a Reason is about.
type Criterion string

// The criteria of a Reason: the conditions of a match, and precedence.
const (
	CriterionHostname   Criterion = "hostname"
	CriterionPath       Criterion = "path"
	CriterionMethod     Criterion = "method"
	CriterionHeader     Criterion = "header"
	CriterionQuery      Criterion = "query"
	CriterionPrecedence Criterion = "precedence"
)

// Reason is one cause of a match losing: a condition that does not hold, or the
// precedence criterion by which the chosen match ranks ahead.
type Reason struct {
	// Criterion is what the reason is about.
	Criterion Criterion
	// Detail explains it in a sentence.
	Detail string
}

// CandidateExplanation is one match of the request's virtual host and what became
// of it.
type CandidateExplanation struct {
	Candidate
	// Tier is the most specific hostname tier the route's hostnames place the match
	// in for the request's host; TierNone when none accepts the host.
	Tier TierKind
	// Hostname is the route hostname that places the match in Tier; "" for TierAny
	// and TierNone.
	Hostname string
	// Outcome is whether the match serves the request, and if not, why.
	Outcome Outcome
	// Reasons are every condition that does not hold (OutcomeNotMatched), or the
	// precedence criterion that decided (OutcomeOutranked); none when chosen.
	Reasons []Reason
}

// Explanation is Explain's answer for one request.
type Explanation struct {
	// Host is the request's host as compared: no port, lower case, no trailing dot.
	Host string
	// Path is the decoded request path that path conditions compare.
	Path string
	// VirtualHost is the virtual host the host selects; nil when none does, and
	// then no route is considered (404).
	VirtualHost *config.VirtualHost
	// Chosen is what Lookup returns for the request; nil means 404.
	Chosen *Entry
	// Candidates are every match of the virtual host in the order Lookup
	// considers them: by hostname tier, then precedence. Matches whose route does
	// not accept the host come last. The matches of other virtual hosts are never
	// considered (listener isolation).
	Candidates []CandidateExplanation
}

// Explain reports which match serves r and, for every other match of its virtual
// host, why it does not. It is much slower than Lookup and meant for operators.
func (t *Table) Explain(r *http.Request) *Explanation {
	host := normalizeHost(r.Host)
	path := ""
	if r.URL != nil {
		path = r.URL.Path
	}
	ex := &Explanation{Host: host, Path: path}
	vt := virtualHostOf(t, host)
	if vt == nil {
		return ex
	}
	ex.VirtualHost = vt.spec
	ex.Chosen = lookupIn(vt, host, path, r)
	judged := make([]judgedCandidate, len(vt.candidates))
	for i, c := range vt.candidates {
		judged[i] = judge(c, host, path, r)
	}
	// The candidates are in precedence order already; a stable sort by tier puts
	// them in the order Lookup tries them.
	slices.SortStableFunc(judged, func(a, b judgedCandidate) int { return a.rank.compare(b.rank) })
	var chosen *judgedCandidate
	for i := range judged {
		if &judged[i].c.Entry == ex.Chosen {
			chosen = &judged[i]
		}
	}
	ex.Candidates = make([]CandidateExplanation, len(judged))
	for i := range judged {
		ex.Candidates[i] = judged[i].explanation(chosen)
	}
	return ex
}

// tierRank orders hostname tiers from the most specific.
type tierRank struct {
	kind TierKind
	// suffixLen is the length of a wildcard's suffix; longer is more specific.
	suffixLen int
	hostname  string
}

var tierOrder = map[TierKind]int{TierExact: 0, TierWildcard: 1, TierAny: 2, TierNone: 3}

func (a tierRank) compare(b tierRank) int {
	return cmp.Or(cmp.Compare(tierOrder[a.kind], tierOrder[b.kind]), cmp.Compare(b.suffixLen, a.suffixLen))
}

// label names the tier in a sentence.
func (a tierRank) label() string {
	switch a.kind {
	case TierExact, TierWildcard:
		return fmt.Sprintf("%s hostname %s", strings.ToLower(string(a.kind)), a.hostname)
	case TierAny:
		return "no hostname"
	}
	return "no matching hostname"
}

// routeTier returns the most specific tier the route's hostnames place it in for
// host, as tiersFor and vhostTable.lookup do.
func routeTier(route *config.Route, host string) tierRank {
	if len(route.Hostnames) == 0 {
		return tierRank{kind: TierAny}
	}
	best := tierRank{kind: TierNone}
	for _, h := range route.Hostnames {
		kind, key := parseHostname(h)
		var r tierRank
		switch {
		case kind == hostExact && key == host:
			r = tierRank{kind: TierExact, hostname: h}
		case kind == hostWildcard && strings.HasSuffix(host, "."+key):
			r = tierRank{kind: TierWildcard, suffixLen: len(key), hostname: h}
		case kind == hostAny:
			r = tierRank{kind: TierAny}
		default:
			continue
		}
		if r.compare(best) < 0 {
			best = r
		}
	}
	return best
}

// judgedCandidate is a candidate with its tier and the conditions that failed.
type judgedCandidate struct {
	c      *candidate
	rank   tierRank
	failed []Reason
}

// judge checks every condition of c against the request, without stopping at the
// first that fails, so that the operator sees them all.
func judge(c *candidate, host, path string, r *http.Request) judgedCandidate {
	j := judgedCandidate{c: c, rank: routeTier(c.Route, host)}
	if j.rank.kind == TierNone {
		j.fail(CriterionHostname, fmt.Sprintf("the route's hostnames %s do not accept the host %q",
			strings.Join(c.Route.Hostnames, ", "), host))
	}
	if !c.pathHolds(path) {
		j.fail(CriterionPath, c.pathMismatch(path))
	}
	if c.method != "" && r.Method != c.method {
		j.fail(CriterionMethod, fmt.Sprintf("the match requires method %s; the request's is %s", c.method, r.Method))
	}
	for i := range c.headers {
		if h := &c.headers[i]; !h.matchesHeader(r) {
			j.fail(CriterionHeader, h.mismatch("header", headerValue(h, r)))
		}
	}
	rawQuery := ""
	if r.URL != nil {
		rawQuery = r.URL.RawQuery
	}
	for i := range c.query {
		if q := &c.query[i]; !matchesQuery(q, rawQuery) {
			j.fail(CriterionQuery, q.mismatch("query parameter", queryValue(q, rawQuery)))
		}
	}
	return j
}

func (j *judgedCandidate) fail(criterion Criterion, detail string) {
	j.failed = append(j.failed, Reason{Criterion: criterion, Detail: detail})
}

// explanation is what Explain reports of j, given the chosen candidate (nil when
// the request gets 404).
func (j *judgedCandidate) explanation(chosen *judgedCandidate) CandidateExplanation {
	out := CandidateExplanation{Candidate: j.c.describe(), Tier: j.rank.kind, Hostname: j.rank.hostname}
	switch {
	case len(j.failed) > 0:
		out.Outcome, out.Reasons = OutcomeNotMatched, j.failed
	case chosen == j:
		out.Outcome = OutcomeChosen
	default:
		out.Outcome = OutcomeOutranked
		out.Reasons = []Reason{{Criterion: CriterionPrecedence, Detail: outrankedBy(chosen, j)}}
	}
	return out
}

// pathHolds reports whether the path criterion holds: the predicate form of the
// tier's exact and prefix indexes (a prefix matches whole segments) and the
// regular expression.
func (c *candidate) pathHolds(path string) bool {
	switch c.kind {
	case pathExact:
		return path == c.pathKey
	case pathPrefix:
		return path == c.pathKey || (strings.HasPrefix(path, c.pathKey) && path[len(c.pathKey)] == '/')
	}
	return c.pathRegex.MatchString(path)
}

// pathMismatch explains a path criterion that does not hold.
func (c *candidate) pathMismatch(path string) string {
	switch c.kind {
	case pathExact:
		return fmt.Sprintf("the path %q is not exactly %q", path, pathValue(c))
	case pathPrefix:
		return fmt.Sprintf("the path %q does not start with the prefix %q (prefixes match whole segments)", path, pathValue(c))
	}
	return fmt.Sprintf("the path %q does not match the regular expression %q", path, pathValue(c))
}

// mismatch explains a header or query condition that does not hold; value is the
// request's value, nil when it has none.
func (v *valueCond) mismatch(what string, value *string) string {
	want := fmt.Sprintf("to be %q", v.value)
	if v.re != nil {
		want = fmt.Sprintf("to match the regular expression %q", v.value)
	}
	if value == nil {
		return fmt.Sprintf("the match requires %s %s %s; the request has none", what, v.name, want)
	}
	return fmt.Sprintf("the match requires %s %s %s; the request's is %q", what, v.name, want, *value)
}

// headerValue is the request's value that a header condition compares, or nil.
func headerValue(h *valueCond, r *http.Request) *string {
	if h.isHost {
		if r.Host == "" {
			return nil
		}
		return &r.Host
	}
	if values := r.Header[h.name]; len(values) > 0 {
		return &values[0]
	}
	return nil
}

// queryValue is the decoded request value that a query condition compares, or nil.
func queryValue(q *valueCond, rawQuery string) *string {
	raw, ok := firstQueryValue(rawQuery, q.name)
	if !ok {
		return nil
	}
	if v, err := url.QueryUnescape(raw); err == nil {
		raw = v
	}
	return &raw
}

// outrankedBy names the first precedence criterion by which the chosen candidate
// ranks ahead of c, following the tier order and then compareCandidates.
func outrankedBy(chosen, c *judgedCandidate) string {
	if chosen == nil {
		// Only reachable if the predicates above disagreed with Lookup.
		return "the route table chose no match for this request"
	}
	if chosen.rank.compare(c.rank) != 0 {
		return fmt.Sprintf("the chosen match's route has the more specific %s (this one: %s)", chosen.rank.label(), c.rank.label())
	}
	a, b := chosen.c, c.c
	switch {
	case a.kind != b.kind:
		return fmt.Sprintf("a %s path ranks before a %s path", kindName(a.kind), kindName(b.kind))
	case a.pathLen != b.pathLen:
		return fmt.Sprintf("the chosen match's path prefix %q is longer than %q", pathValue(a), pathValue(b))
	case compareHasMethod(a, b) != 0:
		return "the chosen match requires a method and this one does not"
	case len(a.headers) != len(b.headers):
		return fmt.Sprintf("the chosen match has more header conditions (%d, this one %d)", len(a.headers), len(b.headers))
	case len(a.query) != len(b.query):
		return fmt.Sprintf("the chosen match has more query parameter conditions (%d, this one %d)", len(a.query), len(b.query))
	case !a.created.Equal(b.created):
		return fmt.Sprintf("the chosen match's route is older (created %s, this one %s)",
			a.created.UTC().Format("2006-01-02T15:04:05Z"), b.created.UTC().Format("2006-01-02T15:04:05Z"))
	case a.routeName != b.routeName:
		return fmt.Sprintf("the chosen route's name %s sorts before %s", a.routeName, b.routeName)
	case a.routeIndex != b.routeIndex:
		return "the chosen route, of the same name, is listed first"
	case a.RuleIndex != b.RuleIndex:
		return fmt.Sprintf("rule %d of the same route comes before rule %d", a.RuleIndex, b.RuleIndex)
	}
	return fmt.Sprintf("match %d of the same rule comes before match %d", a.matchIndex, b.matchIndex)
}

func kindName(k pathKind) string {
	switch k {
	case pathExact:
		return string(config.PathExact)
	case pathPrefix:
		return string(config.PathPrefix)
	}
	return string(config.PathRegularExpression)
}

// pathValue is the configured path value of a candidate; "/" for one without a path.
func pathValue(c *candidate) string {
	if c.Match == nil || c.Match.Path == nil {
		return "/"
	}
	return c.Match.Path.Value
}
