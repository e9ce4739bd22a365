package cors

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/plugins"
)

// corsHandler provisions the filter in front of a backend that sets a few response
// headers and counts the requests that reach it.
func corsHandler(t *testing.T, c *config.CORS, reached *int) http.Handler {
	t.Helper()
	h, err := plugins.Chain(plugins.Context{}, []config.Filter{{Type: config.FilterCORS, CORS: c}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			*reached++
			w.Header().Set("X-Header-3", "three")
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Access-Control-Allow-Origin", "https://backend-says.example")
			_, _ = w.Write([]byte("ok"))
		}))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func preflight(origin, method, headers string) *http.Request {
	r := httptest.NewRequest(http.MethodOptions, "/cors", nil)
	r.Header.Set("Origin", origin)
	r.Header.Set("Access-Control-Request-Method", method)
	if headers != "" {
		r.Header.Set("Access-Control-Request-Headers", headers)
	}
	return r
}

func actual(method, origin string) *http.Request {
	r := httptest.NewRequest(method, "/cors", nil)
	r.Header.Set("Origin", origin)
	return r
}

// listPolicy follows the first route of the Gateway API's CORS conformance test.
var listPolicy = &config.CORS{
	AllowOrigins:     []string{"https://www.foo.com", "https://*.bar.com"},
	AllowMethods:     []string{"GET", "OPTIONS"},
	AllowHeaders:     []string{"x-header-1", "x-header-2"},
	ExposeHeaders:    []string{"x-header-3", "x-header-4"},
	MaxAge:           3600,
	AllowCredentials: true,
}

func expectHeaders(t *testing.T, h http.Header, want map[string]string) {
	t.Helper()
	for name, value := range want {
		got, present := h[http.CanonicalHeaderKey(name)]
		switch {
		case value == "" && present:
			t.Errorf("%s = %q, want it absent", name, got)
		case value != "" && strings.Join(got, ",") != value:
			t.Errorf("%s = %q, want %q", name, got, value)
		}
	}
}

func TestPreflightAllowed(t *testing.T) {
	for _, origin := range []string{"https://www.foo.com", "https://www.bar.com", "https://xpto.www.bar.com"} {
		reached := 0
		rec := httptest.NewRecorder()
		corsHandler(t, listPolicy, &reached).ServeHTTP(rec, preflight(origin, "GET", "x-header-1, x-header-2"))
		if rec.Code != http.StatusOK || reached != 0 {
			t.Errorf("%s: status %d, backend reached %d times", origin, rec.Code, reached)
		}
		expectHeaders(t, rec.Header(), map[string]string{
			"Access-Control-Allow-Origin":      origin,
			"Access-Control-Allow-Methods":     "GET, OPTIONS",
			"Access-Control-Allow-Headers":     "x-header-1, x-header-2",
			"Access-Control-Expose-Headers":    "x-header-3, x-header-4",
			"Access-Control-Max-Age":           "3600",
			"Access-Control-Allow-Credentials": "true",
			"Vary":                             "Origin",
		})
	}
}

func TestPreflightDenied(t *testing.T) {
	for _, origin := range []string{"https://foobar.com", "http://www.foo.com", "https://www.foo.com:8443", "https://bar.com", "null"} {
		reached := 0
		rec := httptest.NewRecorder()
		corsHandler(t, listPolicy, &reached).ServeHTTP(rec, preflight(origin, "GET", ""))
		if rec.Code != http.StatusOK || reached != 0 {
			t.Errorf("%s: status %d, backend reached %d times", origin, rec.Code, reached)
		}
		expectHeaders(t, rec.Header(), map[string]string{
			"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": "",
			"Access-Control-Allow-Credentials": "", "Access-Control-Max-Age": "",
		})
	}
}

func TestActualRequest(t *testing.T) {
	reached := 0
	h := corsHandler(t, listPolicy, &reached)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, actual(http.MethodGet, "https://www.bar.com"))
	if rec.Code != http.StatusOK || reached != 1 || rec.Body.String() != "ok" {
		t.Fatalf("status %d, reached %d, body %q", rec.Code, reached, rec.Body.String())
	}
	expectHeaders(t, rec.Header(), map[string]string{
		"Access-Control-Allow-Origin":      "https://www.bar.com",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Expose-Headers":    "x-header-3, x-header-4",
		"Vary":                             "Origin",
		"Access-Control-Max-Age":           "",
	})

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, actual(http.MethodGet, "https://foobar.com"))
	if reached != 2 {
		t.Fatal("a request from a denied origin must still be served")
	}
	expectHeaders(t, rec.Header(), map[string]string{
		"Access-Control-Allow-Credentials": "",
		"Access-Control-Allow-Origin":      "https://backend-says.example",
		"Vary":                             "Origin",
	})

	// No Origin: not a CORS request, left alone.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodOptions, "/cors", nil))
	if reached != 3 || rec.Header().Get("Vary") != "" {
		t.Errorf("a request without Origin was changed: reached %d, headers %v", reached, rec.Header())
	}
}

// With "*" lists and credentials, nothing may be answered with a literal "*": the
// request's own origin, method and headers are echoed.
func TestWildcardsWithCredentials(t *testing.T) {
	c := &config.CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"},
		ExposeHeaders: []string{"*"}, AllowCredentials: true}
	reached := 0
	h := corsHandler(t, c, &reached)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, preflight("https://other.foo.com", "PUT", "x-header-1, x-header-2"))
	expectHeaders(t, rec.Header(), map[string]string{
		"Access-Control-Allow-Origin":      "https://other.foo.com",
		"Access-Control-Allow-Methods":     "PUT",
		"Access-Control-Allow-Headers":     "x-header-1, x-header-2",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Max-Age":           "5",
		"Access-Control-Expose-Headers":    "",
	})

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, preflight("https://other.foo.com", "PUT", ""))
	expectHeaders(t, rec.Header(), map[string]string{"Access-Control-Allow-Headers": ""})

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, actual(http.MethodGet, "https://other.foo.com"))
	expectHeaders(t, rec.Header(), map[string]string{
		"Access-Control-Allow-Origin":   "https://other.foo.com",
		"Access-Control-Expose-Headers": "Content-Type, X-Header-3",
	})
}

func TestWildcardsWithoutCredentials(t *testing.T) {
	c := &config.CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"GET", "*"}, ExposeHeaders: []string{"*"}}
	reached := 0
	h := corsHandler(t, c, &reached)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, preflight("https://foobar.com:12345", "PUT", "x-a"))
	expectHeaders(t, rec.Header(), map[string]string{
		"Access-Control-Allow-Origin":      "https://foobar.com:12345",
		"Access-Control-Allow-Methods":     "PUT",
		"Access-Control-Allow-Headers":     "",
		"Access-Control-Allow-Credentials": "",
		"Access-Control-Expose-Headers":    "*",
	})
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, actual(http.MethodPut, "https://foobar.com:12345"))
	expectHeaders(t, rec.Header(), map[string]string{
		"Access-Control-Allow-Origin":      "https://foobar.com:12345",
		"Access-Control-Allow-Credentials": "",
		"Access-Control-Expose-Headers":    "*",
	})
}

func TestVaryIsNotDuplicated(t *testing.T) {
	h := http.Header{"Vary": {"Accept-Encoding, origin"}}
	addVaryOrigin(h)
	if got := h.Values("Vary"); len(got) != 1 {
		t.Errorf("Vary = %q", got)
	}
	h = http.Header{"Vary": {"Accept-Encoding"}}
	addVaryOrigin(h)
	if got := h.Values("Vary"); len(got) != 2 || got[1] != "Origin" {
		t.Errorf("Vary = %q", got)
	}
}

func TestOriginPatterns(t *testing.T) {
	cases := []struct {
		pattern, origin string
		want            bool
	}{
		{"https://www.foo.com", "https://www.foo.com", true},
		{"https://www.foo.com", "https://www.foo.com:443", true},
		{"https://www.foo.com:443", "https://www.foo.com", true},
		{"https://www.foo.com", "http://www.foo.com", false},
		{"https://www.foo.com", "https://WWW.FOO.COM", true},
		{"http://localhost:3000", "http://localhost:3000", true},
		{"http://localhost:3000", "http://localhost:3001", false},
		{"https://*.bar.com", "https://a.b.bar.com", true},
		{"https://*.bar.com", "https://bar.com", false},
		{"https://*.bar.com", "https://evilbar.com", false},
		{"https://*", "https://anything.example", true},
		{"https://*", "http://anything.example", false},
		{"*", "http://x.example:1", true},
		{"http://[::1]:8080", "http://[::1]:8080", true},
	}
	for _, c := range cases {
		pat, err := parseOrigin(c.pattern)
		if err != nil {
			t.Fatalf("parseOrigin(%q): %v", c.pattern, err)
		}
		p := &policy{origins: []originPattern{pat}}
		if got := p.allows(c.origin); got != c.want {
			t.Errorf("%q allows %q = %v, want %v", c.pattern, c.origin, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		c    *config.CORS
		want string
	}{
		{nil, "settings are missing"},
		{&config.CORS{AllowOrigins: []string{"www.foo.com"}}, "allowOrigins[0]"},
		{&config.CORS{AllowOrigins: []string{"ftp://a"}}, "not of the form"},
		{&config.CORS{AllowOrigins: []string{"https://a/path"}}, "must not have a path"},
		{&config.CORS{AllowOrigins: []string{"https://a:0"}}, "invalid port"},
		{&config.CORS{AllowOrigins: []string{"https://a.*.com"}}, "leftmost label"},
		{&config.CORS{AllowMethods: []string{"GE T"}}, "allowMethods[0]"},
		{&config.CORS{AllowHeaders: []string{"ok", "bad header"}}, "allowHeaders[1]"},
		{&config.CORS{ExposeHeaders: []string{""}}, "exposeHeaders[0]"},
		{&config.CORS{MaxAge: -1}, "maxAge -1 is negative"},
	}
	p, _ := plugins.Lookup(config.FilterCORS)
	for _, c := range cases {
		f := config.Filter{Type: config.FilterCORS, CORS: c.c}
		if err := p.Validate(&f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", c.c, err, c.want)
		}
		if _, err := p.Provision(plugins.Context{}, &f); err == nil {
			t.Errorf("Provision(%+v) accepted invalid settings", c.c)
		}
	}
}

// Over a real connection, a preflight is answered by the gateway alone.
func TestPreflightOverRealConnection(t *testing.T) {
	reached := 0
	srv := httptest.NewServer(corsHandler(t, listPolicy, &reached))
	defer srv.Close()
	req := preflight("https://www.foo.com", "GET", "")
	req.RequestURI = ""
	req.URL.Scheme, req.URL.Host = "http", srv.Listener.Addr().String()
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Access-Control-Allow-Origin") != "https://www.foo.com" || reached != 0 {
		t.Errorf("status %d, headers %v, backend reached %d", res.StatusCode, res.Header, reached)
	}
}
