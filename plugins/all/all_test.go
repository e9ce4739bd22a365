package all_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
	"github.com/switchyard-dev/switchyard/plugins"
	_ "github.com/switchyard-dev/switchyard/plugins/all"
)

func TestEveryFilterIsRegistered(t *testing.T) {
	want := []config.FilterType{
		config.FilterCORS,
		config.FilterRateLimit,
		config.FilterRequestHeaderModifier,
		config.FilterRequestMirror,
		config.FilterRequestRedirect,
		config.FilterResponseHeaderModifier,
		config.FilterURLRewrite,
	}
	if got := plugins.Types(); !reflect.DeepEqual(got, want) {
		t.Errorf("Types() = %v, want %v", got, want)
	}
}

// upstream sends mirrored requests to one real loopback server.
type upstream struct{ srv *httptest.Server }

func (u upstream) RoundTrip(ctx context.Context, _ string, req *http.Request) (*http.Response, error) {
	target, _ := url.Parse(u.srv.URL)
	out := req.Clone(ctx)
	out.URL.Scheme, out.URL.Host = target.Scheme, target.Host
	return u.srv.Client().Transport.RoundTrip(out)
}

// A rule's filters run in order around the backend: the mirror sees the request as
// the filters before it left it, the backend sees every request edit, and the client
// sees every response edit.
func TestChainOfFilters(t *testing.T) {
	mirrored := make(chan string, 4)
	shadow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mirrored <- r.Host + r.URL.RequestURI() + " " + r.Header.Get("X-Added")
	}))
	defer shadow.Close()

	var backendSaw string
	final := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		backendSaw = r.Host + r.URL.RequestURI() + " " + r.Header.Get("X-Added") + " " + string(body)
		w.Header().Set("Server", "backend")
		_, _ = io.WriteString(w, "from backend")
	})
	filters := []config.Filter{
		{Type: config.FilterCORS, CORS: &config.CORS{AllowOrigins: []string{"https://app.example"}}},
		{Type: config.FilterRequestHeaderModifier, RequestHeaderModifier: &config.HeaderModifier{
			Add: []config.Header{{Name: "x-added", Value: "yes"}}}},
		{Type: config.FilterRequestMirror, RequestMirror: &config.Mirror{Backend: "shadow"}},
		{Type: config.FilterURLRewrite, URLRewrite: &config.URLRewrite{Hostname: "backend.internal",
			Path: &config.PathModifier{Type: config.ReplacePrefixMatch, ReplacePrefixMatch: "/v2"}}},
		{Type: config.FilterResponseHeaderModifier, ResponseHeaderModifier: &config.HeaderModifier{
			Set: []config.Header{{Name: "X-Served-By", Value: "switchyard"}}, Remove: []string{"server"}}},
	}
	h, err := plugins.Chain(plugins.Context{Upstream: upstream{shadow}}, filters, final)
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, reqctx.With(r, &reqctx.Info{MatchedPrefix: "/api"}))
	}))
	defer gw.Close()

	req, _ := http.NewRequest(http.MethodPost, gw.URL+"/api/items?id=3", strings.NewReader("body"))
	req.Host = "public.example"
	req.Header.Set("Origin", "https://app.example")
	res, err := gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()

	if want := "backend.internal/v2/items?id=3 yes body"; backendSaw != want {
		t.Errorf("backend saw %q, want %q", backendSaw, want)
	}
	if string(body) != "from backend" || res.Header.Get("X-Served-By") != "switchyard" ||
		res.Header.Get("Server") != "" || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("client got %q with headers %v", body, res.Header)
	}
	select {
	case got := <-mirrored:
		if want := "public.example/api/items?id=3 yes"; got != want {
			t.Errorf("mirror saw %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Error("the mirror received nothing")
	}
}

// A redirect ends the chain: later filters and the backend never run.
func TestRedirectEndsChain(t *testing.T) {
	filters := []config.Filter{
		{Type: config.FilterResponseHeaderModifier, ResponseHeaderModifier: &config.HeaderModifier{
			Add: []config.Header{{Name: "X-Edge", Value: "1"}}}},
		{Type: config.FilterRequestRedirect, RequestRedirect: &config.Redirect{Scheme: "https", StatusCode: 301}},
		{Type: config.FilterRequestHeaderModifier, RequestHeaderModifier: &config.HeaderModifier{
			Set: []config.Header{{Name: "X-Never", Value: "1"}}}},
	}
	h, err := plugins.Chain(plugins.Context{}, filters, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("backend reached through a redirect")
	}))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "http://shop.example/cart?x=1", nil)
	h.ServeHTTP(rec, reqctx.With(r, &reqctx.Info{ListenerPort: 80}))
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "https://shop.example/cart?x=1" ||
		rec.Header().Get("X-Edge") != "1" {
		t.Errorf("got %d, headers %v", rec.Code, rec.Header())
	}
}

func TestChainRejectsInvalidFilter(t *testing.T) {
	_, err := plugins.Chain(plugins.Context{}, []config.Filter{
		{Type: config.FilterRequestRedirect, RequestRedirect: &config.Redirect{StatusCode: 418}},
	}, http.NotFoundHandler())
	if err == nil || !strings.Contains(err.Error(), "status code 418") {
		t.Errorf("Chain accepted an invalid redirect: %v", err)
	}
}
