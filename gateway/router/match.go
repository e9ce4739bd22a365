package router

import (
	"cmp"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// pathKind is the path criterion of a match, in precedence order.
type pathKind int

const (
	pathExact pathKind = iota
	pathPrefix
	pathRegex
)

// candidate is one compiled match together with everything Lookup checks and
// everything that orders it against other candidates.
type candidate struct {
	// Entry is what Lookup returns when the candidate wins.
	Entry

	kind pathKind
	// pathKey is the exact path, or the prefix with one trailing slash removed ("" for
	// "/"); it is the key of the tier's exact or prefix index.
	pathKey string
	// pathLen is the number of characters in the configured Exact or PathPrefix value:
	// longer prefixes take precedence.
	pathLen   int
	pathRegex *regexp.Regexp

	method  string
	headers []valueCond
	query   []valueCond

	// Tie-breakers across and within routes.
	created    time.Time
	routeName  string
	routeIndex int
	matchIndex int
}

// valueCond is one header or query parameter condition.
type valueCond struct {
	// name is canonical (http.CanonicalHeaderKey) for headers and verbatim for query
	// parameters.
	name  string
	value string
	// re, when set, replaces the exact comparison with value.
	re *regexp.Regexp
	// isHost marks a header condition on "Host", which net/http keeps in r.Host.
	isHost bool
}

// matchesValue compares one request value with the condition.
func (c *valueCond) matchesValue(v string) bool {
	if c.re != nil {
		return c.re.MatchString(v)
	}
	return v == c.value
}

// matchesHeader compares the first value of the header, as documented on the package.
func (c *valueCond) matchesHeader(r *http.Request) bool {
	if c.isHost {
		return r.Host != "" && c.matchesValue(r.Host)
	}
	values := r.Header[c.name]
	return len(values) > 0 && c.matchesValue(values[0])
}

// matches reports whether every condition of the candidate except its indexed path
// (which the tier's index already checked) holds for the request.
func (c *candidate) matches(path string, r *http.Request) bool {
	if c.method != "" && r.Method != c.method {
		return false
	}
	for i := range c.headers {
		if !c.headers[i].matchesHeader(r) {
			return false
		}
	}
	if len(c.query) > 0 {
		rawQuery := ""
		if r.URL != nil {
			rawQuery = r.URL.RawQuery
		}
		for i := range c.query {
			if !matchesQuery(&c.query[i], rawQuery) {
				return false
			}
		}
	}
	// The regular expression is the costliest check, so it runs last.
	return c.pathRegex == nil || c.pathRegex.MatchString(path)
}

// firstMatching returns the first candidate of an ordered list that matches.
func firstMatching(list []*candidate, path string, r *http.Request) *candidate {
	for _, c := range list {
		if c.matches(path, r) {
			return c
		}
	}
	return nil
}

// compareCandidates orders candidates of the same path criterion (and, across
// criteria, for Entries): path kind, longer path value, method match, more header
// matches, more query matches, older route, route name, route position, rule index,
// match index.
func compareCandidates(a, b *candidate) int {
	if c := cmp.Compare(a.kind, b.kind); c != 0 {
		return c
	}
	if c := cmp.Compare(b.pathLen, a.pathLen); c != 0 {
		return c
	}
	if c := compareHasMethod(a, b); c != 0 {
		return c
	}
	if c := cmp.Compare(len(b.headers), len(a.headers)); c != 0 {
		return c
	}
	if c := cmp.Compare(len(b.query), len(a.query)); c != 0 {
		return c
	}
	if c := a.created.Compare(b.created); c != 0 {
		return c
	}
	if c := strings.Compare(a.routeName, b.routeName); c != 0 {
		return c
	}
	return cmp.Or(
		cmp.Compare(a.routeIndex, b.routeIndex),
		cmp.Compare(a.RuleIndex, b.RuleIndex),
		cmp.Compare(a.matchIndex, b.matchIndex),
	)
}

// compareHasMethod puts a candidate with a method condition before one without.
func compareHasMethod(a, b *candidate) int {
	switch {
	case a.method != "" && b.method == "":
		return -1
	case a.method == "" && b.method != "":
		return 1
	}
	return 0
}

// newCandidate compiles match m (nil for a rule without matches) of a rule.
func newCandidate(entry Entry, routeIndex, matchIndex int) (*candidate, error) {
	route, m := entry.Route, entry.Match
	c := &candidate{
		Entry:      entry,
		kind:       pathPrefix,
		pathLen:    1,
		created:    route.CreationTimestamp,
		routeName:  route.Name,
		routeIndex: routeIndex,
		matchIndex: matchIndex,
	}
	if m == nil {
		return c, nil
	}
	if err := c.compilePath(m.Path); err != nil {
		return nil, err
	}
	c.method = m.Method
	var err error
	if c.headers, err = compileConds(m.Headers, http.CanonicalHeaderKey); err != nil {
		return nil, fmt.Errorf("header match: %w", err)
	}
	for i := range c.headers {
		c.headers[i].isHost = c.headers[i].name == "Host"
	}
	if c.query, err = compileConds(m.QueryParams, func(s string) string { return s }); err != nil {
		return nil, fmt.Errorf("query parameter match: %w", err)
	}
	return c, nil
}

// compilePath sets the path criterion; a nil path is "PathPrefix /".
func (c *candidate) compilePath(p *config.PathMatch) error {
	if p == nil {
		return nil
	}
	switch p.Type {
	case config.PathExact:
		c.kind, c.pathKey, c.pathLen = pathExact, p.Value, len(p.Value)
	case config.PathPrefix, "":
		c.kind, c.pathLen = pathPrefix, len(p.Value)
		c.pathKey = strings.TrimSuffix(p.Value, "/")
		c.MatchedPrefix = c.pathKey
	case config.PathRegularExpression:
		re, err := compileFull(p.Value)
		if err != nil {
			return fmt.Errorf("path: %w", err)
		}
		c.kind, c.pathLen, c.pathRegex = pathRegex, 0, re
	default:
		return fmt.Errorf("path match type %q is not supported", p.Type)
	}
	return nil
}

// compileConds compiles header or query conditions, keeping only the first
// condition for each (canonical) name as the Gateway API requires.
func compileConds(in []config.ValueMatch, canonical func(string) string) ([]valueCond, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]valueCond, 0, len(in))
	for _, vm := range in {
		name := canonical(vm.Name)
		if hasCond(out, name) {
			continue
		}
		cond := valueCond{name: name, value: vm.Value}
		switch vm.Type {
		case config.MatchExact, "":
		case config.MatchRegularExpression:
			re, err := compileFull(vm.Value)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", vm.Name, err)
			}
			cond.re = re
		default:
			return nil, fmt.Errorf("%s: match type %q is not supported", vm.Name, vm.Type)
		}
		out = append(out, cond)
	}
	return out, nil
}

func hasCond(conds []valueCond, name string) bool {
	for i := range conds {
		if conds[i].name == name {
			return true
		}
	}
	return false
}

// compileFull compiles an RE2 expression that must match the whole input.
func compileFull(expr string) (*regexp.Regexp, error) {
	return regexp.Compile("^(?:" + expr + ")$")
}
