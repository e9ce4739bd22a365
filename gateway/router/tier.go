package router

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// vhostTable is the compiled form of one virtual host: its routes split into
// hostname tiers, so that a lookup only ever sees routes that accept the host.
type vhostTable struct {
	spec *config.VirtualHost
	// exactHosts holds the routes naming a host exactly, keyed by that host.
	exactHosts map[string]*tier
	// wildcardHosts holds the routes with a wildcard hostname, keyed by the suffix
	// after "*.".
	wildcardHosts map[string]*tier
	// anyHost holds the routes without hostnames; nil when there are none.
	anyHost *tier
	// entries lists every entry once, in precedence order, for Entries.
	entries []*Entry
	// candidates are the entries' candidates in the same order, for MatchOrder and
	// Explain, which report what Lookup compares.
	candidates []*candidate
}

// tier holds the candidates of one hostname tier. A tier of up to smallTier
// candidates keeps them in one list in precedence order (see compareCandidates),
// which a lookup scans; a larger one indexes them by path criterion, every list in
// precedence order. Most tiers hold the rules of a single route, for which the
// indexes would cost more memory than all the rest of the tier, and more time to
// hash the path's prefixes than the scan takes.
type tier struct {
	// small holds the candidates of a small tier; nil in an indexed one.
	small []*candidate
	// exact maps an Exact path to its candidates; nil when there are none.
	exact map[string][]*candidate
	// prefix maps a PathPrefix without its trailing slash to its candidates; nil
	// when there are none. prefixLengths are the lengths of its keys, longest
	// first, each once: a lookup tries only the cuts of the path at these lengths.
	prefix        map[string][]*candidate
	prefixLengths []int
	// regex holds the RegularExpression candidates, tried after the indexed ones.
	regex []*candidate
	// pending collects the candidates until finish files them.
	pending []*candidate
}

// smallTier is the most candidates a tier scans rather than indexes.
const smallTier = 4

// lookupIn returns the winning entry of v for a normalised host and a path. Tiers are
// tried from the most specific hostname to the least, and the first tier with a
// matching candidate decides, because hostname specificity is the first precedence
// criterion.
func lookupIn[K hostKey](v *vhostTable, host K, path string, r *http.Request) *Entry {
	if t, ok := v.exactHosts[string(host)]; ok {
		if c := t.lookup(path, r); c != nil {
			return &c.Entry
		}
	}
	if len(v.wildcardHosts) > 0 {
		for i := 0; i < len(host); i++ {
			if host[i] != '.' {
				continue
			}
			if t, ok := v.wildcardHosts[string(host[i+1:])]; ok {
				if c := t.lookup(path, r); c != nil {
					return &c.Entry
				}
			}
		}
	}
	if v.anyHost != nil {
		if c := v.anyHost.lookup(path, r); c != nil {
			return &c.Entry
		}
	}
	return nil
}

// lookup tries the tier's candidates in precedence order: the Exact path, then each
// prefix of the path that ends at a segment boundary from the longest to the
// shortest, then the regular expressions.
//
// In a small tier the scan of the whole list finds the same candidate: it is in
// precedence order, and of two PathPrefix values that both hold for a path the
// longer one is longer by a whole segment, so it comes first whichever of them has
// the trailing slash.
func (t *tier) lookup(path string, r *http.Request) *candidate {
	if t.small != nil {
		for _, c := range t.small {
			// A regular expression is checked last, by matches.
			if (c.kind == pathRegex || c.pathHolds(path)) && c.matches(path, r) {
				return c
			}
		}
		return nil
	}
	if list, ok := t.exact[path]; ok {
		if c := firstMatching(list, path, r); c != nil {
			return c
		}
	}
	// The prefix key k matches when the path is k or continues with "/" after k, so
	// the keys to try are the path cut at the lengths of the tier's keys, longest
	// first, where the cut falls at the end of a segment.
	for _, n := range t.prefixLengths {
		if n > len(path) || (n < len(path) && path[n] != '/') {
			continue
		}
		if list, ok := t.prefix[path[:n]]; ok {
			if c := firstMatching(list, path, r); c != nil {
				return c
			}
		}
	}
	return firstMatching(t.regex, path, r)
}

// add adds a candidate to the tier; finish files it.
func (t *tier) add(c *candidate) { t.pending = append(t.pending, c) }

// finish puts the tier's candidates in precedence order and files them: in the
// small list when there are at most small of them, or under their path criterion.
func (t *tier) finish(small int) {
	all := t.pending
	t.pending = nil
	slices.SortFunc(all, compareCandidates)
	if len(all) > 0 && len(all) <= small {
		t.small = slices.Clip(all)
		return
	}
	// Filed in precedence order, every list stays in it.
	for _, c := range all {
		switch c.kind {
		case pathExact:
			if t.exact == nil {
				t.exact = map[string][]*candidate{}
			}
			t.exact[c.pathKey] = append(t.exact[c.pathKey], c)
		case pathPrefix:
			if t.prefix == nil {
				t.prefix = map[string][]*candidate{}
			}
			t.prefix[c.pathKey] = append(t.prefix[c.pathKey], c)
			if !slices.Contains(t.prefixLengths, len(c.pathKey)) {
				t.prefixLengths = append(t.prefixLengths, len(c.pathKey))
			}
		default:
			t.regex = append(t.regex, c)
		}
	}
	slices.SortFunc(t.prefixLengths, func(a, b int) int { return b - a })
}

func newTier() *tier { return &tier{} }

// compileVirtualHost compiles every route of vh and files its candidates into the
// tiers of the route's hostnames.
func compileVirtualHost(vh *config.VirtualHost, f HandlerFactory, small int) (*vhostTable, error) {
	v := &vhostTable{
		spec:          vh,
		exactHosts:    map[string]*tier{},
		wildcardHosts: map[string]*tier{},
	}
	var all []*candidate
	for ri := range vh.Routes {
		route := &vh.Routes[ri]
		cands, err := compileRoute(vh, route, ri, f)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", route.Name, err)
		}
		for _, t := range v.tiersFor(route) {
			for _, c := range cands {
				t.add(c)
			}
		}
		all = append(all, cands...)
	}
	for _, t := range v.exactHosts {
		t.finish(small)
	}
	for _, t := range v.wildcardHosts {
		t.finish(small)
	}
	if v.anyHost != nil {
		v.anyHost.finish(small)
	}
	slices.SortFunc(all, compareCandidates)
	v.candidates = all
	v.entries = make([]*Entry, len(all))
	for i, c := range all {
		v.entries[i] = &c.Entry
	}
	return v, nil
}

// matchesHeaders reports whether a candidate matches on a header other than Host.
func (v *vhostTable) matchesHeaders() bool {
	for _, c := range v.candidates {
		for i := range c.headers {
			if !c.headers[i].isHost {
				return true
			}
		}
	}
	return false
}

// tiersFor returns the tiers a route belongs to, creating them as needed, each once
// even when the route lists equivalent hostnames twice.
func (v *vhostTable) tiersFor(route *config.Route) []*tier {
	var tiers []*tier
	addOnce := func(t *tier) {
		if !slices.Contains(tiers, t) {
			tiers = append(tiers, t)
		}
	}
	if len(route.Hostnames) == 0 {
		addOnce(v.anyTier())
	}
	for _, h := range route.Hostnames {
		kind, key := parseHostname(h)
		switch kind {
		case hostExact:
			addOnce(tierIn(v.exactHosts, key))
		case hostWildcard:
			addOnce(tierIn(v.wildcardHosts, key))
		default:
			addOnce(v.anyTier())
		}
	}
	return tiers
}

func (v *vhostTable) anyTier() *tier {
	if v.anyHost == nil {
		v.anyHost = newTier()
	}
	return v.anyHost
}

func tierIn(m map[string]*tier, key string) *tier {
	t, ok := m[key]
	if !ok {
		t = newTier()
		m[key] = t
	}
	return t
}

// compileRoute builds the handlers and candidates of every rule of a route.
func compileRoute(vh *config.VirtualHost, route *config.Route, routeIndex int, f HandlerFactory) ([]*candidate, error) {
	var out []*candidate
	for ri := range route.Rules {
		rule := &route.Rules[ri]
		h, err := f(vh, route, ri)
		if err != nil {
			return nil, fmt.Errorf("rule %d: %w", ri, err)
		}
		if h == nil {
			return nil, fmt.Errorf("rule %d: handler factory returned no handler", ri)
		}
		entry := Entry{VirtualHost: vh, Route: route, RuleIndex: ri, Handler: h}
		if len(rule.Matches) == 0 {
			c, _ := newCandidate(entry, routeIndex, 0)
			out = append(out, c)
			continue
		}
		for mi := range rule.Matches {
			entry.Match = &rule.Matches[mi]
			c, err := newCandidate(entry, routeIndex, mi)
			if err != nil {
				return nil, fmt.Errorf("rule %d match %d: %w", ri, mi, err)
			}
			out = append(out, c)
		}
	}
	return out, nil
}
