package translate

import (
	"slices"
	"sort"
	"strings"
)

// hostnameMatches reports whether the concrete or wildcard hostname host falls inside
// the pattern. A wildcard pattern "*.example.com" covers every name that ends in
// ".example.com" with at least one more label, at any depth, but not "example.com"
// itself. Comparison ignores case, as DNS does.
func hostnameMatches(pattern, host string) bool {
	pattern, host = strings.ToLower(pattern), strings.ToLower(host)
	if pattern == host {
		return true
	}
	suffix, ok := strings.CutPrefix(pattern, "*")
	if !ok {
		return false
	}
	// host may itself be a wildcard: "*.a.example.com" lies inside "*.example.com".
	return strings.HasSuffix(host, suffix) && len(host) > len(suffix)
}

// intersectHostname returns the part of a route hostname that a listener hostname
// accepts: the more specific of the two when one contains the other, and false when
// they are disjoint. An empty listener hostname accepts everything.
func intersectHostname(listener, route string) (string, bool) {
	switch {
	case listener == "":
		return route, true
	case hostnameMatches(listener, route):
		return route, true
	case hostnameMatches(route, listener):
		return listener, true
	default:
		return "", false
	}
}

// effectiveHostnames intersects a route's hostnames with a listener's hostname. It
// returns the (sorted, unique) hostnames to serve and whether the route applies to
// the listener at all. A route without hostnames applies with an empty list, which
// the data plane reads as "whatever the virtual host accepts".
func effectiveHostnames(listener string, route []string) ([]string, bool) {
	if len(route) == 0 {
		return nil, true
	}
	var out []string
	// Routes have a few hostnames (the API allows 16), for which a scan beats a set;
	// longer lists from files get a set, so the work stays linear.
	var seen map[string]bool
	if len(route) > 32 {
		seen = make(map[string]bool, len(route))
	}
	for _, h := range route {
		got, ok := intersectHostname(listener, h)
		if !ok || seen[got] || (seen == nil && slices.Contains(out, got)) {
			continue
		}
		if seen != nil {
			seen[got] = true
		}
		out = append(out, got)
	}
	if len(out) == 0 {
		return nil, false
	}
	sort.Strings(out)
	return out, true
}
