package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// routesPerHost is how many routes share one hostname in the benchmark listeners,
// so that larger tables mean more hosts, as in a shared gateway.
const routesPerHost = 10

// benchListener builds n routes over n/routesPerHost hosts: per host six PathPrefix
// routes, two Exact, one RegularExpression and one PathPrefix with header
// conditions; every hundredth route also carries a wildcard hostname.
func benchListener(n int) *config.Listener {
	vh := config.VirtualHost{Name: "bench", Hostname: "*.example.com"}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		host := fmt.Sprintf("svc%d.example.com", i/routesPerHost)
		r := config.Route{
			Name:              fmt.Sprintf("ns/route-%05d", i),
			Hostnames:         []string{host},
			CreationTimestamp: base.Add(time.Duration(i) * time.Second),
		}
		if i%100 == 50 {
			r.Hostnames = append(r.Hostnames, "*.example.com")
		}
		r.Rules = []config.Rule{{Matches: []config.Match{benchMatch(i)}}}
		vh.Routes = append(vh.Routes, r)
	}
	return listener(vh)
}

func benchMatch(i int) config.Match {
	j := i % routesPerHost
	switch {
	case j < 6:
		return config.Match{Path: prefixPath(fmt.Sprintf("/api/v%d/res%d", j, i))}
	case j < 8:
		return config.Match{Path: exactPath(fmt.Sprintf("/exact/%d", i)), Method: "GET"}
	case j == 8:
		return config.Match{Path: regexPath(fmt.Sprintf("/re/[0-9]+/%d", i))}
	default:
		return config.Match{
			Path:    prefixPath(fmt.Sprintf("/api/v%d", j)),
			Headers: []config.ValueMatch{hdr("X-Tenant", "t1"), hdrRE("X-Version", "v[0-9]+")},
		}
	}
}

// benchRequest targets the last route of benchListener(n).
func benchRequest(n int) *http.Request {
	last := n - 1
	r := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/api/v%d/items/42?x=1", last%routesPerHost), nil)
	r.Host = fmt.Sprintf("svc%d.example.com:8443", last/routesPerHost)
	r.Header.Set("X-Tenant", "t1")
	r.Header.Set("X-Version", "v2")
	return r
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			l := benchListener(n)
			table := mustCompile(b, l)
			r := benchRequest(n)
			if e := table.Lookup(r); e == nil || e.Route != &l.VirtualHosts[0].Routes[n-1] {
				b.Fatalf("benchmark request selected %s, want the last route", describe(e))
			}
			b.ReportAllocs()
			for b.Loop() {
				table.Lookup(r)
			}
		})
	}
}

// BenchmarkLookupExactPath measures an Exact path hit next to the prefix and
// regular-expression candidates of the same host.
func BenchmarkLookupExactPath(b *testing.B) {
	benchmarkOneRoute(b, 10000-3, "/exact/%d") // an Exact route
}

// BenchmarkLookupRegex measures a request that only a RegularExpression matches.
func BenchmarkLookupRegex(b *testing.B) {
	benchmarkOneRoute(b, 10000-2, "/re/123/%d") // a RegularExpression route
}

// benchmarkOneRoute looks up, among 10,000 routes, a request that only route i
// matches; pathFormat turns i into the request path.
func benchmarkOneRoute(b *testing.B, i int, pathFormat string) {
	table := mustCompile(b, benchListener(10000))
	r := httptest.NewRequest(http.MethodGet, fmt.Sprintf(pathFormat, i), nil)
	r.Host = fmt.Sprintf("svc%d.example.com", i/routesPerHost)
	if e := table.Lookup(r); e == nil || e.Route.Name != fmt.Sprintf("ns/route-%05d", i) {
		b.Fatalf("benchmark request selected %s", describe(e))
	}
	b.ReportAllocs()
	for b.Loop() {
		table.Lookup(r)
	}
}

func BenchmarkCompile10k(b *testing.B) {
	l := benchListener(10000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(l, testFactory); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileHeap10k reports the live heap a compiled 10,000-route table holds,
// beyond the configuration it was compiled from, as the metric heap-B/table.
func BenchmarkCompileHeap10k(b *testing.B) {
	l := benchListener(10000)
	var total uint64
	var runs int
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		table, err := Compile(l, testFactory)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(table)
		if after.HeapAlloc > before.HeapAlloc {
			total += after.HeapAlloc - before.HeapAlloc
		}
		runs++
	}
	b.ReportMetric(float64(total)/float64(runs), "heap-B/table")
}

// BenchmarkExplain measures the admin API's match explanation, which judges every
// match of the virtual host; it runs per operator query, never per request.
func BenchmarkExplain(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			table := mustCompile(b, benchListener(n))
			r := benchRequest(n)
			if ex := table.Explain(r); ex.Chosen == nil || len(ex.Candidates) != n {
				b.Fatalf("explanation chose %s among %d candidates", describe(ex.Chosen), len(ex.Candidates))
			}
			b.ReportAllocs()
			for b.Loop() {
				table.Explain(r)
			}
		})
	}
}
