package router

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// explainTable is a virtual host whose routes compete for /api/v1/users with every
// precedence criterion in play.
func explainTable(t *testing.T) *Table {
	exactHost := route("shop/exact-host", []string{"api.example.com"},
		matches(config.Match{Path: prefixPath("/api"), Headers: []config.ValueMatch{hdr("X-Canary", "yes")}}))
	exactHost.CreationTimestamp = older
	wildcard := route("shop/wildcard", []string{"*.example.com"},
		matches(config.Match{Path: exactPath("/api/v1/users"), Method: "POST"}),
		matches(config.Match{Path: prefixPath("/api/v1")}))
	catchAll := route("shop/catch-all", nil,
		matches(config.Match{Path: prefixPath("/api/v1/users")}, config.Match{Path: regexPath("/api/.*")}),
		matches(config.Match{QueryParams: []config.ValueMatch{hdrRE("page", "[0-9]+")}}))
	other := route("shop/other", []string{"other.org"}, nil)
	return mustCompile(t, listener(vhost("shop/gw/http", "", exactHost, wildcard, catchAll, other)))
}

// explained finds the explanation of route#rule.match.
func explained(t *testing.T, ex *Explanation, name string) CandidateExplanation {
	t.Helper()
	for _, c := range ex.Candidates {
		if describe(c.Entry) == name {
			return c
		}
	}
	t.Fatalf("no candidate %s in %+v", name, ex.Candidates)
	return CandidateExplanation{}
}

func TestExplainReasons(t *testing.T) {
	table := explainTable(t)
	r := req{host: "API.example.com:8443", target: "/api/v1/users?page=x"}.build()
	ex := table.Explain(r)
	if got := describe(ex.Chosen); got != "shop/wildcard#1.0" {
		t.Fatalf("chosen %s, want shop/wildcard#1.0", got)
	}
	if ex.Host != "api.example.com" || ex.Path != "/api/v1/users" || ex.VirtualHost.Name != "shop/gw/http" {
		t.Errorf("host %q path %q virtual host %v", ex.Host, ex.Path, ex.VirtualHost)
	}
	cases := []struct {
		name      string
		outcome   Outcome
		tier      TierKind
		criterion Criterion
		detail    string
	}{
		{"shop/exact-host#0.0", OutcomeNotMatched, TierExact, CriterionHeader, "X-Canary"},
		{"shop/wildcard#0.0", OutcomeNotMatched, TierWildcard, CriterionMethod, "POST"},
		{"shop/wildcard#1.0", OutcomeChosen, TierWildcard, "", ""},
		{"shop/catch-all#0.0", OutcomeOutranked, TierAny, CriterionPrecedence, "wildcard hostname *.example.com"},
		{"shop/catch-all#0.1", OutcomeOutranked, TierAny, CriterionPrecedence, "wildcard hostname"},
		{"shop/catch-all#1.0", OutcomeNotMatched, TierAny, CriterionQuery, `"x"`},
		{"shop/other#0.-1", OutcomeNotMatched, TierNone, CriterionHostname, "other.org"},
	}
	for _, tc := range cases {
		c := explained(t, ex, tc.name)
		if c.Outcome != tc.outcome || c.Tier != tc.tier {
			t.Errorf("%s: outcome %s tier %s, want %s %s (%+v)", tc.name, c.Outcome, c.Tier, tc.outcome, tc.tier, c.Reasons)
			continue
		}
		if tc.criterion == "" {
			if len(c.Reasons) != 0 {
				t.Errorf("%s: reasons %+v for the chosen match", tc.name, c.Reasons)
			}
			continue
		}
		if len(c.Reasons) != 1 || c.Reasons[0].Criterion != tc.criterion || !strings.Contains(c.Reasons[0].Detail, tc.detail) {
			t.Errorf("%s: reasons %+v, want one %s reason mentioning %q", tc.name, c.Reasons, tc.criterion, tc.detail)
		}
	}
	// Candidates come in the order Lookup tries them: tier first.
	var order []string
	for _, c := range ex.Candidates {
		order = append(order, string(c.Tier))
	}
	if got := strings.Join(order, ","); got != "Exact,Wildcard,Wildcard,Any,Any,Any,None" {
		t.Errorf("tier order %s", got)
	}
}

func TestExplainEveryFailedCondition(t *testing.T) {
	r1 := route("ns/r", []string{"a.example.com"}, matches(config.Match{
		Path: exactPath("/x"), Method: "PUT",
		Headers:     []config.ValueMatch{hdr("X-A", "1"), hdrRE("Host", "b\\..*")},
		QueryParams: []config.ValueMatch{hdr("q", "1")},
	}))
	table := mustCompile(t, listener(vhost("vh", "", r1)))
	ex := table.Explain(req{host: "b.example.com", target: "/y?q=2", headers: [][2]string{{"x-a", "2"}}}.build())
	if ex.Chosen != nil || len(ex.Candidates) != 1 {
		t.Fatalf("chosen %s, %d candidates", describe(ex.Chosen), len(ex.Candidates))
	}
	var got []string
	for _, reason := range ex.Candidates[0].Reasons {
		got = append(got, string(reason.Criterion))
	}
	// Every failed condition is reported; the Host header condition holds.
	if strings.Join(got, ",") != "hostname,path,method,header,query" {
		t.Errorf("criteria %v: %+v", got, ex.Candidates[0].Reasons)
	}
}

func TestExplainPrecedenceTieBreakers(t *testing.T) {
	withHeaders := config.Match{Path: prefixPath("/"), Headers: []config.ValueMatch{hdr("X-A", "1")}}
	plain := config.Match{Path: prefixPath("/")}
	newRoute := route("ns/a", nil, matches(plain))
	newRoute.CreationTimestamp = newer
	oldRoute := route("ns/z", nil, matches(plain))
	oldRoute.CreationTimestamp = older
	cases := []struct {
		name   string
		routes []config.Route
		loser  string
		detail string
	}{
		{"exact over prefix", []config.Route{route("ns/a", nil, matches(config.Match{Path: exactPath("/p")}, plain))}, "ns/a#0.1", "Exact path ranks before a PathPrefix"},
		{"longer prefix", []config.Route{route("ns/a", nil, matches(config.Match{Path: prefixPath("/p")}, plain))}, "ns/a#0.1", `"/p" is longer than "/"`},
		{"method", []config.Route{route("ns/a", nil, matches(config.Match{Path: prefixPath("/"), Method: "GET"}, plain))}, "ns/a#0.1", "requires a method"},
		{"headers", []config.Route{route("ns/a", nil, matches(withHeaders, plain))}, "ns/a#0.1", "more header conditions (1, this one 0)"},
		{"older route", []config.Route{newRoute, oldRoute}, "ns/a#0.0", "older"},
		{"name", []config.Route{route("ns/b", nil, matches(plain)), route("ns/a", nil, matches(plain))}, "ns/b#0.0", "ns/a sorts before ns/b"},
		{"rule order", []config.Route{route("ns/a", nil, matches(plain), matches(plain))}, "ns/a#1.0", "rule 0 of the same route comes before rule 1"},
		{"match order", []config.Route{route("ns/a", nil, matches(plain, plain))}, "ns/a#0.1", "match 0 of the same rule comes before match 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table := mustCompile(t, listener(vhost("vh", "", tc.routes...)))
			ex := table.Explain(req{host: "h", target: "/p", headers: [][2]string{{"X-A", "1"}}}.build())
			c := explained(t, ex, tc.loser)
			if c.Outcome != OutcomeOutranked || len(c.Reasons) != 1 || !strings.Contains(c.Reasons[0].Detail, tc.detail) {
				t.Errorf("%s: %s %+v, want outranked because %q (chosen %s)", tc.loser, c.Outcome, c.Reasons, tc.detail, describe(ex.Chosen))
			}
		})
	}
}

func TestExplainWithoutVirtualHost(t *testing.T) {
	table := mustCompile(t, listener(vhost("only", "*.example.com", route("r", nil, nil))))
	ex := table.Explain(req{host: "example.com", target: "/"}.build())
	if ex.VirtualHost != nil || ex.Chosen != nil || len(ex.Candidates) != 0 {
		t.Errorf("explanation %+v for a host no virtual host accepts", ex)
	}
}

func TestMatchOrder(t *testing.T) {
	table := explainTable(t)
	order := table.MatchOrder()
	if len(order) != 1 {
		t.Fatalf("%d virtual hosts", len(order))
	}
	var got []string
	for _, tier := range order[0].Tiers {
		var names []string
		for _, c := range tier.Candidates {
			names = append(names, describe(c.Entry))
		}
		got = append(got, fmt.Sprintf("%s %s: %s", tier.Kind, tier.Hostname, strings.Join(names, " ")))
	}
	want := []string{
		"Exact api.example.com: shop/exact-host#0.0",
		"Exact other.org: shop/other#0.-1",
		"Wildcard *.example.com: shop/wildcard#0.0 shop/wildcard#1.0",
		"Any : shop/catch-all#0.0 shop/catch-all#1.0 shop/catch-all#0.1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("match order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// FuzzExplain checks Explain against Lookup and the reference matcher of
// FuzzLookup; see checkExplainProperty.
func FuzzExplain(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 0, 3, 1, 2, 2, 1, 2, 1, 3, 1, 1, 2, 2, 2, 1, 1})
	f.Add([]byte("a fairly long seed so that several routes and matches get built"))
	f.Fuzz(checkExplainProperty)
}

// TestExplainAgreesWithLookup runs the fuzz property over a fixed set of generated
// inputs, so that every test run covers many tables.
func TestExplainAgreesWithLookup(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		data := make([]byte, rng.IntN(64))
		for j := range data {
			data[j] = byte(rng.IntN(256))
		}
		checkExplainProperty(t, data)
	}
}

// checkExplainProperty builds a table from data and checks, for random requests,
// that the chosen match is Lookup's, that it is the first candidate whose
// conditions all hold, and that a candidate's conditions hold exactly when the
// reference matcher says its route accepts the host and its match holds.
func checkExplainProperty(t *testing.T, data []byte) {
	h := fnv.New64a()
	h.Write(data)
	rng := rand.New(rand.NewPCG(h.Sum64(), 3))
	l := fuzzListener(&byteSource{data: data, rng: rand.New(rand.NewPCG(h.Sum64(), 11))})
	table, err := Compile(l, testFactory)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	for i := 0; i < 64; i++ {
		r := fuzzRequest(rng)
		checkExplanation(t, table, r.Host, table.Explain(r), table.Lookup(r), func(c CandidateExplanation) bool {
			_, _, hostOK := refRouteHost(c.Route, refHost(r.Host))
			m := c.Match
			if m == nil {
				m = &config.Match{}
			}
			return hostOK && refMatches(m, r)
		})
	}
}

func checkExplanation(t *testing.T, table *Table, host string, ex *Explanation, want *Entry, holds func(CandidateExplanation) bool) {
	t.Helper()
	if ex.Chosen != want {
		t.Fatalf("Explain chose %s, Lookup %s", describe(ex.Chosen), describe(want))
	}
	if ex.VirtualHost != table.VirtualHostFor(host) {
		t.Fatalf("virtual host %v, want %v", ex.VirtualHost, table.VirtualHostFor(host))
	}
	firstHolding := -1
	for i, c := range ex.Candidates {
		if got := c.Outcome != OutcomeNotMatched; got != holds(c) {
			t.Fatalf("%s: outcome %s %+v, reference says conditions hold = %v", describe(c.Entry), c.Outcome, c.Reasons, !got)
		}
		if c.Outcome != OutcomeNotMatched && firstHolding < 0 {
			firstHolding = i
		}
		switch c.Outcome {
		case OutcomeChosen:
			if c.Entry != want || len(c.Reasons) != 0 {
				t.Fatalf("%s chosen, Lookup %s", describe(c.Entry), describe(want))
			}
		case OutcomeOutranked:
			if len(c.Reasons) != 1 || c.Reasons[0].Criterion != CriterionPrecedence || want == nil {
				t.Fatalf("%s outranked: %+v", describe(c.Entry), c.Reasons)
			}
		default:
			if len(c.Reasons) == 0 {
				t.Fatalf("%s not matched without a reason", describe(c.Entry))
			}
		}
	}
	if (firstHolding < 0) != (want == nil) || (want != nil && ex.Candidates[firstHolding].Entry != want) {
		t.Fatalf("first candidate whose conditions hold is #%d, Lookup chose %s", firstHolding, describe(want))
	}
}
