package dataplane

import (
	"bytes"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// A ResponseHeaderModifier can act on the wire form (plugins.RawResponseEditor): the
// raw path makes its edits as it writes a response's head, whether it relays the
// backend's answer as it comes, relays it through the rule's usual response path,
// or answers itself. The tests here compare what the client gets either way.

// responseModifier sets, adds to and removes fields of the answers, in mixed case.
var responseModifier = &config.HeaderModifier{
	Set:    []config.Header{{Name: "x-frame-options", Value: "DENY"}},
	Add:    []config.Header{{Name: "X-Add", Value: "gw"}, {Name: "set-cookie", Value: "gw=1"}, {Name: "Ratelimit-Limit", Value: "x"}},
	Remove: []string{"server", "X-Powered-By", "X-Content-Type-Options"},
}

// responseFields are a backend's fields the modifier edits, in the backend's case
// and spacing.
const responseFields = "x-lower: v\r\nserver: backend\r\nX-Powered-By: php\r\nset-cookie: a=1\r\nx-add: 1\r\nX-ADD:  2 \r\n"

var responseEditCases = []rawCase{
	{name: "relayed as it comes", raw: true, request: "GET /relayed HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\n" + responseFields + "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"},
	{name: "head", raw: true, request: "HEAD /head HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\n" + responseFields + "Content-Type: text/plain\r\nContent-Length: 20\r\n\r\n"},
	{name: "early hints left alone", raw: true, request: "GET /hints HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nServer: hints\r\n\r\n" +
			"HTTP/1.1 200 OK\r\n" + responseFields + "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"},
	{name: "chunked, through the response path", request: "GET /chunked HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\n" + responseFields + "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
}

func TestRawForwardingEditsResponseFieldsAsTheHandlerPath(t *testing.T) {
	backend := startScriptedBackend(t, responseEditCases)
	rawServed := rawServedHere(t)
	modifier := config.Filter{Type: config.FilterResponseHeaderModifier, ResponseHeaderModifier: responseModifier}
	addrs := editEngines(t, backend.ln.Addr().String(), modifier)
	for _, c := range responseEditCases {
		t.Run(c.name, func(t *testing.T) {
			method := strings.SplitN(c.request, " ", 2)[0]
			viaRaw := exchange(t, addrs[ForwardRaw], c.request)
			backend.received(t, requestPath(c.request))
			viaHandler := exchange(t, addrs[ForwardHandler], c.request)
			backend.received(t, requestPath(c.request))
			got, want := parseResponses(t, viaRaw, method), parseResponses(t, viaHandler, method)
			if !equalResponses(got, want) {
				t.Errorf("the client got\n%q\non the raw path, and\n%q\non the handler path", viaRaw, viaHandler)
			}
			if relayed := bytes.Contains(viaRaw, []byte("\r\nx-lower: v\r\n")); relayed != (c.raw && rawServed) {
				t.Errorf("response relayed as is: %v, want %v:\n%q", relayed, c.raw && rawServed, viaRaw)
			}
			final := got[len(got)-1].header
			checkResponseEdits(t, final, map[string][]string{"X-Add": {"1,2,gw"}, "Set-Cookie": {"a=1", "gw=1"}})
			if len(got) == 2 && got[0].header.Get("Server") != "hints" {
				t.Errorf("the early hints were edited: %v", got[0].header)
			}
		})
	}
}

// checkResponseEdits checks an answer's fields against responseModifier, whatever
// path sent them: want holds the fields whose values depend on the answer.
func checkResponseEdits(t *testing.T, h http.Header, want map[string][]string) {
	t.Helper()
	want["X-Frame-Options"] = []string{"DENY"}
	want["Server"], want["X-Powered-By"], want["X-Content-Type-Options"] = nil, nil, nil
	for field, values := range want {
		if got := h[field]; !slices.Equal(got, values) {
			t.Errorf("the client got %s %q, want %q", field, got, values)
		}
	}
}

// TestRawForwardingEditsTheGatewaysAnswers: the gateway's own error answer is
// edited, and so is a filter's refusal after the modifier, but not one before it,
// which the handler path writes around the modifier.
func TestRawForwardingEditsTheGatewaysAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	modifier := config.Filter{Type: config.FilterResponseHeaderModifier, ResponseHeaderModifier: responseModifier}
	limit := config.Filter{Type: config.FilterRateLimit, RateLimit: &config.RateLimit{
		ID: "one", Mode: config.RateLimitLocal,
		Rules: []config.RateLimitRule{{Key: config.RateLimitKey{Type: config.KeyRoute}, Requests: 1,
			Per: config.Duration(24 * time.Hour)}},
	}}
	for _, tc := range []struct {
		name    string
		filters []config.Filter
		// limitEdited is whether the refusal is edited.
		limitEdited bool
	}{
		{"modifier first", []config.Filter{modifier, limit}, true},
		{"limit first", []config.Filter{limit, modifier}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answers := map[ForwardingMode][]parsedResponse{}
			wires := map[ForwardingMode][]byte{}
			for mode, addr := range editEngines(t, refused, tc.filters...) {
				for _, path := range []string{"/down", "/refused"} {
					wire := exchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
					answers[mode] = append(answers[mode], parseResponses(t, wire, http.MethodGet)...)
					wires[mode] = append(wires[mode], wire...)
				}
			}
			if !equalResponses(answers[ForwardRaw], answers[ForwardHandler]) {
				t.Fatalf("the client got\n%q\non the raw path, and\n%q\non the handler path", wires[ForwardRaw], wires[ForwardHandler])
			}
			// The raw path writes its own answers with the filters' fields ahead
			// of its Content-Type, where the handler path's server sorts the
			// fields: that shows which path answered.
			if raw := wires[ForwardRaw]; rawServedHere(t) && !filterFieldsFirst(raw) {
				t.Errorf("the raw path did not answer itself:\n%q", raw)
			}
			if filterFieldsFirst(wires[ForwardHandler]) {
				t.Errorf("the handler path's answers are not sorted:\n%q", wires[ForwardHandler])
			}
			down, refusal := answers[ForwardRaw][0], answers[ForwardRaw][1]
			if down.status != http.StatusBadGateway || refusal.status != http.StatusTooManyRequests {
				t.Fatalf("statuses %d and %d, want 502 and 429", down.status, refusal.status)
			}
			checkResponseEdits(t, down.header, map[string][]string{"X-Add": {"gw"}, "Set-Cookie": {"gw=1"}, "Ratelimit-Limit": {"1,x"}})
			if edited := refusal.header.Get("X-Frame-Options") == "DENY"; edited != tc.limitEdited {
				t.Errorf("refusal edited: %v, want %v: %v", edited, tc.limitEdited, refusal.header)
			}
		})
	}
}

// filterFieldsFirst reports whether every answer in wire has the rate limit's
// Ratelimit-Remaining, which no edit moves, ahead of its Content-Type, as the raw
// path writes its own answers.
func filterFieldsFirst(wire []byte) bool {
	answers := bytes.Split(wire, []byte("HTTP/1.1 "))[1:]
	for _, answer := range answers {
		remaining, typ := bytes.Index(answer, []byte("\r\nRatelimit-Remaining: ")), bytes.Index(answer, []byte("\r\nContent-Type: "))
		if remaining < 0 || typ < 0 || remaining > typ {
			return false
		}
	}
	return len(answers) > 0
}

// TestRawForwardingDeclinesResponseEditsOfItsOwnFields: a modifier that removes
// Content-Type keeps its rule on the handler path, whose server then sniffs a type
// for the body, as the raw relay would not.
func TestRawForwardingDeclinesResponseEditsOfItsOwnFields(t *testing.T) {
	cases := responseEditCases[:1]
	backend := startScriptedBackend(t, cases)
	modifier := config.Filter{Type: config.FilterResponseHeaderModifier, ResponseHeaderModifier: &config.HeaderModifier{
		Remove: []string{"content-type"}}}
	e, addr := rawTestEngineOf(t, ForwardRaw, backend.ln.Addr().String())
	mustApply(t, e, editSnapshot(backend.ln.Addr().String(), modifier))
	wire := exchange(t, addr, cases[0].request)
	if bytes.Contains(wire, []byte("\r\nx-lower: v\r\n")) {
		t.Errorf("the raw path relayed an answer whose Content-Type the rule removes:\n%q", wire)
	}
	if got := parseResponses(t, wire, http.MethodGet)[0].header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q, want the sniffed text/plain; charset=utf-8", got)
	}
}

// TestClientGoneUnderAResponseModifierCountsAsGone: a client that leaves before the
// backend answers is counted as gone (499) on both paths, with a response header
// modifier as without one; the modifier's writer once sent an empty 200 for it on
// the handler path.
func TestClientGoneUnderAResponseModifierCountsAsGone(t *testing.T) {
	// The backend answers after the client has gone.
	backend, _ := countingBackend(t, func(int, http.ResponseWriter) { time.Sleep(time.Second) })
	modifier := config.Filter{Type: config.FilterResponseHeaderModifier, ResponseHeaderModifier: responseModifier}
	for _, mode := range []ForwardingMode{ForwardRaw, ForwardHandler} {
		t.Run(string(mode), func(t *testing.T) {
			e, reg, logged := policyEngine(t, mode, editSnapshot(backend, modifier))
			conn, err := net.DialTimeout("tcp", e.Addr("127.0.0.1:0"), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write([]byte("GET /gone HTTP/1.1\r\nHost: app.example.com\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			conn.Close()
			settle(t, reg)
			key := `switchyard_requests_total{backend="default/b:80"|code="4xx"|route="default/r"}`
			if counts := countsOf(t, reg); counts[key] != 1 {
				t.Errorf("%s = %v, want 1 (counts %v)", key, counts[key], counts)
			}
			if lines := logged.lines(t); len(lines) != 1 || lines[0]["status"] != float64(499) {
				t.Errorf("access log %v, want one line of status 499", lines)
			}
		})
	}
}
