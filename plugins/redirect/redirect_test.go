package redirect

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
	"github.com/switchyard-dev/switchyard/plugins"
)

// redirectHandler provisions a redirect whose next handler fails the test if reached.
func redirectHandler(t testing.TB, rd *config.Redirect) http.Handler {
	t.Helper()
	h, err := plugins.Chain(plugins.Context{}, []config.Filter{{Type: config.FilterRequestRedirect, RequestRedirect: rd}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.Error("a redirect must not forward the request")
		}))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type redirectCase struct {
	name     string
	rd       config.Redirect
	target   string // request URL
	info     reqctx.Info
	wantCode int
	want     string
}

func runCases(t *testing.T, cases []redirectCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, c.target, nil)
			if c.info.TLS {
				r.TLS = &tls.ConnectionState{}
			}
			info := c.info
			r = reqctx.With(r, &info)
			rec := httptest.NewRecorder()
			redirectHandler(t, &c.rd).ServeHTTP(rec, r)
			want := c.wantCode
			if want == 0 {
				want = http.StatusFound
			}
			if rec.Code != want {
				t.Errorf("status %d, want %d", rec.Code, want)
			}
			if got := rec.Header().Get("Location"); got != c.want {
				t.Errorf("Location %q, want %q", got, c.want)
			}
		})
	}
}

// The port and scheme cases follow the Gateway API's redirect-port-and-scheme
// conformance test, on listeners at 80, 8080 and 443.
func TestPortAndScheme(t *testing.T) {
	l80 := reqctx.Info{ListenerPort: 80}
	l8080 := reqctx.Info{ListenerPort: 8080}
	l443 := reqctx.Info{ListenerPort: 443, TLS: true}
	host := config.Redirect{Hostname: "example.org"}
	with := func(scheme string, port int) config.Redirect {
		rd := host
		rd.Scheme, rd.Port = scheme, port
		return rd
	}
	runCases(t, []redirectCase{
		{"80/nil/nil", with("", 0), "http://gw/p", l80, 0, "http://example.org/p"},
		{"80/nil/80", with("", 80), "http://gw/p", l80, 0, "http://example.org/p"},
		{"80/nil/8080", with("", 8080), "http://gw/p", l80, 0, "http://example.org:8080/p"},
		{"80/https/nil", with("https", 0), "http://gw/p", l80, 0, "https://example.org/p"},
		{"80/https/443", with("https", 443), "http://gw/p", l80, 0, "https://example.org/p"},
		{"80/https/8443", with("https", 8443), "http://gw/p", l80, 0, "https://example.org:8443/p"},
		{"8080/nil/nil", with("", 0), "http://gw:8080/p", l8080, 0, "http://example.org:8080/p"},
		{"8080/nil/80", with("", 80), "http://gw:8080/p", l8080, 0, "http://example.org/p"},
		{"8080/https/nil", with("https", 0), "http://gw:8080/p", l8080, 0, "https://example.org/p"},
		{"8080/http/nil", with("http", 0), "http://gw:8080/p", l8080, 0, "http://example.org/p"},
		{"443/nil/nil", with("", 0), "https://example.org/p", l443, 0, "https://example.org/p"},
		{"443/nil/443", with("", 443), "https://example.org/p", l443, 0, "https://example.org/p"},
		{"443/nil/8443", with("", 8443), "https://example.org/p", l443, 0, "https://example.org:8443/p"},
		{"443/http/nil", with("http", 0), "https://example.org/p", l443, 0, "http://example.org/p"},
		{"443/http/80", with("http", 80), "https://example.org/p", l443, 0, "http://example.org/p"},
		{"443/http/8080", with("http", 8080), "https://example.org/p", l443, 0, "http://example.org:8080/p"},
	})
}

func TestHostAndStatus(t *testing.T) {
	l80 := reqctx.Info{ListenerPort: 80}
	runCases(t, []redirectCase{
		{"keeps request host without port", config.Redirect{Scheme: "https"}, "http://shop.example:80/cart?x=1&y=2", l80, 0,
			"https://shop.example/cart?x=1&y=2"},
		{"hostname only", config.Redirect{Hostname: "example.org"}, "http://a.example/hostname-redirect", l80, 0,
			"http://example.org/hostname-redirect"},
		{"301", config.Redirect{StatusCode: 301, Hostname: "b"}, "http://a/", l80, 301, "http://b/"},
		{"303", config.Redirect{StatusCode: 303, Hostname: "b"}, "http://a/", l80, 303, "http://b/"},
		{"307", config.Redirect{StatusCode: 307, Hostname: "b"}, "http://a/", l80, 307, "http://b/"},
		{"308", config.Redirect{StatusCode: 308, Hostname: "b"}, "http://a/", l80, 308, "http://b/"},
		{"ipv6 request host", config.Redirect{Port: 8080}, "http://[::1]:80/x", l80, 0, "http://[::1]:8080/x"},
		{"ipv6 request host default port", config.Redirect{}, "http://[::1]/x", l80, 0, "http://[::1]/x"},
		{"escaped path kept", config.Redirect{Hostname: "b"}, "http://a/a%2Fb/c%20d", l80, 0, "http://b/a%2Fb/c%20d"},
		{"no listener info uses host port", config.Redirect{Hostname: "b"}, "http://a:9000/x", reqctx.Info{}, 0, "http://b:9000/x"},
	})
}

func TestPathModifiers(t *testing.T) {
	prefix := func(p, repl string) (config.Redirect, reqctx.Info) {
		return config.Redirect{Path: &config.PathModifier{Type: config.ReplacePrefixMatch, ReplacePrefixMatch: repl}},
			reqctx.Info{ListenerPort: 80, MatchedPrefix: p}
	}
	full := config.Redirect{Path: &config.PathModifier{Type: config.ReplaceFullPath, ReplaceFullPath: "/full-path-replacement"}}
	rd1, i1 := prefix("/original-prefix", "/replacement-prefix")
	rd2, i2 := prefix("/foo", "/")
	rd3, i3 := prefix("/foo", "/bar")
	runCases(t, []redirectCase{
		{"full path", full, "http://a/full/path/original?q=1", reqctx.Info{ListenerPort: 80}, 0, "http://a/full-path-replacement?q=1"},
		{"prefix", rd1, "http://a/original-prefix/lemon", i1, 0, "http://a/replacement-prefix/lemon"},
		{"prefix exact", rd1, "http://a/original-prefix", i1, 0, "http://a/replacement-prefix"},
		{"strip to root", rd2, "http://a/foo/x", i2, 0, "http://a/x"},
		{"strip whole", rd2, "http://a/foo", i2, 0, "http://a/"},
		{"strip keeps slash", rd2, "http://a/foo/", i2, 0, "http://a/"},
		{"replace keeps query", rd3, "http://a/foo/x?k=v", i3, 0, "http://a/bar/x?k=v"},
		{"replace keeps trailing slash", rd3, "http://a/foo/", i3, 0, "http://a/bar/"},
		{"replace keeps escaping", rd3, "http://a/foo/a%2Fb", i3, 0, "http://a/bar/a%2Fb"},
	})
}

// Over a real connection, with the port the listener really has, as the data plane
// would record it.
func TestRedirectOverRealConnection(t *testing.T) {
	var port int
	h := redirectHandler(t, &config.Redirect{Path: &config.PathModifier{Type: config.ReplacePrefixMatch, ReplacePrefixMatch: "/new"}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, reqctx.With(r, &reqctx.Info{ListenerPort: port, MatchedPrefix: "/old"}))
	}))
	defer srv.Close()
	_, portText, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ = strconv.Atoi(portText)

	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/old/page?id=7", nil)
	req.Host = "site.example:" + portText
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	want := "http://site.example:" + portText + "/new/page?id=7"
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != want {
		t.Errorf("got %d %q, want 302 %q", res.StatusCode, res.Header.Get("Location"), want)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		rd   *config.Redirect
		want string
	}{
		{nil, "settings are missing"},
		{&config.Redirect{StatusCode: 200}, "status code 200 is not one of"},
		{&config.Redirect{StatusCode: 304}, "status code 304 is not one of"},
		{&config.Redirect{Scheme: "ftp"}, `scheme "ftp" is not http or https`},
		{&config.Redirect{Port: 70000}, "port 70000 is out of range"},
		{&config.Redirect{Port: -1}, "port -1 is out of range"},
		{&config.Redirect{Hostname: "evil.example/path"}, "is not a valid host name"},
		{&config.Redirect{Hostname: "a.example:8080"}, "is not a valid host name"},
		{&config.Redirect{Path: &config.PathModifier{Type: "Regex"}}, "not supported"},
		{&config.Redirect{Path: &config.PathModifier{Type: config.ReplacePrefixMatch, ReplaceFullPath: "/x"}}, "must not be set"},
	}
	p, _ := plugins.Lookup(config.FilterRequestRedirect)
	for _, c := range cases {
		f := config.Filter{Type: config.FilterRequestRedirect, RequestRedirect: c.rd}
		err := p.Validate(&f)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", c.rd, err, c.want)
		}
		if _, err := p.Provision(plugins.Context{}, &f); err == nil {
			t.Errorf("Provision(%+v) accepted invalid settings", c.rd)
		}
	}
	for _, ok := range []*config.Redirect{{}, {Hostname: "2001:db8::1"}, {Hostname: "a-b.example", Port: 1, StatusCode: 308}} {
		if err := p.Validate(&config.Filter{Type: config.FilterRequestRedirect, RequestRedirect: ok}); err != nil {
			t.Errorf("Validate(%+v) = %v", ok, err)
		}
	}
}

func BenchmarkRedirect(b *testing.B) {
	h := redirectHandler(b, &config.Redirect{Scheme: "https", Path: &config.PathModifier{
		Type: config.ReplacePrefixMatch, ReplacePrefixMatch: "/v2"}})
	r := httptest.NewRequest(http.MethodGet, "http://shop.example/v1/items?page=2", nil)
	r = reqctx.With(r, &reqctx.Info{ListenerPort: 80, MatchedPrefix: "/v1"})
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// discardWriter keeps the headers and nothing else, so the benchmark measures the
// filter rather than a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

func TestSplitHost(t *testing.T) {
	cases := []struct{ in, host, port string }{
		{"example.org", "example.org", ""},
		{"example.org:8080", "example.org", "8080"},
		{"[::1]", "::1", ""},
		{"[::1]:443", "::1", "443"},
		{"::1", "::1", ""},
		{"", "", ""},
	}
	for _, c := range cases {
		if h, p := splitHost(c.in); h != c.host || p != c.port {
			t.Errorf("splitHost(%q) = %q, %q; want %q, %q", c.in, h, p, c.host, c.port)
		}
	}
}
