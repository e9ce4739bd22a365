package admin

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// startDataPlaneAPI starts a gateway and an admin server over it.
func startDataPlaneAPI(t *testing.T, opts Options) (*testGateway, string) {
	t.Helper()
	g := startGateway(t)
	opts.DataPlane = NewEngineDataPlane(g.engine)
	if opts.State == nil {
		opts.State = &fakeState{}
	}
	_, base := startServer(t, opts)
	return g, base
}

func TestRoutesInMatchOrder(t *testing.T) {
	g, base := startDataPlaneAPI(t, Options{})
	var view RoutesView
	getJSON(t, base+"/api/v1/routes", "", &view)
	if view.Version != "v1" || len(view.Listeners) != 1 {
		t.Fatalf("routes %+v", view)
	}
	l := view.Listeners[0]
	if l.Name != "127.0.0.1:0" || l.Protocol != "HTTP" || "http://"+l.BoundAddr != g.url || len(l.VirtualHosts) != 1 {
		t.Fatalf("listener %+v", l)
	}
	var got []string
	for _, tier := range l.VirtualHosts[0].Tiers {
		for _, m := range tier.Matches {
			match := "-"
			if m.Match != nil {
				match = string(rune('0' + *m.Match))
			}
			got = append(got, tier.Kind+" "+tier.Hostname+" "+m.Route+"#"+string(rune('0'+m.Rule))+"."+match+" "+m.RuleName+" "+m.Backends[0].Backend)
		}
	}
	want := []string{
		"Exact api.example.com shop/api#0.0  shop/canary:80",
		"Exact api.example.com shop/api#1.0 main shop/api:80",
		"Any  shop/web#0.-  shop/web:80",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("routes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	first := l.VirtualHosts[0].Tiers[0].Matches[0]
	if first.Conditions == nil || first.Conditions.Path.Value != "/v1" || len(first.Conditions.Headers) != 1 {
		t.Errorf("conditions %+v", first.Conditions)
	}
	if web := l.VirtualHosts[0].Tiers[1].Matches[0]; len(web.Filters) != 1 || web.Filters[0] != "RateLimit" {
		t.Errorf("filters %v", web.Filters)
	}
}

// explain asks the match endpoint about a request.
func explain(t *testing.T, base string, params url.Values) MatchView {
	t.Helper()
	var view MatchView
	getJSON(t, base+"/api/v1/routes/match?"+params.Encode(), "", &view)
	return view
}

// The match endpoint's answer agrees with where the gateway really sends the request.
func TestMatchAgreesWithRouting(t *testing.T) {
	g, base := startDataPlaneAPI(t, Options{})
	backendOf := map[string]string{"shop/api:80": "api", "shop/canary:80": "canary", "shop/web:80": "web-"}
	cases := []struct {
		host, path string
		headers    []string
		route      string
		rule       int
	}{
		{"api.example.com", "/v1/users", nil, "shop/api", 1},
		{"API.example.com:8080", "/v1/users", []string{"X-Canary: yes"}, "shop/api", 0},
		{"api.example.com", "/v2", nil, "shop/web", 0},
		{"www.example.com", "/v1", []string{"X-Canary: yes"}, "shop/web", 0},
	}
	for _, tc := range cases {
		params := url.Values{"host": {tc.host}, "path": {tc.path}, "header": tc.headers}
		view := explain(t, base, params)
		if len(view.Listeners) != 1 {
			t.Fatalf("%v: %+v", params, view)
		}
		lm := view.Listeners[0]
		if lm.Result != MatchResultMatched || lm.Chosen == nil || lm.Chosen.Route != tc.route || lm.Chosen.Rule != tc.rule {
			t.Errorf("%v: %s chosen %+v, want %s rule %d", params, lm.Result, lm.Chosen, tc.route, tc.rule)
			continue
		}
		header := http.Header{}
		for _, h := range tc.headers {
			name, value, _ := strings.Cut(h, ":")
			header.Add(name, strings.TrimSpace(value))
		}
		want := backendOf[lm.Chosen.Backends[0].Backend]
		if got := g.send(t, tc.host, tc.path, header); !strings.HasPrefix(got, want) {
			t.Errorf("%v: explained %s (%s), the gateway answered from %s", params, lm.Chosen.Route, want, got)
		}
	}
}

func TestMatchExplainsLosers(t *testing.T) {
	_, base := startDataPlaneAPI(t, Options{})
	view := explain(t, base, url.Values{"host": {"api.example.com"}, "path": {"/v1/a%20b?x=1"}, "method": {"POST"},
		"query": {"y=2 3"}})
	if view.Request.Host != "api.example.com" || view.Request.Path != "/v1/a b" || view.Request.Query != "x=1&y=2+3" ||
		view.Request.Method != "POST" {
		t.Errorf("request %+v", view.Request)
	}
	lm := view.Listeners[0]
	if lm.VirtualHost != "shop/gw/http" || len(lm.Candidates) != 3 {
		t.Fatalf("answer %+v", lm)
	}
	canary, main, web := lm.Candidates[0], lm.Candidates[1], lm.Candidates[2]
	if canary.Outcome != "NotMatched" || canary.Tier != "Exact" || canary.TierHostname != "api.example.com" ||
		len(canary.Reasons) != 1 || canary.Reasons[0].Criterion != "header" || !strings.Contains(canary.Reasons[0].Detail, "X-Canary") {
		t.Errorf("canary %+v", canary)
	}
	if main.Outcome != "Chosen" || len(main.Reasons) != 0 || main.RuleName != "main" {
		t.Errorf("main %+v", main)
	}
	if web.Outcome != "Outranked" || web.Tier != "Any" || len(web.Reasons) != 1 || web.Reasons[0].Criterion != "precedence" {
		t.Errorf("web %+v", web)
	}

	// A host no virtual host accepts, on a listener with a hostname-less virtual
	// host, still selects it: shop/api's hostname excludes it.
	lm = explain(t, base, url.Values{"host": {"other.org"}, "path": {"/v1"}}).Listeners[0]
	if lm.Chosen == nil || lm.Chosen.Route != "shop/web" || len(lm.Candidates) != 1 || lm.OmittedForHostname != 2 {
		t.Fatalf("other.org: %+v", lm)
	}
	// With all=true the matches of other hostnames are listed too, last.
	lm = explain(t, base, url.Values{"host": {"other.org"}, "path": {"/v1"}, "all": {"true"}}).Listeners[0]
	if len(lm.Candidates) != 3 || lm.OmittedForHostname != 0 {
		t.Fatalf("other.org, all: %+v", lm)
	}
	for _, c := range lm.Candidates[1:] {
		if c.Route != "shop/api" || c.Outcome != "NotMatched" || c.Tier != "None" || c.Reasons[0].Criterion != "hostname" {
			t.Errorf("other.org: %+v", c)
		}
	}
}

func TestMatchNoRoute(t *testing.T) {
	g, base := startDataPlaneAPI(t, Options{})
	// With a hostname on the only virtual host, an unknown host selects none.
	snap := g.snapshot("v2", nil)
	snap.Listeners[0].VirtualHosts[0].Hostname = "*.example.com"
	if err := g.engine.Apply(snap); err != nil {
		t.Fatal(err)
	}
	lm := explain(t, base, url.Values{"host": {"other.org"}}).Listeners[0]
	if lm.Result != MatchResultNoVirtualHost || lm.Chosen != nil || len(lm.Candidates) != 0 {
		t.Errorf("other.org: %+v", lm)
	}
	if got := g.send(t, "other.org", "/", nil); got != "status 404" {
		t.Errorf("the gateway answered other.org with %s", got)
	}
}

func TestMatchFilters(t *testing.T) {
	_, base := startDataPlaneAPI(t, Options{})
	if got := explain(t, base, url.Values{"host": {"h"}, "listener": {"127.0.0.1:0"}}); len(got.Listeners) != 1 {
		t.Errorf("by listener: %+v", got)
	}
	if got := explain(t, base, url.Values{"host": {"h"}, "port": {"0"}}); len(got.Listeners) != 1 {
		t.Errorf("by port: %+v", got)
	}
	for _, params := range []string{"port=8080&host=h", "listener=:1&host=h"} {
		resp, body := call(t, http.MethodGet, base+"/api/v1/routes/match?"+params, "")
		assertProblem(t, resp, body, http.StatusNotFound)
	}
}

func TestMatchBadQueries(t *testing.T) {
	_, base := startDataPlaneAPI(t, Options{})
	bad := []string{
		"",                           // no host
		"host=h&path=relative",       // not an absolute path
		"host=h&path=/%zz",           // bad escape
		"host=h&header=NoColon",      // not Name:value
		"host=h&header=Bad%20Name:x", // invalid name
		"host=h&header=Host:other",   // host as a header
		"host=h&query==x",            // no name
		"host=h&port=http",           // not a number
		"host=h&method=GE%20T",       // invalid method
		"host=h&hots=typo",           // unknown parameter
		"host=h&header=X-A:a%00b",    // invalid value
	}
	for _, params := range bad {
		t.Run(params, func(t *testing.T) {
			resp, body := call(t, http.MethodGet, base+"/api/v1/routes/match?"+params, "")
			assertProblem(t, resp, body, http.StatusBadRequest)
		})
	}
}
