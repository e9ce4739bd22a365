// Package router compiles the routes of one listener into an immutable lookup table.
//
// A Table is built once per configuration version by Compile and is safe for
// concurrent use; the data plane swaps whole tables atomically instead of editing
// them. Lookup follows the Gateway API precedence rules for HTTPRoutes:
//
//  1. The request's host selects exactly one virtual host (listener isolation): an
//     exact hostname, else the longest matching wildcard, else the virtual host
//     without a hostname.
//  2. Within it, routes are grouped into hostname tiers that are tried in order:
//     routes naming the host exactly, then routes with a matching wildcard hostname
//     from the longest wildcard to the shortest, then routes without hostnames.
//  3. Within a tier, matches are tried in precedence order: Exact paths, then
//     PathPrefix matches from the longest prefix to the shortest, then (our
//     implementation-specific choice) RegularExpression paths. Among equal path
//     criteria a method match wins over none, then more header matches, then more
//     query parameter matches, then the older route, then the route name in
//     alphabetical order, then the route's position, the rule index and the match
//     index. The first candidate whose every condition holds wins, so a more
//     specific match that fails a header condition falls through to the next one.
//
// Matching choices that the Gateway API leaves to implementations:
//   - The path matched is r.URL.Path, the percent-decoded path net/http produced.
//   - Regular expressions (path, header and query values) must match the whole
//     string: they are compiled as ^(?:expr)$.
//   - When a request repeats a header or query parameter, only its first value is
//     compared. Of several conditions naming the same header (case-insensitively)
//     or query parameter (case-sensitively), only the first counts, as the Gateway
//     API requires; precedence counts the conditions that remain.
//   - A header condition named "Host" compares the request's Host, since net/http
//     moves that header out of r.Header.
//   - Creation timestamps compare as instants and the zero time is the earliest, so
//     routes that carry none (configuration files) tie and their names decide.
package router

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// HandlerFactory builds the handler for one rule; Compile calls it once per rule.
type HandlerFactory func(vh *config.VirtualHost, route *config.Route, ruleIndex int) (http.Handler, error)

// Entry is one compiled match: the unit that Lookup returns.
type Entry struct {
	// VirtualHost is the virtual host the route is attached to.
	VirtualHost *config.VirtualHost
	// Route is the route the match belongs to.
	Route *config.Route
	// RuleIndex is the index of the rule within Route.Rules.
	RuleIndex int
	// Match is the match within the rule, or nil when the rule has no matches.
	Match *config.Match
	// MatchedPrefix is the PathPrefix value of the match with one trailing slash
	// trimmed; it is "" for the prefix "/" and for matches that are not PathPrefix.
	MatchedPrefix string
	// Handler serves requests for the rule; entries of one rule share it.
	Handler http.Handler
}

// VirtualHostEntries lists the compiled entries of one virtual host.
type VirtualHostEntries struct {
	// VirtualHost is the virtual host the entries belong to.
	VirtualHost *config.VirtualHost
	// Entries are in precedence order, ignoring hostnames: Exact paths, PathPrefix
	// matches from the longest prefix, RegularExpression paths, each group ordered by
	// the remaining criteria. At request time the hostname tiers apply first.
	Entries []*Entry
}

// Table is the compiled, immutable route table of one listener.
type Table struct {
	// vhosts holds every virtual host in listener order, for Entries.
	vhosts []*vhostTable
	// exactVH, wildcardVH and anyVH select the virtual host for a request's host;
	// wildcardVH is keyed by the suffix after "*.".
	exactVH    map[string]*vhostTable
	wildcardVH map[string]*vhostTable
	anyVH      *vhostTable
	// matchesHeaders is set when a route matches on a header other than Host.
	matchesHeaders bool
}

// MatchesHeaders reports whether a route of the table matches on a request header
// other than Host. Only then does Lookup read the request's Header, which may
// otherwise be left nil, as it is for a request forwarded from its wire form.
func (t *Table) MatchesHeaders() bool { return t.matchesHeaders }

// Compile builds the route table of l, calling f once for every rule of every route.
// The table keeps pointers into l, which must not change afterwards.
func Compile(l *config.Listener, f HandlerFactory) (*Table, error) {
	return compileTable(l, f, smallTier)
}

// compileTable is Compile with the largest tier that is scanned rather than indexed
// (see tier); tests compile with 0 to compare the two.
func compileTable(l *config.Listener, f HandlerFactory, small int) (*Table, error) {
	if l == nil {
		return nil, errors.New("router: no listener to compile")
	}
	if f == nil {
		return nil, errors.New("router: no handler factory")
	}
	t := &Table{
		exactVH:    map[string]*vhostTable{},
		wildcardVH: map[string]*vhostTable{},
	}
	for i := range l.VirtualHosts {
		vh := &l.VirtualHosts[i]
		vt, err := compileVirtualHost(vh, f, small)
		if err != nil {
			return nil, fmt.Errorf("virtual host %s: %w", vh.Name, err)
		}
		t.vhosts = append(t.vhosts, vt)
		t.index(vt)
		t.matchesHeaders = t.matchesHeaders || vt.matchesHeaders()
	}
	return t, nil
}

// index makes vt selectable by its hostname. Validation rejects two virtual hosts
// with the same hostname on one listener; should it happen anyway, the first wins.
func (t *Table) index(vt *vhostTable) {
	kind, key := parseHostname(vt.spec.Hostname)
	switch kind {
	case hostExact:
		if _, dup := t.exactVH[key]; !dup {
			t.exactVH[key] = vt
		}
	case hostWildcard:
		if _, dup := t.wildcardVH[key]; !dup {
			t.wildcardVH[key] = vt
		}
	default:
		if t.anyVH == nil {
			t.anyVH = vt
		}
	}
}

// Lookup returns the entry that serves r, or nil when no route matches (404). It
// does not allocate, unless the host has non-ASCII characters (which strings.ToLower
// folds) or is longer than any DNS name.
func (t *Table) Lookup(r *http.Request) *Entry {
	path := ""
	if r.URL != nil {
		path = r.URL.Path
	}
	host := trimHost(r.Host)
	if !needsLowering(host) {
		return lookupHost(t, host, path, r)
	}
	if len(host) > hostBufferSize || !isASCII(host) {
		return lookupHost(t, strings.ToLower(host), path, r)
	}
	// A host with upper-case letters is lowered into a buffer on the stack rather
	// than into a new string.
	var buf [hostBufferSize]byte
	return lookupHost(t, lowerASCII(buf[:0], host), path, r)
}

// lookupHost is Lookup for a normalised host.
func lookupHost[K hostKey](t *Table, host K, path string, r *http.Request) *Entry {
	vt := virtualHostOf(t, host)
	if vt == nil {
		return nil
	}
	return lookupIn(vt, host, path, r)
}

// VirtualHostFor reports which virtual host a host name selects (nil if none). The
// name may carry a port and is compared case-insensitively, as in Lookup.
func (t *Table) VirtualHostFor(host string) *config.VirtualHost {
	if vt := virtualHostOf(t, normalizeHost(host)); vt != nil {
		return vt.spec
	}
	return nil
}

// Entries returns all compiled entries, grouped by virtual host in listener order.
// The result is a copy that the caller may keep or modify.
func (t *Table) Entries() []VirtualHostEntries {
	out := make([]VirtualHostEntries, 0, len(t.vhosts))
	for _, vt := range t.vhosts {
		out = append(out, VirtualHostEntries{
			VirtualHost: vt.spec,
			Entries:     append([]*Entry(nil), vt.entries...),
		})
	}
	return out
}

// virtualHostOf selects the virtual host for a normalised host: exact, then the
// longest wildcard, then the one without a hostname.
func virtualHostOf[K hostKey](t *Table, host K) *vhostTable {
	if vt, ok := t.exactVH[string(host)]; ok {
		return vt
	}
	if len(t.wildcardVH) > 0 {
		// Each dot starts a shorter suffix, so the first hit is the longest wildcard.
		for i := 0; i < len(host); i++ {
			if host[i] == '.' {
				if vt, ok := t.wildcardVH[string(host[i+1:])]; ok {
					return vt
				}
			}
		}
	}
	return t.anyVH
}
