package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// exchangeSeen is what a backend saw of a request and what the client got back: the
// observable effect of forwarding, which forwardDirect and ReverseProxy must share.
type exchangeSeen struct {
	// The backend's view of the request.
	Method, RequestURI, Host string
	Header, Trailer          http.Header
	ContentLength            int64
	TransferEncoding         []string
	Body                     string
	// The client's view of the response, informational responses first.
	Informational    []string
	Status           int
	ResponseHeader   http.Header
	ResponseTrailer  http.Header
	ResponseLength   int64
	ResponseEncoding []string
	ResponseBody     string
}

// recordingBackend answers according to the request path (see answer) and keeps
// what it saw of the last request.
type recordingBackend struct {
	mu   sync.Mutex
	last exchangeSeen
}

func (b *recordingBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	seen := exchangeSeen{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(),
		Trailer: r.Trailer.Clone(), ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding, Body: string(body)}
	b.mu.Lock()
	b.last = seen
	b.mu.Unlock()
	answer(w, r)
}

// answer writes the response that the request path asks for.
func answer(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	switch r.URL.Path {
	case "/hop":
		h.Set("Connection", "x-hop-token, Keep-Alive")
		h.Set("X-Hop-Token", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h["Set-Cookie"] = []string{"a=1", "b=2"}
		h.Set("X-Kept", "yes")
		_, _ = io.WriteString(w, "hello")
	case "/trailers":
		h.Set("Trailer", "X-Sum, X-Other")
		_, _ = io.WriteString(w, "payload")
		h.Set("X-Sum", "abc")
		h.Set("X-Other", "def")
		h.Set(http.TrailerPrefix+"X-Late", "late")
	case "/announced":
		h.Set("Trailer", "X-Sum")
		_, _ = io.WriteString(w, "payload")
		h.Set("X-Sum", "abc")
	case "/stream", "/events":
		if r.URL.Path == "/events" {
			h.Set("Content-Type", "Text/Event-Stream ; charset=utf-8")
		}
		for i := range 3 {
			_, _ = fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
	case "/early":
		h.Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		h.Set("X-Final", "yes")
		_, _ = io.WriteString(w, "after hints")
	case "/nocontent":
		w.WriteHeader(http.StatusNoContent)
	case "/truncated":
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
		_ = brw.Flush()
		conn.Close()
	case "/switch":
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		conn.Close()
	default:
		h.Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "echo")
	}
}

// forwardingCases are raw requests that exercise what forwarding changes: hop-by-hop
// headers and those Connection names, forwarding headers, Te, User-Agent, queries
// that do not parse, bodies of both framings with trailers, and responses of every
// kind answer writes.
var forwardingCases = []struct{ name, request string }{
	{"hop-by-hop headers", "GET /hop HTTP/1.1\r\nHost: app.example.com\r\nConnection: keep-alive, x-secret, X-OTHER-secret\r\n" +
		"X-Secret: 1\r\nX-Other-Secret: 2\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n" +
		"Proxy-Authorization: Basic eDp5\r\nTE: gzip\r\nTrailer: X-T\r\nX-Kept: yes\r\nX-Multi: 1\r\nX-Multi: 2\r\n\r\n"},
	{"forwarding headers and trailers accepted", "GET /trailers?q=1 HTTP/1.1\r\nHost: app.example.com:8080\r\n" +
		"Forwarded: for=1.2.3.4\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8\r\nX-Forwarded-For: 9.9.9.9\r\n" +
		"X-Forwarded-Host: spoofed.example.com\r\nX-Forwarded-Proto: https\r\nTE: trailers, deflate\r\nUser-Agent: probe/1\r\n\r\n"},
	{"all trailers announced", "GET /announced HTTP/1.1\r\nHost: app.example.com\r\nTE: trailers\r\n\r\n"},
	{"query that does not parse", "GET /echo?a=1;b=2&c=%zz&d=4&e=%41 HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
	{"query that parses", "GET /echo?a=1&b=%41%42&c=x+y HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
	{"body with a length", "POST /echo HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"},
	{"chunked body with trailers", "POST /echo HTTP/1.1\r\nHost: app.example.com\r\nTransfer-Encoding: chunked\r\nTrailer: X-Req-Sum\r\n\r\n" +
		"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Req-Sum: 42\r\n\r\n"},
	{"empty body with a length", "PUT /echo HTTP/1.1\r\nHost: app.example.com\r\nContent-Length: 0\r\n\r\n"},
	{"head", "HEAD /hop HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
	{"streamed response", "GET /stream HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
	{"server-sent events", "GET /events HTTP/1.1\r\nHost: app.example.com\r\nAccept: text/event-stream\r\n\r\n"},
	{"early hints", "GET /early HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
	{"no content", "DELETE /nocontent HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
	{"body cut short", "GET /truncated HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
	{"protocol switch nobody asked for", "GET /switch HTTP/1.1\r\nHost: app.example.com\r\n\r\n"},
}

// TestDirectForwardingMatchesReverseProxy sends each of forwardingCases through a
// gateway that forwards with forwardDirect and through one that forwards with
// httputil.ReverseProxy, with and without trusted proxies, and compares what the
// backend saw and what the client got.
func TestDirectForwardingMatchesReverseProxy(t *testing.T) {
	backendSrv := &recordingBackend{}
	addr := startBackend(t, backendSrv.ServeHTTP)
	rule := config.Rule{Backends: []config.BackendRef{{Backend: "b", Weight: 1}}}
	for _, trusted := range []bool{false, true} {
		opts := Options{}
		if trusted {
			opts.TrustedProxies = loopbackTrusted()
		}
		direct := newGateway(t, opts, []config.Backend{httpBackend("b", ready(addr))}, rule, nil)
		reference := newGateway(t, opts, []config.Backend{httpBackend("b", ready(addr))}, rule, nil)
		reference.proxy.viaReverseProxy = true
		for _, tc := range forwardingCases {
			t.Run(fmt.Sprintf("%s/trusted=%v", tc.name, trusted), func(t *testing.T) {
				want := exchangeThrough(t, reference, backendSrv, tc.request)
				got := exchangeThrough(t, direct, backendSrv, tc.request)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("forwardDirect:\n%+v\nReverseProxy:\n%+v", got, want)
				}
			})
		}
	}
}

// exchangeThrough sends a raw request through g and returns what the backend saw of
// it and what came back, without the headers that differ from one exchange to the
// next (Date) and with the names in a Trailer header sorted (their order follows a
// map's).
func exchangeThrough(t *testing.T, g *gateway, b *recordingBackend, request string) exchangeSeen {
	t.Helper()
	b.mu.Lock()
	b.last = exchangeSeen{}
	b.mu.Unlock()
	conn, err := net.DialTimeout("tcp", g.front.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	method, _, _ := strings.Cut(request, " ")
	var seen exchangeSeen
	for {
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			// An aborted response is an outcome to compare too.
			seen.ResponseBody = "no response: " + err.Error()
			break
		}
		if res.StatusCode >= 200 || res.StatusCode == http.StatusSwitchingProtocols {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			seen.Status, seen.ResponseBody = res.StatusCode, string(body)
			seen.ResponseHeader, seen.ResponseTrailer = res.Header, res.Trailer
			seen.ResponseLength, seen.ResponseEncoding = res.ContentLength, res.TransferEncoding
			break
		}
		seen.Informational = append(seen.Informational, fmt.Sprintf("%d %v", res.StatusCode, res.Header))
	}
	delete(seen.ResponseHeader, "Date")
	if seen.ResponseHeader == nil {
		seen.ResponseHeader = http.Header{}
	}
	if names := seen.ResponseHeader["Trailer"]; len(names) == 1 {
		sorted := strings.Split(names[0], ", ")
		slices.Sort(sorted)
		seen.ResponseHeader["Trailer"] = []string{strings.Join(sorted, ", ")}
	}
	b.mu.Lock()
	backendView := b.last
	b.mu.Unlock()
	seen.Method, seen.RequestURI, seen.Host = backendView.Method, backendView.RequestURI, backendView.Host
	seen.Header, seen.Trailer, seen.Body = backendView.Header, backendView.Trailer, backendView.Body
	seen.ContentLength, seen.TransferEncoding = backendView.ContentLength, backendView.TransferEncoding
	return seen
}
