package main

import (
	"fmt"
	"strings"
)

// routeKind says how a route matches the request path.
type routeKind int

const (
	// prefixRoute matches its path and everything below it, segment-wise.
	prefixRoute routeKind = iota
	// exactRoute matches its path only.
	exactRoute
	// regexRoute matches a regular expression over the whole path.
	regexRoute
)

func (k routeKind) String() string {
	switch k {
	case prefixRoute:
		return "prefix"
	case exactRoute:
		return "exact"
	default:
		return "regex"
	}
}

// route is one entry of a scenario's routing table, which every peer is given in
// its own configuration language.
type route struct {
	// Host is the exact host name the route serves; empty serves every host.
	Host string
	// Kind says how Path matches.
	Kind routeKind
	// Path is the path prefix (without a trailing slash), the exact path, or, for a
	// regex route, the expression without anchors; every peer's configuration
	// anchors it at both ends, which is how Switchyard reads Gateway API regexes.
	Path string
}

// routeTable is the routing of one scenario and the request the load sends.
type routeTable struct {
	// Routes in definition order; the benchmark request hits the last one.
	Routes []route
	// Host is the Host header of the benchmark request ("" keeps the client's).
	Host string
	// Path is the benchmark request's path.
	Path string
	// MissPath is a path on Host that no route matches, used to check that a peer
	// really routes rather than forwarding everything.
	MissPath string
}

// catchAll is the one-route table: every request to the backend.
func catchAll() routeTable {
	return routeTable{Routes: []route{{Kind: prefixRoute, Path: ""}}, Path: "/"}
}

// oneRoute is the one-route table for t's request: one route that takes every
// request, with nothing to miss.
func (t routeTable) oneRoute() routeTable {
	one := catchAll()
	one.Host, one.Path = t.Host, t.Path
	return one
}

// benchDomain is the suffix of the host names of the many-route table, under the
// .test top-level domain that is reserved for testing.
const benchDomain = "bench.test"

// manyRoutes builds n routes spread over hosts host names in blocks (routes 0 to
// n/hosts-1 on the first host, and so on), half of them path prefixes, two fifths
// exact paths and one tenth regular expressions, in an order that makes the last
// route a prefix route: the most common kind, and the one the request hits.
func manyRoutes(n, hosts int) routeTable {
	if hosts < 1 {
		hosts = 1
	}
	perHost := (n + hosts - 1) / hosts
	t := routeTable{Routes: make([]route, 0, n)}
	for i := range n {
		r := route{Host: fmt.Sprintf("h%d.%s", i/perHost, benchDomain)}
		// Counting kinds from the end keeps the last route a prefix whatever n is.
		switch (n - 1 - i) % 10 {
		case 0, 1, 2, 3, 4:
			r.Kind, r.Path = prefixRoute, fmt.Sprintf("/svc%d", i)
		case 5, 6, 7, 8:
			r.Kind, r.Path = exactRoute, fmt.Sprintf("/exact%d/item", i)
		default:
			r.Kind, r.Path = regexRoute, fmt.Sprintf("/re%d/[0-9]+", i)
		}
		t.Routes = append(t.Routes, r)
	}
	if n > 0 {
		last := t.Routes[n-1]
		t.Host, t.Path = last.Host, requestPath(last)
		t.MissPath = "/nowhere"
	}
	return t
}

// requestPath is a path the route matches.
func requestPath(r route) string {
	switch r.Kind {
	case prefixRoute:
		return r.Path + "/item"
	case exactRoute:
		return r.Path
	default:
		return strings.Replace(r.Path, "[0-9]+", "42", 1)
	}
}

// hosts returns the distinct host names of the routes in order of first use; ""
// stands for routes without a host name.
func (t routeTable) hosts() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range t.Routes {
		if !seen[r.Host] {
			seen[r.Host] = true
			out = append(out, r.Host)
		}
	}
	return out
}
