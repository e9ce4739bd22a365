package router

import (
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

func TestVirtualHostSelection(t *testing.T) {
	l := listener(
		vhost("exact", "a.example.com", route("exact-r", nil, matches(config.Match{Path: prefixPath("/x")}))),
		vhost("wild", "*.example.com", route("wild-r", nil, nil)),
		vhost("wild-b", "*.b.example.com", route("wild-b-r", nil, nil)),
		vhost("any", "", route("any-r", nil, nil)),
	)
	table := mustCompile(t, l)
	cases := []struct{ host, want string }{
		{"a.example.com", "exact"},
		{"A.Example.COM", "exact"},
		{"a.example.com:8443", "exact"},
		{"a.example.com.", "exact"},
		{"a.example.com.:80", "exact"},
		{"x.example.com", "wild"},
		{"deep.x.example.com", "wild"},
		{"b.example.com", "wild"},
		{"y.b.example.com", "wild-b"},
		{"z.y.b.example.com", "wild-b"},
		{"example.com", "any"},
		{"other.org", "any"},
		{"[::1]:8080", "any"},
		{"127.0.0.1:8080", "any"},
		{"", "any"},
	}
	for _, tc := range cases {
		vh := table.VirtualHostFor(tc.host)
		if vh == nil || vh.Name != tc.want {
			t.Errorf("VirtualHostFor(%q) = %v, want %s", tc.host, vh, tc.want)
		}
	}

	// Listener isolation: the exact virtual host has no route for /y, and the
	// wildcard virtual host's catch-all route must not answer in its place.
	runLookupCases(t, table, []lookupCase{
		{"isolated miss", req{host: "a.example.com", target: "/y"}, "404"},
		{"isolated hit", req{host: "A.EXAMPLE.com:1", target: "/x/1"}, "exact-r#0.0"},
		{"wildcard vh", req{host: "q.example.com", target: "/y"}, "wild-r#0.-1"},
		{"deeper wildcard vh", req{host: "q.b.example.com", target: "/y"}, "wild-b-r#0.-1"},
	})

	noDefault := mustCompile(t, listener(vhost("only", "*.example.com", route("r", nil, nil))))
	if vh := noDefault.VirtualHostFor("example.com"); vh != nil {
		t.Errorf("wildcard virtual host selected its own apex: %v", vh.Name)
	}
	runLookupCases(t, noDefault, []lookupCase{
		{"apex has no virtual host", req{host: "example.com", target: "/"}, "404"},
	})
}

func TestNormalizeHost(t *testing.T) {
	cases := map[string]string{
		"example.com":        "example.com",
		"Example.COM":        "example.com",
		"example.com:80":     "example.com",
		"example.com.":       "example.com",
		"example.com.:80":    "example.com",
		"[::1]:80":           "::1",
		"[::1]":              "::1",
		"::1":                "::1",
		"[FE80::1]:80":       "fe80::1",
		"127.0.0.1:9":        "127.0.0.1",
		"":                   "",
		"example.com..":      "example.com.",
		"[unterminated:8080": "[unterminated:8080",
	}
	for in, want := range cases {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHostnameTiers(t *testing.T) {
	l := listener(vhost("vh", "",
		route("exact", []string{"foo.example.com"}, matches(config.Match{Path: prefixPath("/a")})),
		route("wild-long", []string{"*.foo.example.com"}, matches(config.Match{Path: prefixPath("/")})),
		route("wild", []string{"*.example.com"}, matches(config.Match{Path: exactPath("/a")}), matches(config.Match{Path: prefixPath("/")})),
		route("both", []string{"Both.Example.com.", "*.both.example.com", "both.example.com"}, matches(config.Match{Path: prefixPath("/b")})),
		route("none", nil, matches(config.Match{Path: exactPath("/a")}), nil),
	))
	table := mustCompile(t, l)
	runLookupCases(t, table, []lookupCase{
		{"exact hostname first", req{host: "foo.example.com", target: "/a/b"}, "exact#0.0"},
		{"exact tier falls through to wildcard", req{host: "foo.example.com", target: "/c"}, "wild#1.0"},
		{"exact route path miss uses wildcard exact path", req{host: "foo.example.com", target: "/ab"}, "wild#1.0"},
		{"longer wildcard beats more specific path", req{host: "x.foo.example.com", target: "/a"}, "wild-long#0.0"},
		{"wildcard at depth", req{host: "x.y.z.example.com", target: "/a"}, "wild#0.0"},
		{"wildcard never matches apex", req{host: "example.com", target: "/a"}, "none#0.0"},
		{"no hostnames last", req{host: "other.org", target: "/zzz"}, "none#1.-1"},
		{"normalised route hostname", req{host: "both.example.com", target: "/b"}, "both#0.0"},
		{"route wildcard and exact", req{host: "x.both.example.com", target: "/b/c"}, "both#0.0"},
		{"route wildcard miss falls to shorter wildcard", req{host: "x.both.example.com", target: "/c"}, "wild#1.0"},
		{"uppercase request host", req{host: "FOO.example.com:8080", target: "/a"}, "exact#0.0"},
	})
}

func TestPathPrecedence(t *testing.T) {
	l := listener(vhost("vh", "",
		route("exact", nil, matches(config.Match{Path: exactPath("/foo")})),
		route("foo", nil, matches(config.Match{Path: prefixPath("/foo")})),
		route("foo-slash", nil, matches(config.Match{Path: prefixPath("/foo/")})),
		route("foo-bar", nil, matches(config.Match{Path: prefixPath("/foo/bar")})),
		route("regex", nil, matches(config.Match{Path: regexPath("/foo.*")}, config.Match{Path: regexPath("/r[0-9]+")})),
		route("api", nil, matches(config.Match{Path: prefixPath("/api/")})),
		route("root", []string{"root.example.com"}, matches(config.Match{Path: prefixPath("/")})),
		route("nilpath", []string{"nil.example.com"}, matches(config.Match{Method: "GET"})),
		route("exact-slash", nil, matches(config.Match{Path: exactPath("/e/")})),
	))
	table := mustCompile(t, l)
	runLookupCases(t, table, []lookupCase{
		{"exact beats prefix", req{host: "h", target: "/foo"}, "exact#0.0"},
		{"trailing-slash prefix is longer", req{host: "h", target: "/foo/"}, "foo-slash#0.0"},
		{"longest prefix", req{host: "h", target: "/foo/bar/baz"}, "foo-bar#0.0"},
		{"prefix is segment-wise", req{host: "h", target: "/foo/barn"}, "foo-slash#0.0"},
		{"prefix needs a boundary", req{host: "h", target: "/foobar"}, "regex#0.0"},
		{"regex is full match", req{host: "h", target: "/r12x"}, "404"},
		{"second regex match", req{host: "h", target: "/r12"}, "regex#0.1"},
		{"prefix with trailing slash matches bare path", req{host: "h", target: "/api"}, "api#0.0"},
		{"prefix with trailing slash matches subpath", req{host: "h", target: "/api/v1"}, "api#0.0"},
		{"prefix with trailing slash no boundary", req{host: "h", target: "/apix"}, "404"},
		{"indexed before regex", req{host: "root.example.com", target: "/foobar"}, "root#0.0"},
		{"root prefix matches everything", req{host: "root.example.com", target: "/"}, "root#0.0"},
		{"nil path is prefix slash", req{host: "nil.example.com", target: "/anything/at/all"}, "nilpath#0.0"},
		{"exact is exact", req{host: "h", target: "/e"}, "404"},
		{"exact with slash", req{host: "h", target: "/e/"}, "exact-slash#0.0"},
		{"decoded path is matched", req{host: "h", target: "/foo%2Fbar"}, "foo-bar#0.0"},
	})
}

func TestConditionPrecedence(t *testing.T) {
	l := listener(vhost("vh", "",
		route("exact-hdr", nil, matches(config.Match{Path: exactPath("/a"), Headers: []config.ValueMatch{hdr("X-Env", "prod")}})),
		route("prefix-a", nil, matches(config.Match{Path: prefixPath("/a")})),
		route("method", nil, matches(config.Match{Path: prefixPath("/m"), Method: "POST"})),
		route("two-headers", nil, matches(config.Match{Path: prefixPath("/m"), Headers: []config.ValueMatch{hdr("A", "1"), hdr("B", "1")}})),
		route("one-header", nil, matches(config.Match{Path: prefixPath("/m"), Headers: []config.ValueMatch{hdr("A", "1")}})),
		route("query", nil, matches(config.Match{Path: prefixPath("/m"), QueryParams: []config.ValueMatch{hdr("q", "1")}})),
		route("plain", nil, matches(config.Match{Path: prefixPath("/m")})),
	))
	table := mustCompile(t, l)
	runLookupCases(t, table, []lookupCase{
		{"exact with header", req{host: "h", target: "/a", headers: [][2]string{{"X-Env", "prod"}}}, "exact-hdr#0.0"},
		{"exact header miss falls through", req{host: "h", target: "/a", headers: [][2]string{{"X-Env", "dev"}}}, "prefix-a#0.0"},
		{"method beats headers", req{host: "h", target: "/m", method: "POST", headers: [][2]string{{"A", "1"}, {"B", "1"}}}, "method#0.0"},
		{"more headers first", req{host: "h", target: "/m", headers: [][2]string{{"A", "1"}, {"B", "1"}}}, "two-headers#0.0"},
		{"one header", req{host: "h", target: "/m/x", headers: [][2]string{{"A", "1"}}}, "one-header#0.0"},
		{"headers beat query", req{host: "h", target: "/m?q=1", headers: [][2]string{{"A", "1"}}}, "one-header#0.0"},
		{"query beats plain", req{host: "h", target: "/m?q=1"}, "query#0.0"},
		{"plain", req{host: "h", target: "/m?q=2"}, "plain#0.0"},
	})
}

func TestTieBreakers(t *testing.T) {
	young := route("a/young", nil, matches(config.Match{Path: prefixPath("/t")}))
	young.CreationTimestamp = newer
	old := route("z/old", nil, matches(config.Match{Path: prefixPath("/t")}))
	old.CreationTimestamp = older
	l := listener(vhost("vh", "",
		young, old,
		route("b/second", nil, matches(config.Match{Path: prefixPath("/n")})),
		route("a/first", nil, matches(config.Match{Path: prefixPath("/n")})),
		route("rules", nil,
			matches(config.Match{Path: prefixPath("/r"), Headers: []config.ValueMatch{hdr("X", "1")}}),
			matches(config.Match{Path: prefixPath("/r")}, config.Match{Path: prefixPath("/r")}),
			matches(config.Match{Path: prefixPath("/r")}),
		),
	))
	table := mustCompile(t, l)
	runLookupCases(t, table, []lookupCase{
		{"older route first", req{host: "h", target: "/t"}, "z/old#0.0"},
		{"name decides zero timestamps", req{host: "h", target: "/n"}, "a/first#0.0"},
		{"first rule then first match", req{host: "h", target: "/r"}, "rules#1.0"},
		{"header condition beats rule order", req{host: "h", target: "/r", headers: [][2]string{{"X", "1"}}}, "rules#0.0"},
	})
}

func TestHeaderAndQueryMatching(t *testing.T) {
	l := listener(vhost("vh", "",
		route("hdr-case", nil, matches(config.Match{Path: exactPath("/h"), Headers: []config.ValueMatch{hdr("x-VERSION", "v2")}})),
		route("hdr-re", nil, matches(config.Match{Path: exactPath("/re"), Headers: []config.ValueMatch{hdrRE("X-Id", "[0-9]+")}})),
		route("hdr-dup", nil, matches(config.Match{Path: exactPath("/dup"), Headers: []config.ValueMatch{hdr("X-D", "1"), hdr("x-d", "2")}})),
		route("host-hdr", nil, matches(config.Match{Path: exactPath("/host"), Headers: []config.ValueMatch{hdrRE("host", "h:[0-9]+")}})),
		route("q", nil, matches(config.Match{Path: exactPath("/q"), QueryParams: []config.ValueMatch{hdr("Name", "a b")}})),
		route("q-re", nil, matches(config.Match{Path: exactPath("/qre"), QueryParams: []config.ValueMatch{hdrRE("n", "x+/y")}})),
		route("q-dup", nil, matches(config.Match{Path: exactPath("/qdup"), QueryParams: []config.ValueMatch{hdr("n", "1"), hdr("n", "2")}})),
	))
	table := mustCompile(t, l)
	runLookupCases(t, table, []lookupCase{
		{"header name case-insensitive", req{host: "h", target: "/h", headers: [][2]string{{"X-Version", "v2"}}}, "hdr-case#0.0"},
		{"header value case-sensitive", req{host: "h", target: "/h", headers: [][2]string{{"X-Version", "V2"}}}, "404"},
		{"missing header", req{host: "h", target: "/h"}, "404"},
		{"repeated header uses first value", req{host: "h", target: "/h", headers: [][2]string{{"X-Version", "v2"}, {"X-Version", "v1"}}}, "hdr-case#0.0"},
		{"repeated header ignores later values", req{host: "h", target: "/h", headers: [][2]string{{"X-Version", "v1"}, {"X-Version", "v2"}}}, "404"},
		{"header regex", req{host: "h", target: "/re", headers: [][2]string{{"X-Id", "123"}}}, "hdr-re#0.0"},
		{"header regex full match", req{host: "h", target: "/re", headers: [][2]string{{"X-Id", "12a"}}}, "404"},
		{"duplicate header condition ignored", req{host: "h", target: "/dup", headers: [][2]string{{"X-D", "1"}}}, "hdr-dup#0.0"},
		{"host header condition", req{host: "h:80", target: "/host"}, "host-hdr#0.0"},
		{"host header condition miss", req{host: "h", target: "/host"}, "404"},
		{"query escaped", req{host: "h", target: "/q?Name=a%20b"}, "q#0.0"},
		{"query plus", req{host: "h", target: "/q?x=1&Name=a+b"}, "q#0.0"},
		{"query escaped name", req{host: "h", target: "/q?N%61me=a+b"}, "q#0.0"},
		{"query name case-sensitive", req{host: "h", target: "/q?name=a+b"}, "404"},
		{"query first value", req{host: "h", target: "/q?Name=x&Name=a+b"}, "404"},
		{"query bad escape skipped", req{host: "h", target: "/q?Name=%zz&Name=a+b"}, "q#0.0"},
		{"query semicolon pair skipped", req{host: "h", target: "/q?Name=x;y&Name=a+b"}, "q#0.0"},
		{"query regex escaped value", req{host: "h", target: "/qre?n=xx%2Fy"}, "q-re#0.0"},
		{"query regex plain value", req{host: "h", target: "/qre?n=x/y"}, "q-re#0.0"},
		{"query regex full match", req{host: "h", target: "/qre?n=x/yz"}, "404"},
		{"duplicate query condition ignored", req{host: "h", target: "/qdup?n=1"}, "q-dup#0.0"},
		{"query missing", req{host: "h", target: "/qdup"}, "404"},
	})
}

func TestQueryScanner(t *testing.T) {
	cases := []struct {
		raw, name, want string
		found           bool
	}{
		{"a=1&b=2", "b", "2", true},
		{"a=1&a=2", "a", "1", true},
		{"a", "a", "", true},
		{"a=", "a", "", true},
		{"&&a=1", "a", "1", true},
		{"a%=1&a=2", "a%", "", false},
		{"a=%4&a=3", "a", "3", true},
		{"a+b=1", "a b", "1", true},
		{"%41=1", "A", "1", true},
		{"ab=1", "a", "", false},
		{"a=1", "ab", "", false},
		{"", "a", "", false},
	}
	for _, tc := range cases {
		got, found := firstQueryValue(tc.raw, tc.name)
		if got != tc.want || found != tc.found {
			t.Errorf("firstQueryValue(%q, %q) = %q, %v; want %q, %v", tc.raw, tc.name, got, found, tc.want, tc.found)
		}
	}
}

func TestMatchesHeaders(t *testing.T) {
	cases := []struct {
		name  string
		match config.Match
		want  bool
	}{
		{"path only", config.Match{Path: prefixPath("/a")}, false},
		{"query", config.Match{QueryParams: []config.ValueMatch{hdr("q", "1")}}, false},
		{"host header", config.Match{Headers: []config.ValueMatch{hdr("host", "a.example.com")}}, false},
		{"other header", config.Match{Headers: []config.ValueMatch{hdr("X-Env", "prod")}}, true},
		{"header expression", config.Match{Headers: []config.ValueMatch{hdrRE("X-Env", "pr.*")}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := listener(
				vhost("first", "a.example.com", route("plain", nil, matches(config.Match{Path: prefixPath("/")}))),
				vhost("second", "", route("r", nil, matches(tc.match))),
			)
			if got := mustCompile(t, l).MatchesHeaders(); got != tc.want {
				t.Fatalf("MatchesHeaders = %v, want %v", got, tc.want)
			}
		})
	}
}
