package router

import (
	"cmp"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// byteSource turns fuzz input into choices. Once the input is used up it continues
// with a generator seeded from the input, so short inputs still build varied
// listeners.
type byteSource struct {
	data []byte
	rng  *rand.Rand
}

func (s *byteSource) pick(n int) int {
	if len(s.data) == 0 {
		return s.rng.IntN(n)
	}
	b := s.data[0]
	s.data = s.data[1:]
	return int(b) % n
}

func (s *byteSource) from(pool []string) string { return pool[s.pick(len(pool))] }

var (
	fuzzVHostnames  = []string{"", "example.com", "*.example.com", "*.b.example.com", "a.b.example.com"}
	fuzzRouteHosts  = []string{"a.example.com", "A.Example.com.", "b.example.com", "a.b.example.com", "*.example.com", "*.b.example.com", "*.a.b.example.com", "other.org"}
	fuzzRouteNames  = []string{"ns/a", "ns/b", "ns/c"}
	fuzzTimes       = []time.Time{{}, older, newer}
	fuzzPaths       = []string{"/", "/a", "/a/", "/a/b", "/ab", "/a/b/", "//", "/a//"}
	fuzzRegexes     = []string{"/a.*", "/[ab]+", ".*", "/a/b", "/(a|b)/?"}
	fuzzMethods     = []string{"", "GET", "POST"}
	fuzzHeaderNames = []string{"X-A", "x-a", "X-B"}
	fuzzQueryNames  = []string{"q", "Q", "r"}
	fuzzValues      = []string{"1", "2", "a b"}
	fuzzValueRes    = []string{"[12]", "a.b", "1|x"}

	fuzzReqHosts   = []string{"example.com", "a.example.com", "A.EXAMPLE.COM:8080", "b.example.com.", "a.b.example.com", "x.a.b.example.com", "c.b.example.com", "other.org", "127.0.0.1:80"}
	fuzzReqPaths   = []string{"/", "/a", "/a/", "/a/b", "/a/b/", "/ab", "/a/b/c", "//", "/a//", "/b", "/a//b"}
	fuzzReqMethods = []string{"GET", "POST", "PUT"}
	fuzzReqQuery   = []string{"q=1", "q=2", "Q=1", "r=a+b", "r=a%20b", "q=%zz", "q", "r=2;x", "%71=2", "r=1", "=1"}
)

// fuzzListener builds a small random listener from the fuzz input.
func fuzzListener(s *byteSource) *config.Listener {
	l := &config.Listener{Name: ":80", Port: 80, Protocol: config.ProtocolHTTP}
	used := map[string]bool{}
	for n := 1 + s.pick(3); n > 0; n-- {
		hostname := s.from(fuzzVHostnames)
		if used[hostname] {
			continue
		}
		used[hostname] = true
		vh := config.VirtualHost{Name: "vh" + hostname, Hostname: hostname}
		for r := 1 + s.pick(4); r > 0; r-- {
			vh.Routes = append(vh.Routes, fuzzRoute(s))
		}
		l.VirtualHosts = append(l.VirtualHosts, vh)
	}
	return l
}

func fuzzRoute(s *byteSource) config.Route {
	r := config.Route{Name: s.from(fuzzRouteNames), CreationTimestamp: fuzzTimes[s.pick(len(fuzzTimes))]}
	for n := s.pick(3); n > 0; n-- {
		r.Hostnames = append(r.Hostnames, s.from(fuzzRouteHosts))
	}
	for n := 1 + s.pick(3); n > 0; n-- {
		var rule config.Rule
		for m := s.pick(3); m > 0; m-- {
			rule.Matches = append(rule.Matches, fuzzMatch(s))
		}
		r.Rules = append(r.Rules, rule)
	}
	return r
}

func fuzzMatch(s *byteSource) config.Match {
	var m config.Match
	switch s.pick(4) {
	case 1:
		m.Path = exactPath(s.from(fuzzPaths))
	case 2:
		m.Path = prefixPath(s.from(fuzzPaths))
	case 3:
		m.Path = regexPath(s.from(fuzzRegexes))
	}
	m.Method = s.from(fuzzMethods)
	for n := s.pick(3); n > 0; n-- {
		m.Headers = append(m.Headers, fuzzValueMatch(s, fuzzHeaderNames))
	}
	for n := s.pick(3); n > 0; n-- {
		m.QueryParams = append(m.QueryParams, fuzzValueMatch(s, fuzzQueryNames))
	}
	return m
}

func fuzzValueMatch(s *byteSource, names []string) config.ValueMatch {
	name := s.from(names)
	if s.pick(2) == 0 {
		return hdr(name, s.from(fuzzValues))
	}
	return hdrRE(name, s.from(fuzzValueRes))
}

// fuzzRequest builds a random request from the pools above.
func fuzzRequest(rng *rand.Rand) *http.Request {
	pick := func(pool []string) string { return pool[rng.IntN(len(pool))] }
	var query []string
	for n := rng.IntN(4); n > 0; n-- {
		query = append(query, pick(fuzzReqQuery))
	}
	target := pick(fuzzReqPaths)
	if len(query) > 0 {
		target += "?" + strings.Join(query, "&")
	}
	r := httptest.NewRequest(pick(fuzzReqMethods), "http://h"+target, nil)
	r.Host = pick(fuzzReqHosts)
	for n := rng.IntN(4); n > 0; n-- {
		r.Header.Add(pick(fuzzHeaderNames), pick(fuzzValues))
	}
	return r
}

// FuzzLookup compares Lookup with refLookup, a deliberately naive matcher that scans
// every match of the selected virtual host and keeps the one with the best
// precedence key.
func FuzzLookup(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 0, 3, 1, 2, 2, 1, 2, 1, 3, 1, 1, 2, 2, 2, 1, 1})
	f.Add([]byte("a fairly long seed so that several routes and matches get built"))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26})
	f.Fuzz(func(t *testing.T, data []byte) {
		h := fnv.New64a()
		h.Write(data)
		rng := rand.New(rand.NewPCG(h.Sum64(), 7))
		l := fuzzListener(&byteSource{data: data, rng: rand.New(rand.NewPCG(h.Sum64(), 11))})
		table, err := Compile(l, testFactory)
		if err != nil {
			t.Fatalf("Compile: %v", err)
		}
		// The same routes with every tier indexed, however small.
		indexed, err := compileTable(l, testFactory, 0)
		if err != nil {
			t.Fatalf("Compile: %v", err)
		}
		for i := 0; i < 64; i++ {
			r := fuzzRequest(rng)
			got := describe(table.Lookup(r))
			wantVH, want := refLookup(l, r)
			if got != want {
				t.Fatalf("%s %s%s?%s headers %v: Lookup = %s, reference = %s\nlistener: %+v",
					r.Method, r.Host, r.URL.Path, r.URL.RawQuery, r.Header, got, want, l)
			}
			if got := describe(indexed.Lookup(r)); got != want {
				t.Fatalf("%s %s%s?%s headers %v: Lookup with every tier indexed = %s, reference = %s\nlistener: %+v",
					r.Method, r.Host, r.URL.Path, r.URL.RawQuery, r.Header, got, want, l)
			}
			if vh := table.VirtualHostFor(r.Host); vh != wantVH {
				t.Fatalf("VirtualHostFor(%q) = %v, reference = %v", r.Host, vh, wantVH)
			}
		}
	})
}

// refHost normalises a host the obvious way.
func refHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// refHostScore rates how well a configured hostname matches host: exact names beat
// wildcards, longer wildcards beat shorter ones; ok is false for no match.
func refHostScore(pattern, host string) (exactLen, anyLen int, ok bool) {
	pattern = strings.TrimSuffix(strings.ToLower(pattern), ".")
	if suffix, wild := strings.CutPrefix(pattern, "*."); wild {
		return 0, len(pattern), strings.HasSuffix(host, "."+suffix)
	}
	return len(pattern), len(pattern), pattern == host
}

func refVirtualHost(l *config.Listener, host string) *config.VirtualHost {
	var best *config.VirtualHost
	bestScore := -1
	for i := range l.VirtualHosts {
		vh := &l.VirtualHosts[i]
		score := 0
		if vh.Hostname != "" {
			exactLen, anyLen, ok := refHostScore(vh.Hostname, host)
			if !ok {
				continue
			}
			score = exactLen*1000 + anyLen
		}
		if score > bestScore {
			best, bestScore = vh, score
		}
	}
	return best
}

// refKey is the full precedence key of one match for one request; smaller wins.
type refKey []int

func refLookup(l *config.Listener, r *http.Request) (*config.VirtualHost, string) {
	host := refHost(r.Host)
	vh := refVirtualHost(l, host)
	if vh == nil {
		return nil, "404"
	}
	var bestKey refKey
	var bestRoute *config.Route
	best := "404"
	for ri := range vh.Routes {
		route := &vh.Routes[ri]
		exactLen, anyLen, ok := refRouteHost(route, host)
		if !ok {
			continue
		}
		for rule := range route.Rules {
			ms := route.Rules[rule].Matches
			if len(ms) == 0 {
				ms = []config.Match{{}}
			}
			for mi := range ms {
				m := &ms[mi]
				if !refMatches(m, r) {
					continue
				}
				key := append(refKey{-exactLen, -anyLen}, refMatchKey(m)...)
				key = append(key, ri, rule, mi)
				if bestKey == nil || refLess(key, bestKey, route, bestRoute) {
					bestKey, bestRoute = key, route
					best = describe(&Entry{Route: route, RuleIndex: rule, Match: refMatchPtr(route, rule, mi)})
				}
			}
		}
	}
	return vh, best
}

func refMatchPtr(route *config.Route, rule, mi int) *config.Match {
	if len(route.Rules[rule].Matches) == 0 {
		return nil
	}
	return &route.Rules[rule].Matches[mi]
}

// refLess compares keys; creation time and name sit between the match criteria and
// the indexes, so they are compared from the routes.
func refLess(a, b refKey, ra, rb *config.Route) bool {
	// Host (2), path (2), method, headers and query come first; indexes last.
	const criteria = 7
	if c := slices.Compare(a[:criteria], b[:criteria]); c != 0 {
		return c < 0
	}
	if c := ra.CreationTimestamp.Compare(rb.CreationTimestamp); c != 0 {
		return c < 0
	}
	if c := cmp.Compare(ra.Name, rb.Name); c != 0 {
		return c < 0
	}
	return slices.Compare(a[criteria:], b[criteria:]) < 0
}

func refRouteHost(route *config.Route, host string) (exactLen, anyLen int, ok bool) {
	if len(route.Hostnames) == 0 {
		return 0, 0, true
	}
	for _, h := range route.Hostnames {
		e, a, match := refHostScore(h, host)
		if match && (!ok || e > exactLen || (e == exactLen && a > anyLen)) {
			exactLen, anyLen, ok = e, a, true
		}
	}
	return exactLen, anyLen, ok
}

// refMatchKey is the path kind, negated path length, method, header and query
// parts of the precedence key.
func refMatchKey(m *config.Match) refKey {
	kind, length := 1, 1 // nil path: PathPrefix "/"
	if m.Path != nil {
		switch m.Path.Type {
		case config.PathExact:
			kind, length = 0, len(m.Path.Value)
		case config.PathPrefix:
			kind, length = 1, len(m.Path.Value)
		default:
			kind, length = 2, 0
		}
	}
	method := 1
	if m.Method != "" {
		method = 0
	}
	return refKey{kind, -length, method, -len(refDedupe(m.Headers, true)), -len(refDedupe(m.QueryParams, false))}
}

// refDedupe keeps the first condition of each name.
func refDedupe(in []config.ValueMatch, foldCase bool) []config.ValueMatch {
	var out []config.ValueMatch
	for _, vm := range in {
		dup := slices.ContainsFunc(out, func(o config.ValueMatch) bool {
			return o.Name == vm.Name || (foldCase && strings.EqualFold(o.Name, vm.Name))
		})
		if !dup {
			out = append(out, vm)
		}
	}
	return out
}

func refMatches(m *config.Match, r *http.Request) bool {
	if !refPathMatches(m.Path, r.URL.Path) || (m.Method != "" && m.Method != r.Method) {
		return false
	}
	for _, h := range refDedupe(m.Headers, true) {
		values := r.Header.Values(h.Name)
		if len(values) == 0 || !refValueMatches(h, values[0]) {
			return false
		}
	}
	query, _ := url.ParseQuery(r.URL.RawQuery)
	for _, q := range refDedupe(m.QueryParams, false) {
		values := query[q.Name]
		if len(values) == 0 || !refValueMatches(q, values[0]) {
			return false
		}
	}
	return true
}

func refPathMatches(p *config.PathMatch, path string) bool {
	if p == nil {
		return true
	}
	switch p.Type {
	case config.PathExact:
		return path == p.Value
	case config.PathPrefix:
		prefix := strings.TrimSuffix(p.Value, "/")
		return path == prefix || strings.HasPrefix(path, prefix+"/")
	default:
		return regexp.MustCompile("^(?:" + p.Value + ")$").MatchString(path)
	}
}

func refValueMatches(vm config.ValueMatch, v string) bool {
	if vm.Type == config.MatchRegularExpression {
		return regexp.MustCompile("^(?:" + vm.Value + ")$").MatchString(v)
	}
	return v == vm.Value
}
