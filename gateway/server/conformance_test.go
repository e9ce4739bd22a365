package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// describingHandler answers with what it saw of the request, and shapes its answer
// by path, so that two servers can be compared on the same exchanges.
var describingHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k+"="+strings.Join(r.Header[k], "|"))
	}
	sort.Strings(keys)
	desc := fmt.Sprintf("%s %s path=%q query=%q host=%q proto=%s len=%d te=%v close=%v trailer=%v body=%q headers=%v remote=%v",
		r.Method, r.RequestURI, r.URL.Path, r.URL.RawQuery, r.Host, r.Proto, r.ContentLength, r.TransferEncoding, r.Close,
		r.Trailer, body, keys, r.RemoteAddr != "")
	switch r.URL.Path {
	case "/stream":
		_, _ = io.WriteString(w, desc)
		http.NewResponseController(w).Flush()
		_, _ = io.WriteString(w, "|more")
	case "/trailers":
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = io.WriteString(w, desc)
		w.Header().Set("X-Checksum", "c1")
	case "/big":
		_, _ = io.WriteString(w, strings.Repeat(desc, 40))
	case "/status":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"ok":true}`)
	case "/close":
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, desc)
	default:
		_, _ = io.WriteString(w, desc)
	}
})

// exchangeResult is a server's answer to one payload, with what may differ between
// servers (dates) left out.
type exchangeResult struct {
	responses []string
	closed    bool
}

// describeExchange sends payload and reads want responses (requests of method).
func describeExchange(t *testing.T, addr, payload string, methods []string) exchangeResult {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(conn, payload); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var res exchangeResult
	for _, method := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			res.responses = append(res.responses, "error: "+err.Error())
			return res
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("body: %v", err)
		}
		resp.Header.Del("Date")
		res.responses = append(res.responses, fmt.Sprintf("%s %d length=%d te=%v close=%v header=%v trailer=%v body=%q",
			resp.Proto, resp.StatusCode, resp.ContentLength, resp.TransferEncoding, resp.Close, resp.Header, resp.Trailer, body))
	}
	_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err = br.ReadByte()
	res.closed = err != nil && !strings.Contains(err.Error(), "timeout")
	return res
}

// TestHTTP1ServersAgree runs the same exchanges against the fast and the net/http
// HTTP/1.x servers: handlers must see the same requests, and clients the same
// answers.
func TestHTTP1ServersAgree(t *testing.T) {
	const host = "Host: example.test\r\n"
	exchanges := []struct {
		name    string
		payload string
		methods []string
	}{
		{"simple get", "GET /a?b=c HTTP/1.1\r\n" + host + "User-Agent: t\r\nAccept: */*\r\n\r\n", []string{"GET"}},
		{"escaped path", "GET /a%2Fb/c%20d HTTP/1.1\r\n" + host + "\r\n", []string{"GET"}},
		{"absolute form", "GET http://other.test:81/p?q HTTP/1.1\r\n" + host + "\r\n", []string{"GET"}},
		{"repeated and odd-case headers", "GET / HTTP/1.1\r\n" + host + "x-multi: 1\r\nX-MULTI: 2\r\nx-empty:\r\n\r\n", []string{"GET"}},
		{"content-length body", "POST /p HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello", []string{"POST"}},
		{"chunked body with trailer", "POST /p HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n" +
			"2\r\nab\r\n1;x=y\r\nc\r\n0\r\nX-T: v\r\n\r\n", []string{"POST"}},
		{"pipelined", "GET /1 HTTP/1.1\r\n" + host + "\r\nHEAD /2 HTTP/1.1\r\n" + host + "\r\nGET /3 HTTP/1.1\r\n" + host + "\r\n",
			[]string{"GET", "HEAD", "GET"}},
		{"streamed response", "GET /stream HTTP/1.1\r\n" + host + "\r\n", []string{"GET"}},
		{"response trailers", "GET /trailers HTTP/1.1\r\n" + host + "\r\n", []string{"GET"}},
		{"large response", "GET /big HTTP/1.1\r\n" + host + "\r\n", []string{"GET"}},
		{"status and type", "GET /status HTTP/1.1\r\n" + host + "\r\n", []string{"GET"}},
		{"handler closes", "GET /close HTTP/1.1\r\n" + host + "\r\n", []string{"GET"}},
		{"client closes", "GET / HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n", []string{"GET"}},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", []string{"GET"}},
		{"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /again HTTP/1.0\r\n\r\n", []string{"GET", "GET"}},
		{"HTTP/1.0 stream", "GET /stream HTTP/1.0\r\n\r\n", []string{"GET"}},
		{"head of a large body", "HEAD /big HTTP/1.1\r\n" + host + "\r\n", []string{"HEAD"}},
		{"options star", "OPTIONS * HTTP/1.1\r\n" + host + "\r\n", []string{"OPTIONS"}},
		{"unread body", "POST /status HTTP/1.1\r\n" + host + "Content-Length: 3\r\n\r\nabcGET /after HTTP/1.1\r\n" + host + "\r\n",
			[]string{"POST", "GET"}},
	}
	addrs := map[HTTP1Mode]string{}
	for _, mode := range []HTTP1Mode{HTTP1Fast, HTTP1Std} {
		limits := DefaultLimits()
		limits.HTTP1 = mode
		addrs[mode] = serveOne(t, newTestManager(t, limits), Spec{Name: string(mode), Handler: describingHandler})
	}
	for _, ex := range exchanges {
		t.Run(ex.name, func(t *testing.T) {
			fast := describeExchange(t, addrs[HTTP1Fast], ex.payload, ex.methods)
			std := describeExchange(t, addrs[HTTP1Std], ex.payload, ex.methods)
			if !slices.Equal(fast.responses, std.responses) || fast.closed != std.closed {
				t.Errorf("servers differ:\nfast (closed %v):\n  %s\nstd (closed %v):\n  %s", fast.closed,
					strings.Join(fast.responses, "\n  "), std.closed, strings.Join(std.responses, "\n  "))
			}
		})
	}
}
