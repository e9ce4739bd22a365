package router

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

func TestCompileErrors(t *testing.T) {
	bad := func(m config.Match) *config.Listener {
		return listener(vhost("vh", "", route("r", nil, matches(m))))
	}
	cases := []struct {
		name string
		l    *config.Listener
		want string
	}{
		{"bad path regex", bad(config.Match{Path: regexPath("(")}), "path"},
		{"bad header regex", bad(config.Match{Headers: []config.ValueMatch{hdrRE("X", "[")}}), "header match"},
		{"bad query regex", bad(config.Match{QueryParams: []config.ValueMatch{hdrRE("q", "[")}}), "query parameter match"},
		{"unknown path type", bad(config.Match{Path: &config.PathMatch{Type: "Glob", Value: "/*"}}), "Glob"},
		{"unknown value type", bad(config.Match{Headers: []config.ValueMatch{{Type: "Prefix", Name: "X"}}}), "Prefix"},
		{"nil listener", nil, "no listener"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.l, testFactory)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}

	l := listener(vhost("vh", "", route("r", nil, nil)))
	if _, err := Compile(l, nil); err == nil {
		t.Error("Compile with no factory succeeded")
	}
	boom := errors.New("boom")
	_, err := Compile(l, func(*config.VirtualHost, *config.Route, int) (http.Handler, error) { return nil, boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "route r: rule 0") {
		t.Errorf("factory error not passed on with its place: %v", err)
	}
	_, err = Compile(l, func(*config.VirtualHost, *config.Route, int) (http.Handler, error) { return nil, nil })
	if err == nil {
		t.Error("Compile accepted a nil handler")
	}
}

func TestFactoryCalledOncePerRule(t *testing.T) {
	l := listener(
		vhost("a", "a.example.com",
			route("r1", []string{"a.example.com", "*.example.com"},
				matches(config.Match{Path: prefixPath("/x")}, config.Match{Path: exactPath("/y")}),
				nil),
		),
		vhost("b", "", route("r2", nil, matches(config.Match{Path: prefixPath("/")}))),
	)
	calls := map[string]int{}
	_, err := Compile(l, func(vh *config.VirtualHost, r *config.Route, i int) (http.Handler, error) {
		if &vh.Routes[0] != r {
			t.Errorf("factory got route %s not belonging to virtual host %s", r.Name, vh.Name)
		}
		calls[describe(&Entry{Route: r, RuleIndex: i})]++
		return testFactory(vh, r, i)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"r1#0.-1": 1, "r1#1.-1": 1, "r2#0.-1": 1}
	if len(calls) != len(want) {
		t.Fatalf("factory calls = %v, want %v", calls, want)
	}
	for k, n := range want {
		if calls[k] != n {
			t.Errorf("factory calls = %v, want %v", calls, want)
		}
	}
}

func TestEntries(t *testing.T) {
	l := listener(
		vhost("one", "one.example.com",
			route("r", nil,
				matches(config.Match{Path: regexPath("/re")}),
				matches(config.Match{Path: prefixPath("/short/")}, config.Match{Path: prefixPath("/longer/path")}),
				nil,
				matches(config.Match{Path: exactPath("/e")}),
			),
		),
		vhost("two", "", route("s", []string{"x.example.com", "*.example.com"}, matches(config.Match{Path: prefixPath("/")}))),
	)
	table := mustCompile(t, l)
	groups := table.Entries()
	if len(groups) != 2 || groups[0].VirtualHost.Name != "one" || groups[1].VirtualHost.Name != "two" {
		t.Fatalf("Entries groups = %+v", groups)
	}
	var got []string
	var prefixes []string
	for _, e := range groups[0].Entries {
		got = append(got, describe(e))
		prefixes = append(prefixes, e.MatchedPrefix)
	}
	want := []string{"r#3.0", "r#1.1", "r#1.0", "r#2.-1", "r#0.0"}
	wantPrefixes := []string{"", "/longer/path", "/short", "", ""}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("entries = %v, want %v", got, want)
	}
	if strings.Join(prefixes, "|") != strings.Join(wantPrefixes, "|") {
		t.Errorf("matched prefixes = %q, want %q", prefixes, wantPrefixes)
	}
	// A route in two hostname tiers is still listed once.
	if n := len(groups[1].Entries); n != 1 {
		t.Errorf("virtual host two has %d entries, want 1", n)
	}
	groups[0].Entries[0] = nil
	if table.Entries()[0].Entries[0] == nil {
		t.Error("Entries exposes the table's own slice")
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	l := listener(
		vhost("api", "api.example.com",
			route("users", []string{"api.example.com"},
				matches(config.Match{Path: exactPath("/users"), Method: "GET"}),
				matches(config.Match{Path: prefixPath("/users/"), Headers: []config.ValueMatch{hdr("X-Version", "2"), hdrRE("X-Id", "[0-9]+")}}),
				matches(config.Match{Path: prefixPath("/search"), QueryParams: []config.ValueMatch{hdr("q", "a b"), hdrRE("page", "[0-9]+")}}),
			),
			route("fallback", nil, matches(config.Match{Path: prefixPath("/")})),
		),
		vhost("wild", "*.example.com", route("w", []string{"*.example.com"}, nil)),
	)
	table := mustCompile(t, l)
	cases := []struct {
		name string
		req  req
		want string
	}{
		{"exact path and method", req{host: "api.example.com", target: "/users"}, "users#0.0"},
		{"prefix with headers", req{host: "api.example.com:443", target: "/users/42/posts", headers: [][2]string{{"X-Version", "2"}, {"X-Id", "42"}}}, "users#1.0"},
		{"query", req{host: "api.example.com", target: "/search?page=3&q=a%20b"}, "users#2.0"},
		{"fall through to catch-all", req{host: "api.example.com", target: "/other/deep/path"}, "fallback#0.0"},
		{"wildcard host", req{host: "x.y.example.com", target: "/"}, "w#0.-1"},
		{"no match", req{host: "nothing.org", target: "/"}, "404"},
	}
	for _, tc := range cases {
		r := tc.req.build()
		if d := describe(table.Lookup(r)); d != tc.want {
			t.Fatalf("%s: Lookup = %s, want %s", tc.name, d, tc.want)
		}
		if n := testing.AllocsPerRun(200, func() { table.Lookup(r) }); n != 0 {
			t.Errorf("%s: Lookup allocated %v times per call", tc.name, n)
		}
	}
}

// TestServeOverLoopback drives the table from a real HTTP server, so host, header
// and path handling are checked on what net/http actually produces from the wire.
func TestServeOverLoopback(t *testing.T) {
	l := listener(
		vhost("vh", "*.example.com",
			route("v2", nil, matches(config.Match{Path: prefixPath("/app"), Headers: []config.ValueMatch{hdr("X-Version", "2")}})),
			route("app", nil, matches(config.Match{Path: prefixPath("/app")})),
		),
	)
	table := mustCompile(t, l)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := table.Lookup(r)
		if e == nil {
			http.NotFound(w, r)
			return
		}
		e.Handler.ServeHTTP(w, r)
	}))
	defer srv.Close()

	cases := []struct {
		host, path, version, want string
	}{
		{"WWW.Example.com.", "/app/x", "2", "v2#0"},
		{"www.example.com:1234", "/app", "", "app#0"},
		{"a.b.example.com", "/app%2Fx", "1", "app#0"},
		{"example.com", "/app", "2", "404"},
		{"www.example.com", "/apples", "", "404"},
	}
	client := srv.Client()
	for _, tc := range cases {
		r, err := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Host = tc.host
		if tc.version != "" {
			// A lower-case name on the wire must still match the configured header.
			r.Header["x-version"] = []string{tc.version}
		}
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := string(body)
		if resp.StatusCode == http.StatusNotFound {
			got = "404"
		}
		if got != tc.want {
			t.Errorf("GET %s%s (version %q) = %q, want %q", tc.host, tc.path, tc.version, got, tc.want)
		}
	}
}

// TestConcurrentLookup shares one table between goroutines, as the data plane does;
// the race detector checks that lookups never write shared state.
func TestConcurrentLookup(t *testing.T) {
	l := listener(vhost("vh", "",
		route("a", []string{"a.example.com"}, matches(config.Match{Path: regexPath("/a/[0-9]+"), QueryParams: []config.ValueMatch{hdrRE("q", "x.*")}})),
		route("b", nil, matches(config.Match{Path: prefixPath("/b"), Headers: []config.ValueMatch{hdrRE("X", "[a-z]+")}})),
	))
	table := mustCompile(t, l)
	requests := []struct {
		req  req
		want string
	}{
		{req{host: "A.example.com", target: "/a/12?q=x%20y"}, "a#0.0"},
		{req{host: "b.example.com", target: "/b/c", headers: [][2]string{{"X", "abc"}}}, "b#0.0"},
		{req{host: "b.example.com", target: "/b/c"}, "404"},
	}
	done := make(chan string, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 300; i++ {
				tc := requests[(g+i)%len(requests)]
				if got := describe(table.Lookup(tc.req.build())); got != tc.want {
					done <- fmt.Sprintf("%+v: got %s, want %s", tc.req, got, tc.want)
					return
				}
			}
			done <- ""
		}()
	}
	for g := 0; g < 8; g++ {
		if msg := <-done; msg != "" {
			t.Error(msg)
		}
	}
}
