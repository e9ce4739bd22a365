package server

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// forEachHTTP2Mode runs f against a socket served with each HTTP/2 server, so
// that what a handler and a client see can be compared.
func forEachHTTP2Mode(t *testing.T, mod func(*Limits), h http.Handler, f func(t *testing.T, addr string)) {
	for _, mode := range []HTTP2Mode{HTTP2Std, HTTP2Fast} {
		t.Run(string(mode), func(t *testing.T) {
			l := DefaultLimits()
			l.HTTP1, l.HTTP2 = HTTP1Fast, mode
			if mod != nil {
				mod(&l)
			}
			f(t, serveOne(t, newTestManager(t, l), Spec{Port: 0, Handler: h}))
		})
	}
}

// h2cClientFor returns a client speaking h2c with prior knowledge.
func h2cClientFor(t *testing.T) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: testTimeout}
}

// TestHTTP2HandlerViewMatchesStd: the request a handler sees and the response a
// client gets agree between the two HTTP/2 servers: Expect: 100-continue and
// Trailer are taken out of r.Header, and a body without Content-Type gets a
// sniffed one.
func TestHTTP2HandlerViewMatchesStd(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "<html><body>expect="+r.Header.Get("Expect")+" trailer="+r.Header.Get("Trailer"))
	})
	forEachHTTP2Mode(t, nil, h, func(t *testing.T, addr string) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader("x"))
		req.Header.Set("Expect", "100-continue")
		req.Trailer = http.Header{"X-Sum": nil}
		res, err := h2cClientFor(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(b) != "<html><body>expect= trailer=" || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("%s: body %q, Content-Type %q", res.Proto, b, res.Header.Get("Content-Type"))
		}
	})
}

// TestHTTP2OversizedHeaderListGets431: a header list over MaxHeaderBytes is
// answered 431 and the connection carries on, with either HTTP/2 server.
func TestHTTP2OversizedHeaderListGets431(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mod := func(l *Limits) { l.MaxHeaderBytes = 4096 }
	forEachHTTP2Mode(t, mod, h, func(t *testing.T, addr string) {
		nc, err := net.DialTimeout("tcp", addr, testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(testTimeout))
		fr := http2.NewFramer(nc, nc)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
			t.Fatal(err)
		}
		if err := fr.WriteSettings(); err != nil {
			t.Fatal(err)
		}
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		big := strings.Repeat("a", 1500)
		// The first request carries four big fields, over the limit; the second
		// none, on the same connection.
		for i, n := range []int{4, 0} {
			hb.Reset()
			for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}} {
				enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
			}
			for j := 0; j < n; j++ {
				enc.WriteField(hpack.HeaderField{Name: "x-big", Value: big})
			}
			id := uint32(1 + 2*i)
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
			want := map[int]string{0: "431", 1: "200"}[i]
			answered := false
			for range 50 {
				f, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("stream %d: %v", id, err)
				}
				if mh, ok := f.(*http2.MetaHeadersFrame); ok && mh.StreamID == id {
					if got := mh.PseudoValue("status"); got != want {
						t.Fatalf("stream %d: status %s, want %s", id, got, want)
					}
					answered = true
					break
				}
			}
			if !answered {
				t.Fatalf("stream %d: no answer within 50 frames", id)
			}
		}
	})
}
