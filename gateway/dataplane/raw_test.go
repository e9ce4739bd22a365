package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/observe"
)

// The raw forwarding path (proxy.RawRoute) must be indistinguishable from the
// handler path but for the order and case of header fields: the tests here send
// the same requests through an engine of each mode to a scripted backend, and
// compare what the backend received and what the client got.

// rawCase is one exchange: the client's request and the backend's answer, as bytes.
type rawCase struct {
	name     string
	request  string
	response string
	// raw is set when the raw path relays the answer itself, so that its wire form
	// shows (fields in the backend's case and order).
	raw bool
	// hangUp makes the backend close its connection after the answer.
	hangUp bool
}

var rawCases = []rawCase{
	{name: "plain", raw: true,
		request:  "GET /a/b%2Fc?x=1&y=%20 HTTP/1.1\r\nHost: app.example.com\r\nX-Zeta: 1\r\nAccept: */*\r\nX-Alpha: 2\r\nX-Zeta: 3\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\nx-lower: v\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 5\r\n\r\nhello"},
	{name: "head", raw: true,
		request:  "HEAD /h HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\nx-lower: v\r\nContent-Type: text/plain\r\nContent-Length: 1234\r\n\r\n"},
	{name: "no content", raw: true,
		request:  "DELETE /item HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 204 No Content\r\nx-lower: v\r\n\r\n"},
	{name: "not modified", raw: true,
		request:  "GET /cached HTTP/1.1\r\nHost: app.example.com\r\nIf-None-Match: \"abc\"\r\n\r\n",
		response: "HTTP/1.1 304 Not Modified\r\nx-lower: v\r\nETag: \"abc\"\r\n\r\n"},
	{name: "hop-by-hop", raw: true,
		request:  "GET /hop HTTP/1.1\r\nHost: app.example.com\r\nProxy-Authorization: secret\r\nUser-Agent:\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\nx-lower: v\r\nConnection: X-Drop\r\nX-Drop: 1\r\nKeep-Alive: timeout=5\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"},
	{name: "post without body", raw: true,
		request:  "POST /form HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 0\r\n\r\n",
		response: "HTTP/1.1 201 Created\r\nx-lower: v\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nnew"},
	{name: "post with a body", raw: true,
		request:  "POST /json HTTP/1.1\r\nHost: app.example.com\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"id\":\"a-1\"}",
		response: "HTTP/1.1 201 Created\r\nx-lower: v\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"},
	{name: "put with repeated lengths", raw: true,
		request:  "PUT /item/7 HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 5\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nseven",
		response: "HTTP/1.1 204 No Content\r\nx-lower: v\r\n\r\n"},
	{name: "get with a body", raw: true,
		request:  "GET /search HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 9\r\n\r\nq=gateway",
		response: "HTTP/1.1 200 OK\r\nx-lower: v\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"},
	{name: "body of 3 KiB", raw: true,
		request:  "PATCH /doc HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 3072\r\n\r\n" + strings.Repeat("patch-me", 384),
		response: "HTTP/1.1 200 OK\r\nx-lower: v\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\npatched"},
	{name: "body larger than the read buffer",
		request:  "POST /upload HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 20000\r\n\r\n" + strings.Repeat("0123456789", 2000),
		response: "HTTP/1.1 200 OK\r\nx-lower: v\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nuploaded"},
	{name: "early hints", raw: true,
		request:  "GET /hints HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nx-lower: v\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"},
	{name: "backend date kept", raw: true,
		request:  "GET /date HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\nx-lower: v\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nd"},
	{name: "large body", raw: true,
		request:  "GET /large HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\nx-lower: v\r\nContent-Type: application/octet-stream\r\nContent-Length: 200000\r\n\r\n" + strings.Repeat("0123456789", 20000)},
	{name: "keep-alive option", raw: true,
		request:  "GET /ka HTTP/1.1\r\nHost: app.example.com\r\nConnection: keep-alive\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\nx-lower: v\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nka"},
	{name: "client closes", raw: true,
		request:  "GET /close HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\nx-lower: v\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nbye"},
	{name: "chunked with trailer",
		request:  "GET /chunked HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n"},
	{name: "sniffed type",
		request:  "GET /sniff HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n<html></html>\n"},
	{name: "unknown status", raw: true,
		request:  "GET /odd HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 299 Odd\r\nx-lower: v\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nodd"},
	{name: "unknown interim status",
		request:  "GET /interim HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 104 Upload\r\nConnection: Date\r\nX-Step: 1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"},
	{name: "head with a bad length",
		request:  "HEAD /badlength HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: abc\r\n\r\n"},
	{name: "trace",
		request:  "TRACE /trace HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\nContent-Type: message/http\r\nContent-Length: 2\r\n\r\nok"},
	{name: "declined: empty host",
		request:  "GET /nohost HTTP/1.1\r\nHost:\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"},
	{name: "http/1.0 answer",
		request:  "GET /old HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nold"},
	{name: "declined: client connection header",
		request:  "GET /conn HTTP/1.1\r\nHost: app.example.com\r\nConnection: X-Private\r\nX-Private: 1\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"},
	{name: "declined: forwarded for",
		request:  "GET /xff HTTP/1.1\r\nHost: app.example.com\r\nX-Forwarded-For: 192.0.2.1\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"},
	{name: "declined: query to clean",
		request:  "GET /q?a=1;b=2&c=%zz HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"},
}

// scriptedBackend answers every request with the response of the case its path
// names, and records each request it received, as bytes.
type scriptedBackend struct {
	ln      net.Listener
	answers map[string]string
	hangUps map[string]bool
	mu      sync.Mutex
	got     map[string][]byte
}

func startScriptedBackend(t *testing.T, cases []rawCase) *scriptedBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &scriptedBackend{ln: ln, answers: map[string]string{}, hangUps: map[string]bool{}, got: map[string][]byte{}}
	for _, c := range cases {
		b.answers[requestPath(c.request)] = c.response
		b.hangUps[requestPath(c.request)] = c.hangUp
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.serve(c)
		}
	}()
	return b
}

// requestPath returns the path of a request's target, without its query.
func requestPath(request string) string {
	target := strings.SplitN(request, " ", 3)[1]
	path, _, _ := strings.Cut(target, "?")
	return path
}

func (b *scriptedBackend) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	for {
		var head bytes.Buffer
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		if n := contentLength(head.String()); n > 0 {
			if _, err := io.CopyN(&head, r, n); err != nil {
				return
			}
		}
		path := requestPath(head.String())
		b.mu.Lock()
		b.got[path] = head.Bytes()
		answer := b.answers[path]
		b.mu.Unlock()
		if _, err := io.WriteString(c, answer); err != nil {
			return
		}
		if b.hangUps[path] || strings.HasPrefix(answer, "HTTP/1.0") || !strings.Contains(answer, "Content-Length") && !strings.Contains(answer, "chunked") && !strings.Contains(answer, " 204 ") && !strings.Contains(answer, " 304 ") {
			return
		}
	}
}

// contentLength returns the body length a request head declares, 0 when it
// declares none.
func contentLength(head string) int64 {
	for line := range strings.SplitSeq(head, "\r\n") {
		name, value, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(name, "Content-Length") {
			n, _ := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
			return n
		}
	}
	return 0
}

// received returns the request the backend last received for path.
func (b *scriptedBackend) received(t *testing.T, path string) []byte {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	got, ok := b.got[path]
	if !ok {
		t.Fatalf("the backend received no request for %s", path)
	}
	delete(b.got, path)
	return got
}

// exchange sends request on a new connection to addr and returns the response's
// bytes, read until the response is complete.
func exchange(t *testing.T, addr, request string) []byte {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	var wire bytes.Buffer
	br := bufio.NewReader(io.TeeReader(conn, &wire))
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(request)))
	if err != nil {
		t.Fatal(err)
	}
	for {
		res, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("reading the response: %v (so far %q)", err, wire.String())
		}
		if _, err := io.Copy(io.Discard, res.Body); err != nil {
			t.Fatalf("reading the body: %v", err)
		}
		res.Body.Close()
		if res.StatusCode >= 200 {
			return wire.Bytes()
		}
	}
}

// parsedResponse is a response as a client sees it, its Date left out.
type parsedResponse struct {
	status  int
	header  http.Header
	body    string
	trailer http.Header
}

func parseResponses(t *testing.T, wire []byte, method string) []parsedResponse {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(wire))
	var out []parsedResponse
	for {
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("parsing %q: %v", wire, err)
		}
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		res.Header.Del("Date")
		out = append(out, parsedResponse{res.StatusCode, res.Header, string(body), res.Trailer})
		if res.StatusCode >= 200 {
			return out
		}
	}
}

// parsedRequest is a request as a backend sees it.
type parsedRequest struct {
	method, uri, host, body string
	header                  http.Header
}

func parseRequest(t *testing.T, wire []byte) parsedRequest {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wire)))
	if err != nil {
		t.Fatalf("parsing %q: %v", wire, err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatalf("reading the body of %q: %v", wire, err)
	}
	return parsedRequest{req.Method, req.RequestURI, req.Host, string(body), req.Header}
}

// rawTestEngine returns the address of an engine of the given forwarding mode
// serving one route to backendAddr.
func rawTestEngine(t *testing.T, mode ForwardingMode, backendAddr string) string {
	t.Helper()
	_, addr := rawTestEngineOf(t, mode, backendAddr)
	return addr
}

// rawTestEngineOf is rawTestEngine, with the engine.
func rawTestEngineOf(t *testing.T, mode ForwardingMode, backendAddr string) (*Engine, string) {
	t.Helper()
	e := New(Options{Forwarding: mode})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	mustApply(t, e, snapshotFor(string(mode), backendAddr))
	return e, e.Addr("127.0.0.1:0")
}

func TestRawForwardingMatchesTheHandlerPath(t *testing.T) {
	backend := startScriptedBackend(t, rawCases)
	// The raw path is the default HTTP/1.1 server's; with net/http's
	// (SWITCHYARD_HTTP1=std) both engines serve by the handlers, and must still agree.
	rawServed := rawServedHere(t)
	rawAddr := rawTestEngine(t, ForwardRaw, backend.ln.Addr().String())
	handlerAddr := rawTestEngine(t, ForwardHandler, backend.ln.Addr().String())
	for _, c := range rawCases {
		t.Run(c.name, func(t *testing.T) {
			path := requestPath(c.request)
			method := strings.SplitN(c.request, " ", 2)[0]
			viaRaw := exchange(t, rawAddr, c.request)
			rawSent := backend.received(t, path)
			viaHandler := exchange(t, handlerAddr, c.request)
			handlerSent := backend.received(t, path)
			if got, want := parseRequest(t, rawSent), parseRequest(t, handlerSent); !equalRequests(got, want) {
				t.Errorf("the backend received\n%q\non the raw path, and\n%q\non the handler path", rawSent, handlerSent)
			}
			if got, want := parseResponses(t, viaRaw, method), parseResponses(t, viaHandler, method); !equalResponses(got, want) {
				t.Errorf("the client got\n%q\non the raw path, and\n%q\non the handler path", viaRaw, viaHandler)
			}
			// The raw path shows in the wire form: the backend's field in its own
			// case, the client's fields in their order.
			if relayed := bytes.Contains(viaRaw, []byte("\r\nx-lower: v\r\n")); relayed != (c.raw && rawServed) {
				t.Errorf("response relayed as is: %v, want %v:\n%q", relayed, c.raw && rawServed, viaRaw)
			}
			if c.name == "plain" && rawServed && !bytes.Contains(rawSent, []byte("X-Zeta: 1\r\nAccept: */*\r\nX-Alpha: 2\r\nX-Zeta: 3\r\n")) {
				t.Errorf("the raw path did not send the client's fields in their order:\n%q", rawSent)
			}
		})
	}
}

func equalRequests(a, b parsedRequest) bool {
	return a.method == b.method && a.uri == b.uri && a.host == b.host && a.body == b.body && equalHeaders(a.header, b.header)
}

func equalResponses(a, b []parsedResponse) bool {
	return slices.EqualFunc(a, b, func(x, y parsedResponse) bool {
		return x.status == y.status && x.body == y.body && equalHeaders(x.header, y.header) && equalHeaders(x.trailer, y.trailer)
	})
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) && (k != "Ratelimit-Reset" || !closeResets(v, b[k])) {
			return false
		}
	}
	return true
}

// closeResets reports whether two RateLimit-Reset values are one whole second each,
// at most a second apart. Two engines that take the same requests drain their
// buckets alike, but a few milliseconds apart: the seconds until the buckets refill
// can round to neighbouring whole seconds when a second's boundary falls between.
func closeResets(a, b []string) bool {
	if len(a) != 1 || len(b) != 1 {
		return false
	}
	x, errA := strconv.Atoi(a[0])
	y, errB := strconv.Atoi(b[0])
	return errA == nil && errB == nil && x >= 0 && y >= 0 && x-y <= 1 && y-x <= 1
}

// TestRawForwardingAnswersFailuresAsTheHandlerPath compares the answers of both
// paths when the backend cannot be reached, and when it breaks off its answer.
func TestRawForwardingAnswersFailuresAsTheHandlerPath(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	request := "GET /down HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
	rawEngine, rawAddr := rawTestEngineOf(t, ForwardRaw, refused)
	handlerEngine, handlerAddr := rawTestEngineOf(t, ForwardHandler, refused)
	viaRaw := exchange(t, rawAddr, request)
	viaHandler := exchange(t, handlerAddr, request)
	got, want := parseResponses(t, viaRaw, http.MethodGet), parseResponses(t, viaHandler, http.MethodGet)
	if !equalResponses(got, want) || got[0].status != http.StatusBadGateway {
		t.Errorf("the client got\n%q\non the raw path, and\n%q\non the handler path", viaRaw, viaHandler)
	}
	rawTotals, handlerTotals := rawEngine.BackendOutcome("default/b:80"), handlerEngine.BackendOutcome("default/b:80")
	if rawTotals.Errors != 1 || rawTotals.Requests != handlerTotals.Requests || rawTotals.Errors != handlerTotals.Errors {
		t.Errorf("outcomes of the refused request: raw %+v, handler %+v", rawTotals, handlerTotals)
	}

	cut := []rawCase{{name: "cut", request: "GET /cut HTTP/1.1\r\nHost: app.example.com\r\n\r\n",
		response: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly part", hangUp: true}}
	backend := startScriptedBackend(t, cut)
	outcomes := map[ForwardingMode]string{}
	for _, mode := range []ForwardingMode{ForwardRaw, ForwardHandler} {
		e, addr := rawTestEngineOf(t, mode, backend.ln.Addr().String())
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, cut[0].request); err != nil {
			t.Fatal(err)
		}
		// The client must learn that the answer is cut short: the connection ends
		// before the body's declared length (the raw path has sent the head by
		// then; the handler path may still hold it back, and send nothing).
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			_, err = io.ReadAll(res.Body)
		}
		if err != io.ErrUnexpectedEOF {
			t.Errorf("%s: reading the cut answer gave %v, want io.ErrUnexpectedEOF", mode, err)
		}
		conn.Close()
		// The backend answered: its status counts, the cut does not.
		totals := e.BackendOutcome("default/b:80")
		outcomes[mode] = fmt.Sprintf("requests %d, errors %d", totals.Requests, totals.Errors)
	}
	if outcomes[ForwardRaw] != outcomes[ForwardHandler] {
		t.Errorf("outcomes of the cut answer: raw %s, handler %s", outcomes[ForwardRaw], outcomes[ForwardHandler])
	}
}

// TestRawForwardingCountsAsTheHandlerPath sends the same requests through an engine
// of each mode, with metrics on, and compares the counters they keep: requests by
// rule, backend and status class, in flight, and the backend's outcomes.
func TestRawForwardingCountsAsTheHandlerPath(t *testing.T) {
	backend := startScriptedBackend(t, rawCases)
	counts := map[ForwardingMode]map[string]float64{}
	outcomes := map[ForwardingMode]string{}
	for _, mode := range []ForwardingMode{ForwardRaw, ForwardHandler} {
		reg := prometheus.NewRegistry()
		obs, err := observe.New(observe.Options{Registerer: reg, RouteMetrics: observe.RouteMetricsFull})
		if err != nil {
			t.Fatal(err)
		}
		e := New(Options{Forwarding: mode, Observer: obs})
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = e.Shutdown(ctx)
		})
		mustApply(t, e, snapshotFor("v1", backend.ln.Addr().String()))
		for _, c := range rawCases {
			exchange(t, e.Addr("127.0.0.1:0"), c.request)
			backend.received(t, requestPath(c.request))
		}
		// The last request may still be in flight when its client has the answer.
		settle(t, reg)
		counts[mode] = countsOf(t, reg)
		// Latencies differ from run to run; the counts must not.
		totals := e.BackendOutcome("default/b:80")
		outcomes[mode] = fmt.Sprintf("requests %d, errors %d", totals.Requests, totals.Errors)
	}
	raw, handler := counts[ForwardRaw], counts[ForwardHandler]
	if len(raw) == 0 || !maps.Equal(raw, handler) {
		t.Errorf("counters differ:\nraw     %v\nhandler %v", raw, handler)
	}
	if outcomes[ForwardRaw] != outcomes[ForwardHandler] {
		t.Errorf("backend outcomes differ: raw %s, handler %s", outcomes[ForwardRaw], outcomes[ForwardHandler])
	}
}

// TestRawForwardingRoutesByHeader routes by a header the request carries. The raw
// path looks a request up without the header map, which it never needs itself, so
// a table whose routes match on headers must have it built first.
func TestRawForwardingRoutesByHeader(t *testing.T) {
	stable, stableCount := countingBackend(t, func(int, http.ResponseWriter) {})
	canary, canaryCount := countingBackend(t, func(int, http.ResponseWriter) {})
	snap := snapshotFor("v1", stable)
	vh := &snap.Listeners[0].VirtualHosts[0]
	vh.Routes = append(vh.Routes, config.Route{
		Name: "default/canary",
		Rules: []config.Rule{{
			Matches:  []config.Match{{Headers: []config.ValueMatch{{Type: config.MatchExact, Name: "x-canary", Value: "yes"}}}},
			Backends: []config.BackendRef{{Backend: "default/canary:80", Weight: 1}},
		}},
	})
	snap.Backends = append(snap.Backends, config.Backend{
		Name: "default/canary:80", Protocol: config.AppProtocolHTTP1,
		Endpoints: []config.Endpoint{{Address: canary, Ready: true, Serving: true}},
	})
	for _, mode := range []ForwardingMode{ForwardRaw, ForwardHandler} {
		t.Run(string(mode), func(t *testing.T) {
			e, addr := rawTestEngineOf(t, mode, stable)
			mustApply(t, e, snap)
			before := stableCount()
			beforeCanary := canaryCount()
			for _, req := range []string{
				"GET /a HTTP/1.1\r\nHost: app.example.com\r\nX-Canary: yes\r\n\r\n",
				"GET /b HTTP/1.1\r\nHost: app.example.com\r\nAccept: */*\r\nx-canary: yes\r\n\r\n",
				"GET /c HTTP/1.1\r\nHost: app.example.com\r\nX-Canary: no\r\n\r\n",
			} {
				if res := parseResponses(t, exchange(t, addr, req), http.MethodGet); len(res) != 1 || res[0].status != http.StatusOK {
					t.Fatalf("%q: %+v", req, res)
				}
			}
			if got, want := canaryCount()-beforeCanary, 2; got != want {
				t.Errorf("the canary got %d requests, want %d", got, want)
			}
			if got, want := stableCount()-before, 1; got != want {
				t.Errorf("the stable backend got %d requests, want %d", got, want)
			}
		})
	}
}
