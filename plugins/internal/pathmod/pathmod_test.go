package pathmod

import (
	"net/url"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// The first eleven cases are the table in the Gateway API's HTTPPathModifier
// documentation; the rest cover the root prefix and segment boundaries.
func TestReplacePrefix(t *testing.T) {
	cases := []struct{ path, prefix, repl, want string }{
		{"/foo/bar", "/foo", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo", "/xyz/", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz/", "/xyz/bar"},
		{"/foo", "/foo", "/xyz", "/xyz"},
		{"/foo/", "/foo", "/xyz", "/xyz/"},
		{"/foo/bar", "/foo", "", "/bar"},
		{"/foo/", "/foo", "", "/"},
		{"/foo", "/foo", "", "/"},
		{"/foo/", "/foo", "/", "/"},
		{"/foo", "/foo", "/", "/"},
		{"/foo/bar", "", "/xyz", "/xyz/foo/bar"},
		{"/", "", "/xyz", "/xyz/"},
		{"/foo/bar", "", "/", "/foo/bar"},
		{"/prefix/one/two", "/prefix/one", "/one", "/one/two"},
		{"/strip-prefix/three", "/strip-prefix", "/", "/three"},
		{"/strip-prefix", "/strip-prefix", "/", "/"},
		{"/foo//bar", "/foo", "/xyz", "/xyz//bar"},
		// Not selected by the prefix at a segment boundary: left alone.
		{"/foobar", "/foo", "/xyz", "/foobar"},
		{"/other", "/foo", "/xyz", "/other"},
	}
	for _, c := range cases {
		if got := ReplacePrefix(c.path, c.prefix, c.repl); got != c.want {
			t.Errorf("ReplacePrefix(%q, %q, %q) = %q, want %q", c.path, c.prefix, c.repl, got, c.want)
		}
	}
}

func TestApplyFullPath(t *testing.T) {
	full := &config.PathModifier{Type: config.ReplaceFullPath, ReplaceFullPath: "/one"}
	if got := Apply(full, "/full/one/two", "/full/one"); got != "/one" {
		t.Errorf("ReplaceFullPath gave %q, want /one", got)
	}
	empty := &config.PathModifier{Type: config.ReplaceFullPath}
	if got := Apply(empty, "/a/b", ""); got != "/" {
		t.Errorf("empty ReplaceFullPath gave %q, want /", got)
	}
}

func TestValidate(t *testing.T) {
	good := []*config.PathModifier{
		nil,
		{Type: config.ReplaceFullPath, ReplaceFullPath: "/x"},
		{Type: config.ReplaceFullPath},
		{Type: config.ReplacePrefixMatch, ReplacePrefixMatch: "/"},
		{Type: config.ReplacePrefixMatch},
	}
	for _, m := range good {
		if err := Validate(m); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", m, err)
		}
	}
	bad := []struct {
		m    *config.PathModifier
		want string
	}{
		{&config.PathModifier{}, "type is missing"},
		{&config.PathModifier{Type: "Regex"}, `type "Regex" is not supported`},
		{&config.PathModifier{Type: config.ReplaceFullPath, ReplaceFullPath: "x"}, "must start with /"},
		{&config.PathModifier{Type: config.ReplacePrefixMatch, ReplacePrefixMatch: "x"}, "must start with /"},
		{&config.PathModifier{Type: config.ReplacePrefixMatch, ReplaceFullPath: "/x"}, "replaceFullPath must not be set"},
		{&config.PathModifier{Type: config.ReplaceFullPath, ReplacePrefixMatch: "/x"}, "replacePrefixMatch must not be set"},
		{&config.PathModifier{Type: config.ReplaceFullPath, ReplaceFullPath: "/a b"}, "must not contain"},
		{&config.PathModifier{Type: config.ReplaceFullPath, ReplaceFullPath: "/a?b"}, "must not contain"},
		{&config.PathModifier{Type: config.ReplacePrefixMatch, ReplacePrefixMatch: "/a\r\n"}, "must not contain"},
	}
	for _, c := range bad {
		err := Validate(c.m)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", c.m, err, c.want)
		}
	}
}

func TestRewriteKeepsEscapedForm(t *testing.T) {
	prefix := &config.PathModifier{Type: config.ReplacePrefixMatch, ReplacePrefixMatch: "/v2"}
	u, err := url.Parse("/api/a%2Fb/c?q=1")
	if err != nil {
		t.Fatal(err)
	}
	Rewrite(prefix, u, "/api")
	if u.Path != "/v2/a/b/c" || u.EscapedPath() != "/v2/a%2Fb/c" || u.RawQuery != "q=1" {
		t.Errorf("got Path %q, escaped %q, query %q", u.Path, u.EscapedPath(), u.RawQuery)
	}
	if u.RequestURI() != "/v2/a%2Fb/c?q=1" {
		t.Errorf("request URI %q", u.RequestURI())
	}
}

func TestRewriteDropsStaleEscapedForm(t *testing.T) {
	full := &config.PathModifier{Type: config.ReplaceFullPath, ReplaceFullPath: "/new"}
	u, _ := url.Parse("/old%2Fpath")
	Rewrite(full, u, "")
	if u.Path != "/new" || u.RawPath != "" || u.EscapedPath() != "/new" {
		t.Errorf("got Path %q RawPath %q", u.Path, u.RawPath)
	}
	// A replacement with a character that must be escaped is escaped by net/url.
	spaced := &config.PathModifier{Type: config.ReplacePrefixMatch, ReplacePrefixMatch: "/x%"}
	u, _ = url.Parse("/api/a%2Fb")
	Rewrite(spaced, u, "/api")
	if u.Path != "/x%/a/b" || u.EscapedPath() != "/x%25/a/b" {
		t.Errorf("got Path %q escaped %q", u.Path, u.EscapedPath())
	}
}
