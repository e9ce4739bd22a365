package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// parseString parses one head the way a connection does.
func parseString(t testing.TB, raw string) (*head, *protocolError) {
	t.Helper()
	buf := []byte(raw)
	end, _ := findHeadEnd(buf, 0)
	if end < 0 {
		t.Fatalf("no complete head in %q", raw)
	}
	var p parser
	h := &head{}
	return h, p.parse(buf[:end], h)
}

func TestParseRefusals(t *testing.T) {
	cases := []struct {
		name, raw string
		want      *protocolError
	}{
		{"CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", errCLAndTE},
		{"TE and CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", errCLAndTE},
		{"conflicting CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", errConflictingCL},
		{"CL with leading zero differs", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 03\r\n\r\n", errConflictingCL},
		{"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", errInvalidCL},
		{"negative CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -3\r\n\r\n", errInvalidCL},
		{"plus CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", errInvalidCL},
		{"empty CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", errInvalidCL},
		{"huge CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", errInvalidCL},
		{"TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", errUnsupportedTE},
		{"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", errUnsupportedTE},
		{"TE chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", errManyTE},
		{"TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", errTEOnHTTP10},
		{"TE with vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \vchunked\r\n\r\n", errHeaderValue},
		{"space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", errHeaderLine},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", errObsFold},
		{"fold hiding TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nX: b\r\n Transfer-Encoding: chunked\r\n\r\n", errObsFold},
		{"no colon", "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", errHeaderLine},
		{"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", errHeaderLine},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", errHeaderValue},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", errHeaderValue},
		{"missing host", "GET / HTTP/1.1\r\n\r\n", errMissingHost},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", errManyHosts},
		{"bad host", "GET / HTTP/1.1\r\nHost: bad host\r\n\r\n", errBadHost},
		{"host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", errBadHost},
		{"empty first line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", errRequestLine},
		{"double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", errRequestLine},
		{"no version", "GET /\r\nHost: a\r\n\r\n", errRequestLine},
		{"trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", errRequestLine},
		{"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", errRequestLine},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", errVersion},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", errVersion},
		{"method with slash", "GE/T / HTTP/1.1\r\nHost: a\r\n\r\n", errMethod},
		{"control in target", "GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", errTarget},
		{"bad trailer declaration", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n", errBadTrailerHeader},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseString(t, tc.raw)
			if err != tc.want {
				t.Fatalf("parse = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	h, err := parseString(t, "POST /a/b?c=d HTTP/1.1\nhost: example.test:8080\ncontent-LENGTH: 3\nContent-Length: 3\n"+
		"x-custom-header:  v1 \nX-Custom-Header:\tv2\nConnection: keep-alive, Close\nExpect: 100-continue\n\n")
	if err != nil {
		t.Fatal(err)
	}
	if h.method != "POST" || h.target != "/a/b?c=d" || h.host != "example.test:8080" || h.contentLength != 3 || h.chunked {
		t.Fatalf("head = %+v", h)
	}
	if got := h.buildHeader(nil)["X-Custom-Header"]; len(got) != 2 || got[0] != "v1" || got[1] != "v2" {
		t.Fatalf("X-Custom-Header = %q", got)
	}
	if _, ok := h.buildHeader(nil)["Host"]; ok {
		t.Error("Host stays in the header map; net/http moves it to Request.Host")
	}
	if !h.close || !h.expect100 || h.otherExpect {
		t.Errorf("close %v expect100 %v other %v", h.close, h.expect100, h.otherExpect)
	}

	h, err = parseString(t, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nTrailer: x-a, X-B\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if !h.chunked || h.contentLength != -1 || len(h.buildHeader(nil)["Transfer-Encoding"]) != 0 {
		t.Fatalf("chunked head = %+v", h)
	}
	if _, ok := h.trailer["X-A"]; !ok || len(h.trailer) != 2 {
		t.Fatalf("declared trailers = %v", h.trailer)
	}

	// A head parsed after another keeps nothing of it.
	var p parser
	reused := &head{}
	for _, raw := range []string{"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-A: 1\r\n\r\n", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"} {
		if perr := p.parse([]byte(raw), reused); perr != nil {
			t.Fatal(perr)
		}
	}
	if reused.host != "" || reused.close || len(reused.buildHeader(nil)) != 1 {
		t.Fatalf("second head = %+v, header %v", reused, reused.buildHeader(nil))
	}

	h, err = parseString(t, "GET / HTTP/1.0\r\n\r\n")
	if err != nil || !h.http10 || !h.close {
		t.Fatalf("HTTP/1.0 without Host: %+v, %v", h, err)
	}
	h, err = parseString(t, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	if err != nil || h.close {
		t.Fatalf("HTTP/1.0 keep-alive: close %v, %v", h.close, err)
	}
	h, err = parseString(t, "PUT / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n")
	if err != nil || !h.otherExpect {
		t.Fatalf("other expectation: %+v, %v", h, err)
	}
}

func TestRequestURLForms(t *testing.T) {
	cases := []struct {
		raw, path, query, host string
	}{
		{"GET /plain?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", "/plain", "x=1", ""},
		{"GET /esc%20aped?q HTTP/1.1\r\nHost: a\r\n\r\n", "/esc aped", "q", ""},
		{"GET http://proxy.example:81/abs?z HTTP/1.1\r\nHost: a\r\n\r\n", "/abs", "z", "proxy.example:81"},
		{"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "*", "", ""},
		{"CONNECT backend.example:443 HTTP/1.1\r\nHost: backend.example:443\r\n\r\n", "", "", "backend.example:443"},
	}
	for _, tc := range cases {
		h, err := parseString(t, tc.raw)
		if err != nil {
			t.Fatalf("%q: %v", tc.raw, err)
		}
		u, perr := h.requestURL(new(url.URL))
		if perr != nil {
			t.Fatalf("%q: %v", tc.raw, perr)
		}
		if u.Path != tc.path || u.RawQuery != tc.query || u.Host != tc.host {
			t.Errorf("%q: URL %+v", tc.raw, u)
		}
		std, stdErr := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.raw)))
		if stdErr != nil {
			t.Fatalf("net/http refuses %q: %v", tc.raw, stdErr)
		}
		if std.URL.Path != u.Path || std.URL.RawQuery != u.RawQuery || std.URL.Host != u.Host {
			t.Errorf("%q: net/http URL %+v, ours %+v", tc.raw, std.URL, u)
		}
	}
}

func TestFindHeadEndResumes(t *testing.T) {
	full := []byte("GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 100) + "\r\n\r\nnext")
	from := 0
	for n := 1; n <= len(full); n++ {
		end, next := findHeadEnd(full[:n], from)
		if end >= 0 {
			if want := len(full) - len("next"); end != want || n != want {
				t.Fatalf("head ends at %d after %d bytes, want %d", end, n, want)
			}
			return
		}
		from = next
	}
	t.Fatal("head never found")
}

// FuzzParseHead checks the parser against net/http's: whatever head the parser
// accepts, net/http reads the same request from it, framed the same way; so no
// stream can be split into requests differently by the two.
func FuzzParseHead(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x?y HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET http://h/p HTTP/1.1\nHost: h\nX: a\n\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n",
		"CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		end, _ := findHeadEnd(data, 0)
		if end < 0 {
			return
		}
		ours := &head{}
		var p parser
		headBytes := bytes.Clone(data[:end])
		if perr := p.parse(headBytes, ours); perr != nil {
			return
		}
		u, perr := ours.requestURL(new(url.URL))
		if perr != nil {
			return
		}
		std, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			t.Fatalf("we accept a head net/http refuses (%v):\n%q", err, data[:end])
		}
		compareWithNetHTTP(t, ours, u.String(), std, data[:end])
	})
}

func compareWithNetHTTP(t *testing.T, ours *head, ourURL string, std *http.Request, raw []byte) {
	t.Helper()
	host := ours.host
	if std.URL.Host != "" {
		host = std.URL.Host
	}
	stdLength := std.ContentLength
	if len(std.TransferEncoding) > 0 {
		stdLength = -1
	}
	switch {
	case std.Method != ours.method, std.RequestURI != ours.target, std.URL.String() != ourURL:
		t.Fatalf("request line differs: net/http %s %s (%s), ours %s %s (%s)\n%q", std.Method, std.RequestURI, std.URL, ours.method, ours.target, ourURL, raw)
	case std.Host != host:
		t.Fatalf("host differs: net/http %q, ours %q\n%q", std.Host, host, raw)
	case stdLength != ours.contentLength:
		t.Fatalf("framing differs: net/http length %d (%v), ours %d\n%q", std.ContentLength, std.TransferEncoding, ours.contentLength, raw)
	case std.Close != ours.close:
		t.Fatalf("connection persistence differs: net/http close %v, ours %v\n%q", std.Close, ours.close, raw)
	}
	delete(std.Header, "Host")
	oursHeader := ours.buildHeader(nil)
	for k, vv := range std.Header {
		if got := oursHeader[k]; strings.Join(got, "\x00") != strings.Join(vv, "\x00") {
			t.Fatalf("header %s: net/http %q, ours %q\n%q", k, vv, got, raw)
		}
	}
	if len(std.Header) != len(oursHeader) {
		t.Fatalf("header fields: net/http %v, ours %v\n%q", std.Header, oursHeader, raw)
	}
	_, _ = io.Copy(io.Discard, std.Body)
}
