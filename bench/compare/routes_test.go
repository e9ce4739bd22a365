package main

import (
	"regexp"
	"strings"
	"testing"
)

// matches reports whether the route takes host and path with the semantics every
// peer's configuration is meant to have: exact host, exact path, segment-wise
// prefix, whole-path regular expression.
func (r route) matches(host, path string) bool {
	if r.Host != "" && r.Host != host {
		return false
	}
	switch r.Kind {
	case exactRoute:
		return path == r.Path
	case regexRoute:
		return regexp.MustCompile("^" + r.Path + "$").MatchString(path)
	default:
		return r.Path == "" || strings.HasPrefix(path, r.Path+"/")
	}
}

func TestManyRoutesMix(t *testing.T) {
	for _, tc := range []struct{ n, hosts int }{{10000, 100}, {37, 4}, {10, 1}} {
		table := manyRoutes(tc.n, tc.hosts)
		if len(table.Routes) != tc.n {
			t.Fatalf("n=%d: %d routes", tc.n, len(table.Routes))
		}
		if got := len(table.hosts()); got != tc.hosts {
			t.Errorf("n=%d: %d hosts, want %d", tc.n, got, tc.hosts)
		}
		counts := map[routeKind]int{}
		seen := map[string]bool{}
		for _, r := range table.Routes {
			counts[r.Kind]++
			key := r.Host + r.Path
			if seen[key] {
				t.Fatalf("n=%d: route %s defined twice", tc.n, key)
			}
			seen[key] = true
		}
		// Kinds repeat every ten routes: five prefixes, four exact paths, one regex.
		tens := tc.n / 10
		if counts[prefixRoute] < 5*tens || counts[exactRoute] < 4*tens || counts[regexRoute] < tens {
			t.Errorf("n=%d: kinds %v, want at least %d/%d/%d", tc.n, counts, 5*tens, 4*tens, tens)
		}
		if err := table.validRegex(); err != nil {
			t.Error(err)
		}
	}
}

func TestManyRoutesRequestHitsOnlyTheLastRoute(t *testing.T) {
	table := manyRoutes(10000, 100)
	last := table.Routes[len(table.Routes)-1]
	if last.Kind != prefixRoute {
		t.Errorf("the last route is a %s route, want a prefix", last.Kind)
	}
	for i, r := range table.Routes {
		hit := r.matches(table.Host, table.Path)
		if hit != (i == len(table.Routes)-1) {
			t.Fatalf("route %d (%s %s%s) matches the request: %v", i, r.Kind, r.Host, r.Path, hit)
		}
		if r.matches(table.Host, table.MissPath) {
			t.Fatalf("route %d matches the miss path %s", i, table.MissPath)
		}
	}
	for _, r := range table.Routes[:50] {
		if !r.matches(r.Host, requestPath(r)) {
			t.Errorf("requestPath(%s %s) = %s does not match it", r.Kind, r.Path, requestPath(r))
		}
	}
}

func TestCatchAllTakesEveryPath(t *testing.T) {
	table := catchAll()
	if len(table.Routes) != 1 || !table.Routes[0].matches("any.example", "/x/y") || table.Host != "" {
		t.Fatalf("catch-all table %+v", table)
	}
}

func TestValidRegexRefusesABrokenExpression(t *testing.T) {
	table := routeTable{Routes: []route{{Kind: regexRoute, Path: "/a/(["}}}
	if table.validRegex() == nil {
		t.Fatal("a broken expression was accepted")
	}
}
