package headers

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/plugins"
)

// requestChain provisions a RequestHeaderModifier in front of a handler that records
// the request it receives.
func requestChain(t testing.TB, m *config.HeaderModifier) (http.Handler, *http.Request) {
	t.Helper()
	seen := new(http.Request)
	final := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { *seen = *r })
	h, err := plugins.Chain(plugins.Context{}, []config.Filter{{
		Type: config.FilterRequestHeaderModifier, RequestHeaderModifier: m,
	}}, final)
	if err != nil {
		t.Fatal(err)
	}
	return h, seen
}

// conformanceModifier mirrors the /multiple rule of the Gateway API's
// request-header-modifier conformance test, with names in mixed case.
var conformanceModifier = &config.HeaderModifier{
	Set: []config.Header{{Name: "X-Header-Set-1", Value: "header-set-1"}, {Name: "x-header-set-2", Value: "header-set-2"}},
	Add: []config.Header{
		{Name: "X-Header-Add-1", Value: "header-add-1"},
		{Name: "X-HEADER-ADD-2", Value: "header-add-2"},
		{Name: "X-Header-Add-3", Value: "header-add-3"},
	},
	Remove: []string{"X-Header-Remove-1", "x-header-remove-2"},
}

func TestRequestModifierEdits(t *testing.T) {
	h, seen := requestChain(t, conformanceModifier)
	r := httptest.NewRequest(http.MethodGet, "/multiple", nil)
	r.Header.Set("X-Header-Set-2", "set-val-2")
	r.Header.Set("X-Header-Add-2", "add-val-2")
	r.Header.Set("X-Header-Remove-2", "remove-val-2")
	r.Header.Set("Another-Header", "another-header-val")
	h.ServeHTTP(httptest.NewRecorder(), r)

	want := map[string][]string{
		"X-Header-Set-1": {"header-set-1"},
		"X-Header-Set-2": {"header-set-2"},
		"X-Header-Add-1": {"header-add-1"},
		"X-Header-Add-2": {"add-val-2,header-add-2"},
		"X-Header-Add-3": {"header-add-3"},
		"Another-Header": {"another-header-val"},
	}
	for name, values := range want {
		if got := seen.Header[name]; !reflect.DeepEqual(got, values) {
			t.Errorf("%s = %q, want %q", name, got, values)
		}
	}
	for _, name := range []string{"X-Header-Remove-1", "X-Header-Remove-2"} {
		if _, ok := seen.Header[name]; ok {
			t.Errorf("%s should have been removed", name)
		}
	}
}

func TestRequestModifierOrderSetAddRemove(t *testing.T) {
	// Set, then Add, then Remove, on the same name: the add appends to the set value,
	// and a remove of another spelling of a set name wins.
	h, seen := requestChain(t, &config.HeaderModifier{
		Set:    []config.Header{{Name: "x-a", Value: "set"}, {Name: "X-B", Value: "gone"}},
		Add:    []config.Header{{Name: "X-A", Value: "added"}},
		Remove: []string{"x-b"},
	})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header["X-A"] = []string{"one", "two"}
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got := seen.Header["X-A"]; !reflect.DeepEqual(got, []string{"set,added"}) {
		t.Errorf("X-A = %q", got)
	}
	if _, ok := seen.Header["X-B"]; ok {
		t.Error("X-B should have been removed")
	}
}

func TestAddJoinsExistingValues(t *testing.T) {
	if got := joinValue([]string{"one", "two"}, "three"); got != "one,two,three" {
		t.Errorf("got %q", got)
	}
	if got := joinValue(nil, "only"); got != "only" {
		t.Errorf("got %q", got)
	}
}

// Values handed out by one request must not be changed through another header's
// slice: each is cut with capacity 1 so an append copies.
func TestSetValuesAreIndependent(t *testing.T) {
	h, seen := requestChain(t, &config.HeaderModifier{
		Set: []config.Header{{Name: "X-A", Value: "a"}, {Name: "X-B", Value: "b"}},
	})
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	seen.Header.Add("X-A", "more")
	if got := seen.Header["X-B"]; !reflect.DeepEqual(got, []string{"b"}) {
		t.Errorf("X-B = %q after appending to X-A", got)
	}
}

func TestSetHostChangesRequestHost(t *testing.T) {
	h, seen := requestChain(t, &config.HeaderModifier{
		Set:    []config.Header{{Name: "host", Value: "internal.example"}},
		Add:    []config.Header{{Name: "Host", Value: "ignored.example"}},
		Remove: []string{"HOST"},
	})
	r := httptest.NewRequest(http.MethodGet, "http://public.example/x", nil)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if seen.Host != "internal.example" {
		t.Errorf("Host = %q, want internal.example", seen.Host)
	}
	if _, ok := seen.Header["Host"]; ok {
		t.Error("Host must not appear in Request.Header")
	}
}

func TestRequestModifierOverRealConnection(t *testing.T) {
	var gotHost, gotAdd string
	final := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost, gotAdd = r.Host, r.Header.Get("X-Header-Add")
	})
	h, err := plugins.Chain(plugins.Context{}, []config.Filter{{
		Type: config.FilterRequestHeaderModifier,
		RequestHeaderModifier: &config.HeaderModifier{
			Set: []config.Header{{Name: "Host", Value: "rewritten.example"}},
			Add: []config.Header{{Name: "x-header-add", Value: "add-appends-values"}},
		},
	}}, final)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/add", nil)
	req.Header.Set("X-Header-Add", "some-other-value")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if gotHost != "rewritten.example" || gotAdd != "some-other-value,add-appends-values" {
		t.Errorf("backend saw Host %q and X-Header-Add %q", gotHost, gotAdd)
	}
}

func TestValidateRejectsBadSettings(t *testing.T) {
	cases := []struct {
		name string
		m    *config.HeaderModifier
		want string
	}{
		{"missing", nil, "settings are missing"},
		{"empty set name", &config.HeaderModifier{Set: []config.Header{{Value: "v"}}}, "set[0]: header name is empty"},
		{"empty add name", &config.HeaderModifier{Add: []config.Header{{Name: "a", Value: "v"}, {Value: "v"}}}, "add[1]: header name is empty"},
		{"empty remove", &config.HeaderModifier{Remove: []string{""}}, "remove[0]: header name is empty"},
		{"bad name", &config.HeaderModifier{Set: []config.Header{{Name: "a b", Value: "v"}}}, "not a valid HTTP header name"},
		{"bad value", &config.HeaderModifier{Add: []config.Header{{Name: "a", Value: "x\r\ny: z"}}}, "not allowed in a header"},
	}
	for _, c := range cases {
		for _, typ := range []config.FilterType{config.FilterRequestHeaderModifier, config.FilterResponseHeaderModifier} {
			f := config.Filter{Type: typ, RequestHeaderModifier: c.m, ResponseHeaderModifier: c.m}
			p, _ := plugins.Lookup(typ)
			err := p.Validate(&f)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s/%s: got %v, want an error containing %q", typ, c.name, err, c.want)
			}
			if _, err := p.Provision(plugins.Context{}, &f); err == nil {
				t.Errorf("%s/%s: Provision accepted invalid settings", typ, c.name)
			}
		}
	}
}

func BenchmarkRequestHeaderModifier(b *testing.B) {
	h, _ := requestChain(b, conformanceModifier)
	r := httptest.NewRequest(http.MethodGet, "/multiple", nil)
	w := httptest.NewRecorder()
	// The incoming values are built once; the filter replaces rather than mutates
	// them, so the loop measures only the filter's own allocations.
	addValues, removeValues := []string{"add-val-2"}, []string{"x"}
	b.ReportAllocs()
	for b.Loop() {
		clear(r.Header)
		r.Header["X-Header-Add-2"] = addValues
		r.Header["X-Header-Remove-2"] = removeValues
		h.ServeHTTP(w, r)
	}
}
