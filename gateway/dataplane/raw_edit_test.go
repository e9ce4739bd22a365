package dataplane

import (
	"bytes"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// A RequestHeaderModifier can act on the wire form (plugins.RawRequestEditor): the
// raw path makes its edits as it writes the head it sends on. The tests here check
// that the backend gets the same fields either way, that filters after the modifier
// see its edits, and that a modifier of a field the raw path handles itself keeps
// its rule on the handler path.

// editModifier sets, adds to and removes fields, some of them in several ways at
// once, in mixed case.
var editModifier = &config.HeaderModifier{
	Set: []config.Header{{Name: "x-set", Value: "new"}, {Name: "X-Set-Then-Add", Value: "s"},
		{Name: "X-Gone-Anyway", Value: "x"}},
	Add: []config.Header{{Name: "X-Add", Value: "a1"}, {Name: "x-add", Value: "a2"}, {Name: "X-Set-Then-Add", Value: "t"},
		{Name: "Set-Cookie", Value: "c=3"}, {Name: "X-Absent", Value: "z"}},
	Remove: []string{"x-remove", "X-Gone-Anyway"},
}

// editedAnswer is an answer the raw path relays as it comes, its field in the
// backend's case showing that it did.
const editedAnswer = "HTTP/1.1 200 OK\r\nx-lower: v\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"

var editCases = []rawCase{
	{name: "edits", raw: true, response: editedAnswer,
		request: "GET /edit HTTP/1.1\r\nHost: app.example.com\r\nX-Set: old\r\nX-Set: older\r\nX-Add: 1\r\nX-Keep: k\r\n" +
			"x-add: 2\r\nX-Remove: r\r\nSet-Cookie: c=1\r\nSet-Cookie: c=2\r\nX-Gone-Anyway: y\r\nX-Set-Then-Add: old\r\n\r\n"},
	{name: "none of the fields", raw: true, response: editedAnswer,
		request: "GET /absent HTTP/1.1\r\nHost: app.example.com\r\nAccept: */*\r\n\r\n"},
	{name: "empty values", raw: true, response: editedAnswer,
		request: "GET /empty HTTP/1.1\r\nHost: app.example.com\r\nX-Add:\r\nX-Set:\r\nX-Remove:\r\n\r\n"},
}

// editSnapshot is snapshotFor's route with filters on its rule.
func editSnapshot(backendAddr string, filters ...config.Filter) *config.Snapshot {
	snap := snapshotFor("edits", backendAddr)
	snap.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Filters = filters
	return snap
}

// editEngines starts an engine of each forwarding mode on editSnapshot and returns
// their addresses.
func editEngines(t *testing.T, backendAddr string, filters ...config.Filter) map[ForwardingMode]string {
	t.Helper()
	addrs := map[ForwardingMode]string{}
	for _, mode := range []ForwardingMode{ForwardRaw, ForwardHandler} {
		e, addr := rawTestEngineOf(t, mode, backendAddr)
		mustApply(t, e, editSnapshot(backendAddr, filters...))
		addrs[mode] = addr
	}
	return addrs
}

func TestRawForwardingEditsRequestFieldsAsTheHandlerPath(t *testing.T) {
	backend := startScriptedBackend(t, editCases)
	rawServed := rawServedHere(t)
	modifier := config.Filter{Type: config.FilterRequestHeaderModifier, RequestHeaderModifier: editModifier}
	addrs := editEngines(t, backend.ln.Addr().String(), modifier)
	for _, c := range editCases {
		t.Run(c.name, func(t *testing.T) {
			path := requestPath(c.request)
			viaRaw := exchange(t, addrs[ForwardRaw], c.request)
			rawSent := backend.received(t, path)
			viaHandler := exchange(t, addrs[ForwardHandler], c.request)
			handlerSent := backend.received(t, path)
			got, want := parseRequest(t, rawSent), parseRequest(t, handlerSent)
			if !equalRequests(got, want) {
				t.Errorf("the backend received\n%q\non the raw path, and\n%q\non the handler path", rawSent, handlerSent)
			}
			if !equalResponses(parseResponses(t, viaRaw, http.MethodGet), parseResponses(t, viaHandler, http.MethodGet)) {
				t.Errorf("the client got\n%q\non the raw path, and\n%q\non the handler path", viaRaw, viaHandler)
			}
			if relayed := bytes.Contains(viaRaw, []byte("\r\nx-lower: v\r\n")); relayed != rawServed {
				t.Errorf("response relayed as is: %v, want %v:\n%q", relayed, rawServed, viaRaw)
			}
			checkEditsMade(t, c.name, got.header)
		})
	}
}

// checkEditsMade checks the fields the backend got under editModifier against the
// Gateway API's rules (set, then add, then remove; an add appends to the value),
// whichever path sent them.
func checkEditsMade(t *testing.T, name string, h http.Header) {
	t.Helper()
	want := map[string][]string{
		"X-Set": {"new"}, "X-Set-Then-Add": {"s,t"}, "X-Absent": {"z"},
		"X-Remove": nil, "X-Gone-Anyway": nil,
	}
	switch name {
	case "edits":
		want["X-Add"], want["X-Keep"], want["Set-Cookie"] = []string{"1,2,a1,a2"}, []string{"k"}, []string{"c=1", "c=2", "c=3"}
	case "none of the fields":
		want["X-Add"], want["Set-Cookie"] = []string{"a1,a2"}, []string{"c=3"}
	case "empty values":
		want["X-Add"] = []string{",a1,a2"}
	}
	for field, values := range want {
		if got := h[field]; !slices.Equal(got, values) {
			t.Errorf("%s: the backend got %s %q, want %q", name, field, got, values)
		}
	}
}

// TestRawForwardingDeclinesEditsOfItsOwnFields: a modifier of User-Agent (which an
// empty value takes out of the head) keeps its rule on the handler path, where the
// edit is made as before.
func TestRawForwardingDeclinesEditsOfItsOwnFields(t *testing.T) {
	backend := startScriptedBackend(t, editCases[:1])
	modifier := config.Filter{Type: config.FilterRequestHeaderModifier, RequestHeaderModifier: &config.HeaderModifier{
		Set: []config.Header{{Name: "user-agent", Value: "edited"}}}}
	e, addr := rawTestEngineOf(t, ForwardRaw, backend.ln.Addr().String())
	mustApply(t, e, editSnapshot(backend.ln.Addr().String(), modifier))
	got := exchange(t, addr, editCases[0].request)
	sent := parseRequest(t, backend.received(t, "/edit"))
	if bytes.Contains(got, []byte("\r\nx-lower: v\r\n")) {
		t.Errorf("the raw path served a rule that edits User-Agent:\n%q", got)
	}
	if ua := sent.header.Get("User-Agent"); ua != "edited" {
		t.Errorf("the backend got User-Agent %q, want edited", ua)
	}
}

// TestRawForwardingShowsEditsToLaterFilters keys a rate limit on a field the
// modifier sets: after the modifier, every client shares the set value's bucket,
// so a second request is refused whatever its own value; before it, each value has
// a bucket of its own.
func TestRawForwardingShowsEditsToLaterFilters(t *testing.T) {
	backend := startScriptedBackend(t, []rawCase{{request: "GET /t HTTP/1.1\r\n", response: editedAnswer}})
	tenants := backend.ln.Addr().String()
	rawServed := rawServedHere(t)
	modifier := config.Filter{Type: config.FilterRequestHeaderModifier, RequestHeaderModifier: &config.HeaderModifier{
		Set: []config.Header{{Name: "X-Tenant", Value: "shared"}}}}
	limit := config.Filter{Type: config.FilterRateLimit, RateLimit: &config.RateLimit{
		ID: "tenants", Mode: config.RateLimitLocal,
		Rules: []config.RateLimitRule{{Key: config.RateLimitKey{Type: config.KeyHeader, Name: "X-Tenant"}, Requests: 1,
			Per: config.Duration(24 * time.Hour)}},
	}}
	orders := []struct {
		name    string
		filters []config.Filter
		want    []int
	}{
		{"modifier first", []config.Filter{modifier, limit}, []int{http.StatusOK, http.StatusTooManyRequests}},
		{"limit first", []config.Filter{limit, modifier}, []int{http.StatusOK, http.StatusOK}},
	}
	for _, order := range orders {
		for _, mode := range []ForwardingMode{ForwardRaw, ForwardHandler} {
			t.Run(order.name+"/"+string(mode), func(t *testing.T) {
				e, addr := rawTestEngineOf(t, mode, tenants)
				mustApply(t, e, editSnapshot(tenants, order.filters...))
				var got []int
				for i, tenant := range []string{"a", "b"} {
					req := "GET /t HTTP/1.1\r\nHost: app.example.com\r\nX-Tenant: " + tenant + "\r\n\r\n"
					wire := exchange(t, addr, req)
					got = append(got, parseResponses(t, wire, http.MethodGet)[0].status)
					relayed := bytes.Contains(wire, []byte("\r\nx-lower: v\r\n"))
					if want := mode == ForwardRaw && rawServed; i == 0 && relayed != want {
						t.Errorf("first answer relayed as is: %v, want %v:\n%q", relayed, want, wire)
					}
				}
				if !slices.Equal(got, order.want) {
					t.Errorf("statuses %v, want %v", got, order.want)
				}
			})
		}
	}
}

// TestRawForwardingKeysOnHostAsTheHandlerPath: a rate limit keyed on a header
// named Host finds none on the handler path, whose header map leaves Host out, so
// every host shares one bucket; the raw path must count the same.
func TestRawForwardingKeysOnHostAsTheHandlerPath(t *testing.T) {
	backend := startScriptedBackend(t, []rawCase{{request: "GET /t HTTP/1.1\r\n", response: editedAnswer}})
	limit := config.Filter{Type: config.FilterRateLimit, RateLimit: &config.RateLimit{ID: "hosts", Mode: config.RateLimitLocal,
		Rules: []config.RateLimitRule{{Key: config.RateLimitKey{Type: config.KeyHeader, Name: "Host"}, Requests: 1,
			Per: config.Duration(24 * time.Hour)}}}}
	got := map[ForwardingMode][]int{}
	for mode, addr := range editEngines(t, backend.ln.Addr().String(), limit) {
		for _, host := range []string{"a.example.com", "b.example.com"} {
			wire := exchange(t, addr, "GET /t HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
			got[mode] = append(got[mode], parseResponses(t, wire, http.MethodGet)[0].status)
		}
	}
	want := []int{http.StatusOK, http.StatusTooManyRequests}
	if !slices.Equal(got[ForwardRaw], want) || !slices.Equal(got[ForwardHandler], want) {
		t.Errorf("statuses: raw %v, handler %v, want %v on both", got[ForwardRaw], got[ForwardHandler], want)
	}
}
