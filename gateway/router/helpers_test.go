package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// ruleHandler identifies the rule it was built for, so tests can see which handler an
// entry carries.
type ruleHandler struct {
	route string
	rule  int
}

func (h ruleHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	fmt.Fprintf(w, "%s#%d", h.route, h.rule)
}

func testFactory(_ *config.VirtualHost, route *config.Route, ruleIndex int) (http.Handler, error) {
	return ruleHandler{route: route.Name, rule: ruleIndex}, nil
}

func exactPath(v string) *config.PathMatch {
	return &config.PathMatch{Type: config.PathExact, Value: v}
}

func prefixPath(v string) *config.PathMatch {
	return &config.PathMatch{Type: config.PathPrefix, Value: v}
}

func regexPath(v string) *config.PathMatch {
	return &config.PathMatch{Type: config.PathRegularExpression, Value: v}
}

func hdr(name, value string) config.ValueMatch {
	return config.ValueMatch{Type: config.MatchExact, Name: name, Value: value}
}

func hdrRE(name, value string) config.ValueMatch {
	return config.ValueMatch{Type: config.MatchRegularExpression, Name: name, Value: value}
}

// route builds a route whose rules each have the given matches.
func route(name string, hostnames []string, rules ...[]config.Match) config.Route {
	r := config.Route{Name: name, Hostnames: hostnames}
	for _, ms := range rules {
		r.Rules = append(r.Rules, config.Rule{Matches: ms})
	}
	return r
}

// matches is shorthand for the match list of one rule.
func matches(ms ...config.Match) []config.Match { return ms }

func listener(vhs ...config.VirtualHost) *config.Listener {
	return &config.Listener{Name: ":8080", Port: 8080, Protocol: config.ProtocolHTTP, VirtualHosts: vhs}
}

func vhost(name, hostname string, routes ...config.Route) config.VirtualHost {
	return config.VirtualHost{Name: name, Hostname: hostname, Routes: routes}
}

func mustCompile(t testing.TB, l *config.Listener) *Table {
	t.Helper()
	table, err := Compile(l, testFactory)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return table
}

// describe names an entry as "route#rule.match" (match -1 for a rule without
// matches), or "404" for nil.
func describe(e *Entry) string {
	if e == nil {
		return "404"
	}
	mi := -1
	rule := &e.Route.Rules[e.RuleIndex]
	for i := range rule.Matches {
		if &rule.Matches[i] == e.Match {
			mi = i
		}
	}
	return fmt.Sprintf("%s#%d.%d", e.Route.Name, e.RuleIndex, mi)
}

// req is a request description for table-driven tests.
type req struct {
	host    string
	target  string
	method  string
	headers [][2]string
}

func (q req) build() *http.Request {
	method := q.method
	if method == "" {
		method = http.MethodGet
	}
	r := httptest.NewRequest(method, q.target, nil)
	r.Host = q.host
	for _, h := range q.headers {
		r.Header.Add(h[0], h[1])
	}
	return r
}

type lookupCase struct {
	name string
	req  req
	want string
}

func runLookupCases(t *testing.T, table *Table, cases []lookupCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := table.Lookup(tc.req.build())
			if d := describe(got); d != tc.want {
				t.Errorf("Lookup(%+v) = %s, want %s", tc.req, d, tc.want)
			}
			if got != nil {
				h := got.Handler.(ruleHandler)
				if h.route != got.Route.Name || h.rule != got.RuleIndex {
					t.Errorf("entry %s carries the handler of %s#%d", describe(got), h.route, h.rule)
				}
			}
		})
	}
}

var (
	older = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	newer = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
)
