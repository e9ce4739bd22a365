package dataplane

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// The tests here pin choices of the raw path (proxy.RawRoute) that a user sees only
// in the aggregate: how a split's requests are shared among its backends, and which
// rules the raw path leaves to the handler path because their filters edit a field
// it handles itself.

// pinRequests is how many requests the share tests send. A backend's share of an
// even split is then 200 with a standard deviation of 10, which falls outside
// shareLow..shareHigh about once in a billion runs, while a share of a quarter
// (mean 100, deviation 8.7) reaches shareLow about once in two hundred thousand.
const pinRequests = 400

// shareLow and shareHigh bound a backend's share of pinRequests under an even split.
const shareLow, shareHigh = 140, 260

// splitRequest is the request the share tests send: the raw path would serve it,
// were its rule and backend fit for it.
const splitRequest = "GET /split HTTP/1.1\r\nHost: app.example.com\r\n\r\n"

// h2cBackend answers every request it gets over cleartext HTTP/2 (with prior
// knowledge) as splitBackend does, and counts those requests and, apart, any that
// came over another protocol, which would mean the gateway did not speak h2c to it.
func h2cBackend(t *testing.T) (addr string, h2 func() int, other func() int) {
	t.Helper()
	var mu sync.Mutex
	var h2Count, otherCount int
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: protocols, ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			if r.ProtoMajor == 2 {
				h2Count++
			} else {
				otherCount++
			}
			mu.Unlock()
			w.Header()["x-lower"] = []string{"v"}
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "ok")
		})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	read := func(n *int) func() int {
		return func() int {
			mu.Lock()
			defer mu.Unlock()
			return *n
		}
	}
	return ln.Addr().String(), read(&h2Count), read(&otherCount)
}

// sendSplitRequests sends pinRequests splitRequests to addr, each on a connection
// of its own, and returns how many answers of each status the client got and how
// many the raw path relayed as they came (the backend's lower-case field kept).
func sendSplitRequests(t *testing.T, addr string) (statuses map[int]int, relayed int) {
	t.Helper()
	statuses = map[int]int{}
	for range pinRequests {
		wire := exchange(t, addr, splitRequest)
		statuses[parseResponses(t, wire, http.MethodGet)[0].status]++
		if bytes.Contains(wire, []byte("\r\nx-lower: v\r\n")) {
			relayed++
		}
	}
	return statuses, relayed
}

// TestRawForwardingLeavesASplitWithAnH2CBackendWholeToTheHandler: the raw client
// speaks HTTP/1.1 alone, so a rule that splits its requests between an HTTP/1.1
// backend and an h2c one is left to the handler path for all of its requests. Were
// the raw path to decline only the requests it picked for the h2c backend, the
// handler would pick again among both, and the h2c backend would get a quarter of
// the requests instead of half.
func TestRawForwardingLeavesASplitWithAnH2CBackendWholeToTheHandler(t *testing.T) {
	plain, plainCount := splitBackend(t)
	h2c, h2cCount, h2cOther := h2cBackend(t)
	refs := []config.BackendRef{{Backend: "default/plain:80", Weight: 1}, {Backend: "default/h2c:80", Weight: 1}}
	snap := splitSnapshot(refs, map[string]string{"default/plain:80": plain, "default/h2c:80": h2c})
	for i := range snap.Backends {
		if snap.Backends[i].Name == "default/h2c:80" {
			snap.Backends[i].Protocol = config.AppProtocolH2C
		}
	}
	e, addr := rawTestEngineOf(t, ForwardRaw, plain)
	mustApply(t, e, snap)
	statuses, relayed := sendSplitRequests(t, addr)
	if statuses[http.StatusOK] != pinRequests {
		t.Fatalf("statuses %v, want %d answers of 200", statuses, pinRequests)
	}
	if other := h2cOther(); other != 0 {
		t.Fatalf("the h2c backend got %d requests over another protocol than HTTP/2", other)
	}
	p, h := plainCount(), h2cCount()
	if p+h != pinRequests || p < shareLow || p > shareHigh || h < shareLow || h > shareHigh {
		t.Errorf("of %d requests split evenly, the HTTP/1.1 backend got %d and the h2c backend %d, want each %d to %d",
			pinRequests, p, h, shareLow, shareHigh)
	}
	if relayed != 0 {
		t.Errorf("the raw path relayed %d answers of a rule with an h2c backend, want none", relayed)
	}
}

// TestRawForwardingAdmitsASplitThroughTheBreakerAsTheHandler splits requests
// evenly between two backends, the breaker of one of them full: it has one
// connection slot, held here, and no queue, so each request picked for it is
// refused at once with a 503. The raw path must let the breaker refuse those
// requests as the handler path does, so that half of the answers are 503s. Were
// it to ask the breaker before anything else, as it does when the pick is not
// left to chance, it would decline the requests picked for the full backend, the
// handler would pick again, and only a quarter of the answers would be 503s.
func TestRawForwardingAdmitsASplitThroughTheBreakerAsTheHandler(t *testing.T) {
	full, fullCount := splitBackend(t)
	free, freeCount := splitBackend(t)
	refs := []config.BackendRef{{Backend: "default/full:80", Weight: 1}, {Backend: "default/free:80", Weight: 1}}
	for _, mode := range []ForwardingMode{ForwardRaw, ForwardHandler} {
		t.Run(string(mode), func(t *testing.T) {
			snap := splitSnapshot(refs, map[string]string{"default/full:80": full, "default/free:80": free})
			for i := range snap.Backends {
				if snap.Backends[i].Name == "default/full:80" {
					snap.Backends[i].CircuitBreaker = &config.CircuitBreaker{MaxConnections: 1}
				}
			}
			e, addr := rawTestEngineOf(t, mode, free)
			mustApply(t, e, snap)
			release, err := e.backends.Pool("default/full:80").Breaker().Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			// Released before the engine shuts down, which t.Cleanup does.
			defer release()
			fullBefore, freeBefore := fullCount(), freeCount()
			statuses, _ := sendSplitRequests(t, addr)
			ok, refused := statuses[http.StatusOK], statuses[http.StatusServiceUnavailable]
			if ok+refused != pinRequests || ok < shareLow || ok > shareHigh || refused < shareLow || refused > shareHigh {
				t.Errorf("statuses %v of %d requests, want 200 and 503 each %d to %d times", statuses, pinRequests, shareLow, shareHigh)
			}
			if got := fullCount() - fullBefore; got != 0 {
				t.Errorf("the backend whose breaker is full got %d requests", got)
			}
			if got := freeCount() - freeBefore; got != ok {
				t.Errorf("the other backend got %d requests, want the %d answered with 200", got, ok)
			}
		})
	}
}

// reservedRequestFields are the fields a RequestHeaderModifier may not edit on the
// raw path, each with a value to set it to. The list is written out here rather
// than taken from the proxy, so that a name dropped there fails the test. Host is
// among them although the modifier never shows it as an edited field: a Set of
// Host keeps the rule on the handler path by the modifier's own choice, and an add
// or removal of it is ignored. Its row pins that the rule stays on the handler
// path; the proxy's own entry for Host, which no modifier reaches, it cannot.
var reservedRequestFields = []config.Header{
	{Name: "Host", Value: "other.example.com"},
	{Name: "Connection", Value: "keep-alive"},
	{Name: "Proxy-Connection", Value: "keep-alive"},
	{Name: "Keep-Alive", Value: "timeout=5"},
	{Name: "Proxy-Authenticate", Value: "Basic"},
	{Name: "Proxy-Authorization", Value: "Basic eDp5"},
	{Name: "Te", Value: "trailers"},
	{Name: "Trailer", Value: "X-Sum"},
	{Name: "Transfer-Encoding", Value: "identity"},
	{Name: "Upgrade", Value: "websocket"},
	{Name: "Close", Value: "1"},
	{Name: "Content-Length", Value: "0"},
	{Name: "Content-Type", Value: "text/plain"},
	{Name: "Expect", Value: "100-continue"},
	{Name: "Forwarded", Value: "for=192.0.2.1"},
	{Name: "X-Forwarded-For", Value: "192.0.2.1"},
	{Name: "X-Forwarded-Host", Value: "other.example.com"},
	{Name: "X-Forwarded-Proto", Value: "https"},
	{Name: "User-Agent", Value: "edited"},
	{Name: "X-Switchyard-Deadline-Ms", Value: "1000"},
	{Name: "Grpc-Timeout", Value: "1S"},
	{Name: "Idempotency-Key", Value: "k"},
	{Name: "X-Idempotency-Key", Value: "k"},
	{Name: "Traceparent", Value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	{Name: "Tracestate", Value: "a=b"},
}

// reservedResponseFields are the response fields a ResponseHeaderModifier may not
// edit on the raw path, written out for the same reason.
var reservedResponseFields = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Content-Type", "Date"}

// reservedEditCase is the request of the reserved-field tests, and its answer
// one the raw path relays as it comes.
var reservedEditCase = rawCase{request: "GET /reserved HTTP/1.1\r\nHost: app.example.com\r\n\r\n", response: editedAnswer}

// checkRawServes sends reservedEditCase through an engine whose rule has filter,
// and checks whether the raw path relayed the answer, as raw says it must.
func checkRawServes(t *testing.T, backend *scriptedBackend, filter config.Filter, raw bool) {
	t.Helper()
	addr := backend.ln.Addr().String()
	e, engineAddr := rawTestEngineOf(t, ForwardRaw, addr)
	mustApply(t, e, editSnapshot(addr, filter))
	wire := exchange(t, engineAddr, reservedEditCase.request)
	backend.received(t, "/reserved")
	if status := parseResponses(t, wire, http.MethodGet)[0].status; status != http.StatusOK {
		t.Errorf("status %d, want 200:\n%q", status, wire)
	}
	if relayed := bytes.Contains(wire, []byte("\r\nx-lower: v\r\n")); relayed != raw {
		t.Errorf("the answer was relayed as it came: %v, want %v:\n%q", relayed, raw, wire)
	}
}

// TestRawForwardingDeclinesEveryReservedRequestEdit sets each reserved field with a
// RequestHeaderModifier, in lower case as a route may name it, and checks that the
// rule stays on the handler path. A field of no concern to the raw path leaves the
// rule on the raw path, which shows that the check can see the raw path serve.
func TestRawForwardingDeclinesEveryReservedRequestEdit(t *testing.T) {
	backend := startScriptedBackend(t, []rawCase{reservedEditCase})
	rawServed := rawServedHere(t)
	rows := append([]config.Header{{Name: "X-Plain", Value: "v"}}, reservedRequestFields...)
	for _, field := range rows {
		t.Run(field.Name, func(t *testing.T) {
			modifier := config.Filter{Type: config.FilterRequestHeaderModifier, RequestHeaderModifier: &config.HeaderModifier{
				Set: []config.Header{{Name: strings.ToLower(field.Name), Value: field.Value}}}}
			checkRawServes(t, backend, modifier, rawServed && field.Name == "X-Plain")
		})
	}
}

// TestRawForwardingDeclinesEveryReservedResponseEdit removes each reserved field
// with a ResponseHeaderModifier and checks that the rule stays on the handler path.
// A removal names the field as a set or an add does, and unlike them leaves the
// handler path's answer well framed, whatever the field.
func TestRawForwardingDeclinesEveryReservedResponseEdit(t *testing.T) {
	backend := startScriptedBackend(t, []rawCase{reservedEditCase})
	rawServed := rawServedHere(t)
	for _, name := range append([]string{"X-Plain"}, reservedResponseFields...) {
		t.Run(name, func(t *testing.T) {
			modifier := config.Filter{Type: config.FilterResponseHeaderModifier, ResponseHeaderModifier: &config.HeaderModifier{
				Remove: []string{strings.ToLower(name)}}}
			checkRawServes(t, backend, modifier, rawServed && name == "X-Plain")
		})
	}
}
