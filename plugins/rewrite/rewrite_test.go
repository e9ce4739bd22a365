package rewrite

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
	"github.com/switchyard-dev/switchyard/plugins"
)

// seen is what the handler after the filter received.
type seen struct {
	host, path, rawQuery, requestURI string
}

func rewriteHandler(t *testing.T, rw *config.URLRewrite, got *seen) http.Handler {
	t.Helper()
	h, err := plugins.Chain(plugins.Context{}, []config.Filter{{Type: config.FilterURLRewrite, URLRewrite: rw}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			*got = seen{r.Host, r.URL.Path, r.URL.RawQuery, r.URL.RequestURI()}
		}))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func prefixRewrite(repl string) *config.URLRewrite {
	return &config.URLRewrite{Path: &config.PathModifier{Type: config.ReplacePrefixMatch, ReplacePrefixMatch: repl}}
}

// The path cases follow the Gateway API's rewrite-path conformance test.
func TestRewrite(t *testing.T) {
	cases := []struct {
		name, target, matched string
		rw                    *config.URLRewrite
		want                  seen
	}{
		{"prefix", "/prefix/one/two", "/prefix/one", prefixRewrite("/one"),
			seen{"gw.example", "/one/two", "", "/one/two"}},
		{"strip prefix", "/strip-prefix/three", "/strip-prefix", prefixRewrite("/"),
			seen{"gw.example", "/three", "", "/three"}},
		{"strip whole path", "/strip-prefix", "/strip-prefix", prefixRewrite("/"),
			seen{"gw.example", "/", "", "/"}},
		{"full path", "/full/one/two?a=1", "/full/one",
			&config.URLRewrite{Path: &config.PathModifier{Type: config.ReplaceFullPath, ReplaceFullPath: "/one"}},
			seen{"gw.example", "/one", "a=1", "/one?a=1"}},
		{"hostname only", "/keep/path?q=x", "",
			&config.URLRewrite{Hostname: "one.example.org"},
			seen{"one.example.org", "/keep/path", "q=x", "/keep/path?q=x"}},
		{"hostname and prefix", "/prefix/x?y=1", "/prefix",
			&config.URLRewrite{Hostname: "b.example", Path: &config.PathModifier{Type: config.ReplacePrefixMatch, ReplacePrefixMatch: "/new"}},
			seen{"b.example", "/new/x", "y=1", "/new/x?y=1"}},
		{"escaped slash kept", "/api/a%2Fb", "/api", prefixRewrite("/v2"),
			seen{"gw.example", "/v2/a/b", "", "/v2/a%2Fb"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got seen
			r := httptest.NewRequest(http.MethodGet, "http://gw.example"+c.target, nil)
			r = reqctx.With(r, &reqctx.Info{MatchedPrefix: c.matched})
			rewriteHandler(t, c.rw, &got).ServeHTTP(httptest.NewRecorder(), r)
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

// Over a real connection the backend must receive the rewritten request line and Host.
func TestRewriteOverRealConnection(t *testing.T) {
	var gotHost, gotURI string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost, gotURI = r.Host, r.RequestURI
	}))
	defer backend.Close()
	forward := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, backend.URL+r.URL.RequestURI(), nil)
		out.Host = r.Host
		res, err := backend.Client().Do(out)
		if err != nil {
			t.Error(err)
			return
		}
		res.Body.Close()
	})
	h, err := plugins.Chain(plugins.Context{}, []config.Filter{{Type: config.FilterURLRewrite,
		URLRewrite: &config.URLRewrite{Hostname: "internal.example", Path: &config.PathModifier{
			Type: config.ReplacePrefixMatch, ReplacePrefixMatch: "/v2"}}}}, forward)
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, reqctx.With(r, &reqctx.Info{MatchedPrefix: "/v1"}))
	}))
	defer gw.Close()
	res, err := gw.Client().Get(gw.URL + "/v1/items/a%20b?page=2")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if gotHost != "internal.example" || gotURI != "/v2/items/a%20b?page=2" {
		t.Errorf("backend saw Host %q and URI %q", gotHost, gotURI)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		rw   *config.URLRewrite
		want string
	}{
		{nil, "settings are missing"},
		{&config.URLRewrite{Hostname: "bad host"}, "not a valid Host header value"},
		{&config.URLRewrite{Path: &config.PathModifier{Type: "Regex"}}, "not supported"},
		{&config.URLRewrite{Path: &config.PathModifier{Type: config.ReplacePrefixMatch, ReplacePrefixMatch: "no-slash"}}, "must start with /"},
	}
	p, _ := plugins.Lookup(config.FilterURLRewrite)
	for _, c := range cases {
		f := config.Filter{Type: config.FilterURLRewrite, URLRewrite: c.rw}
		if err := p.Validate(&f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", c.rw, err, c.want)
		}
		if _, err := p.Provision(plugins.Context{}, &f); err == nil {
			t.Errorf("Provision(%+v) accepted invalid settings", c.rw)
		}
	}
}
