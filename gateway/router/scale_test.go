package router

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// lastRoute is the route a scale test or benchmark appends after the filler routes
// of mixedListener, and a request that only it matches.
type lastRoute struct {
	kind     string
	hostname string
	match    config.Match
	req      req
}

// lastRoutes covers every kind of match: each request must travel past the other
// routes' candidates of its host to the route defined last.
var lastRoutes = []lastRoute{
	{
		kind: "exact", hostname: "svc999.example.com",
		match: config.Match{Path: exactPath("/last/exact"), Method: http.MethodGet},
		req:   req{host: "svc999.example.com", target: "/last/exact"},
	},
	{
		kind: "prefix", hostname: "svc999.example.com",
		match: config.Match{Path: prefixPath("/last/prefix/")},
		req:   req{host: "svc999.example.com:8443", target: "/last/prefix/deep/er/path?x=1"},
	},
	{
		kind: "regex", hostname: "*.zone999.example.com",
		match: config.Match{Path: regexPath("/last/[0-9]+/item")},
		req:   req{host: "a.b.zone999.example.com", target: "/last/42/item"},
	},
	{
		kind: "header", hostname: "svc999.example.com",
		match: config.Match{Path: prefixPath("/p9990"), Headers: []config.ValueMatch{hdr("X-Tenant", "t1"), hdrRE("X-Version", "v[0-9]+")}},
		req:   req{host: "svc999.example.com", target: "/p9990/items", headers: [][2]string{{"X-Tenant", "t1"}, {"X-Version", "v2"}}},
	},
	{
		kind: "query", hostname: "",
		match: config.Match{Path: prefixPath("/search"), QueryParams: []config.ValueMatch{hdr("q", "a b"), hdrRE("tag", "[a-z ]+")}},
		req:   req{host: "anything.example.org", target: "/search?q=a+b&tag=new%20things"},
	},
	{
		kind: "uppercase-host", hostname: "svc999.example.com",
		match: config.Match{Path: prefixPath("/last/host")},
		req:   req{host: "SVC999.Example.COM.", target: "/last/host"},
	},
}

// mixedListener builds n-1 filler routes and then last, in one virtual host without
// a hostname, so that every tier kind is in use. Among the fillers, seven in ten name
// an exact host (svcN.example.com, ten routes each), one in ten a wildcard
// (*.zoneN.example.com) and two in ten no host. Their paths are half PathPrefix,
// a quarter Exact with a method, an eighth RegularExpression and an eighth
// PathPrefix with header and query conditions. None matches a request of lastRoutes.
func mixedListener(n int, last lastRoute) *config.Listener {
	vh := config.VirtualHost{Name: "mixed"}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n - 1 {
		r := config.Route{
			Name:              fmt.Sprintf("ns/route-%05d", i),
			CreationTimestamp: base.Add(time.Duration(i) * time.Second),
			Rules:             []config.Rule{{Matches: []config.Match{fillerMatch(i)}}},
		}
		switch i % 10 {
		case 7:
			r.Hostnames = []string{fmt.Sprintf("*.zone%d.example.com", i/10)}
		case 8, 9:
		default:
			r.Hostnames = []string{fmt.Sprintf("svc%d.example.com", i/10)}
		}
		vh.Routes = append(vh.Routes, r)
	}
	r := config.Route{Name: "ns/last", CreationTimestamp: base.Add(time.Duration(n) * time.Second),
		Rules: []config.Rule{{Matches: []config.Match{last.match}}}}
	if last.hostname != "" {
		r.Hostnames = []string{last.hostname}
	}
	vh.Routes = append(vh.Routes, r)
	return listener(vh)
}

// fillerMatch is the match of filler route i of mixedListener.
func fillerMatch(i int) config.Match {
	switch i % 8 {
	case 0, 1, 2, 3:
		return config.Match{Path: prefixPath(fmt.Sprintf("/p%d", i))}
	case 4, 5:
		return config.Match{Path: exactPath(fmt.Sprintf("/e/%d", i)), Method: http.MethodGet}
	case 6:
		return config.Match{Path: regexPath(fmt.Sprintf("/r/[0-9]+/%d", i))}
	default:
		return config.Match{
			Path:        prefixPath(fmt.Sprintf("/h%d", i)),
			Headers:     []config.ValueMatch{hdr("X-Tenant", "t1"), hdrRE("X-Version", "v[0-9]+")},
			QueryParams: []config.ValueMatch{hdr("q", "x")},
		}
	}
}

// TestLookupAmongTenThousandRoutesDoesNotAllocate looks up, among 10,000 routes of
// every host and path kind, a request that only the route defined last matches,
// for each kind of match, and checks that the lookup allocates nothing.
func TestLookupAmongTenThousandRoutesDoesNotAllocate(t *testing.T) {
	for _, last := range lastRoutes {
		t.Run(last.kind, func(t *testing.T) {
			table := mustCompile(t, mixedListener(10000, last))
			r := last.req.build()
			if d := describe(table.Lookup(r)); d != "ns/last#0.0" {
				t.Fatalf("Lookup = %s, want ns/last#0.0", d)
			}
			if n := testing.AllocsPerRun(200, func() { table.Lookup(r) }); n != 0 {
				t.Errorf("Lookup allocated %v times per call", n)
			}
		})
	}
}

// TestAppendUnescapedDecodesAsQueryUnescape checks the in-place decoding of query
// values against net/url, for the values validEscapes accepts.
func TestAppendUnescapedDecodesAsQueryUnescape(t *testing.T) {
	for _, raw := range []string{"", "plain", "a+b", "a%20b", "%41%62%7a", "%e2%82%ac+x", "100%25", "++", "%2B+%2b"} {
		if !validEscapes(raw) {
			t.Fatalf("%q has invalid escapes", raw)
		}
		want, err := url.QueryUnescape(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(appendUnescaped(nil, raw)); got != want {
			t.Errorf("appendUnescaped(%q) = %q, want %q", raw, got, want)
		}
	}
}

// BenchmarkLookupScale looks up the requests of lastRoutes in a table of that route
// alone and among 10,000 routes (mixedListener): the ratio of the two is what the
// size of the table costs a lookup.
func BenchmarkLookupScale(b *testing.B) {
	for _, last := range lastRoutes {
		for _, n := range []int{1, 10000} {
			b.Run(fmt.Sprintf("%s/routes=%d", last.kind, n), func(b *testing.B) {
				table := mustCompile(b, mixedListener(n, last))
				r := last.req.build()
				if d := describe(table.Lookup(r)); d != "ns/last#0.0" {
					b.Fatalf("Lookup = %s, want ns/last#0.0", d)
				}
				b.ReportAllocs()
				for b.Loop() {
					table.Lookup(r)
				}
			})
		}
	}
}

// BenchmarkLookupScaleRatio measures the ratio of BenchmarkLookupScale's two table
// sizes directly, as the metric "10k/1": it alternates batches of lookups in the
// 10,000-route table and in the one-route table, so that a machine whose load
// changes during the run slows both alike. ns/op is that of the large table.
func BenchmarkLookupScaleRatio(b *testing.B) {
	const batch = 2000
	for _, last := range lastRoutes {
		b.Run(last.kind, func(b *testing.B) {
			one, large := mustCompile(b, mixedListener(1, last)), mustCompile(b, mixedListener(10000, last))
			r := last.req.build()
			for _, table := range []*Table{one, large} {
				if d := describe(table.Lookup(r)); d != "ns/last#0.0" {
					b.Fatalf("Lookup = %s, want ns/last#0.0", d)
				}
			}
			var inOne, inLarge time.Duration
			for b.Loop() {
				start := time.Now()
				for range batch {
					large.Lookup(r)
				}
				middle := time.Now()
				for range batch {
					one.Lookup(r)
				}
				inLarge += middle.Sub(start)
				inOne += time.Since(middle)
			}
			b.ReportMetric(float64(inLarge)/float64(inOne), "10k/1")
			b.ReportMetric(float64(inLarge)/float64(b.N*batch), "ns/op")
		})
	}
}
