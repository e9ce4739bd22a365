package backend

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// nginxHead is the head of a small answer as nginx sends it, with the few fields a
// service behind it adds; its names are in mixed case, as backends write them.
const nginxHead = "HTTP/1.1 200 OK\r\n" +
	"Server: nginx/1.25.3\r\n" +
	"Date: Fri, 27 Nov 2026 12:00:00 GMT\r\n" +
	"Content-Type: application/json\r\n" +
	"Content-Length: 2\r\n" +
	"Connection: keep-alive\r\n" +
	"x-request-id: 4f1c2a7e-9b3d-4c55-8e21-0d6f7a9b1c3e\r\n" +
	"X-Frame-Options: DENY\r\n" +
	"Cache-Control: no-cache\r\n" +
	"\r\n"

// BenchmarkParseResponseHead parses nginxHead, copied afresh each time since the
// parser canonicalizes names in place.
func BenchmarkParseResponseHead(b *testing.B) {
	buf := make([]byte, len(nginxHead))
	b.ReportAllocs()
	b.SetBytes(int64(len(nginxHead)))
	for b.Loop() {
		copy(buf, nginxHead)
		r, err := parseResponseHead(buf)
		if err != nil || r.res.StatusCode != http.StatusOK {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseResponseHeadCookies parses the head of an answer that sets three
// cookies, a name repeated as web applications repeat it.
func BenchmarkParseResponseHeadCookies(b *testing.B) {
	head := strings.Replace(nginxHead, "Cache-Control: no-cache\r\n", "Set-Cookie: session=4f1c2a7e; Path=/; HttpOnly\r\n"+
		"Set-Cookie: csrf=9b3d4c55; Path=/\r\nSet-Cookie: theme=dark; Path=/\r\n", 1)
	buf := make([]byte, len(head))
	b.ReportAllocs()
	b.SetBytes(int64(len(head)))
	for b.Loop() {
		copy(buf, head)
		r, err := parseResponseHead(buf)
		if err != nil || len(r.res.Header["Set-Cookie"]) != 3 {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendHeader writes the head of a proxied GET into a reused buffer.
func BenchmarkAppendHeader(b *testing.B) {
	req := benchRequest(b, "http://backend.internal/api/items?limit=10")
	cc := &clientConn{}
	buf := make([]byte, 0, clientBufferSize)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = cc.appendHeader(buf[:0], req); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRequest(b *testing.B, url string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "curl/8.5.0")
	req.Header.Set("X-Forwarded-For", "192.0.2.1")
	req.Header.Set("X-Forwarded-Proto", "http")
	req.Header.Set("X-Request-Id", "4f1c2a7e-9b3d-4c55-8e21-0d6f7a9b1c3e")
	return req
}

// cannedServer answers every request head read on a loopback connection with
// answer, and returns the server's URL. It allocates nothing per request, so that a
// benchmark's allocations are the client's.
func cannedServer(b *testing.B, answer string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveCanned(c, []byte(answer))
		}
	}()
	return "http://" + ln.Addr().String()
}

// serveCanned writes answer for every "\r\n\r\n" that ends a request head on c,
// wherever the reads split it; the benchmark's requests have no body.
func serveCanned(c net.Conn, answer []byte) {
	defer c.Close()
	const end = "\r\n\r\n"
	buf := make([]byte, 4096)
	matched := 0
	for {
		n, err := c.Read(buf)
		for _, ch := range buf[:n] {
			switch {
			case ch == end[matched]:
				matched++
			case ch == '\r':
				matched = 1
			default:
				matched = 0
			}
			if matched == len(end) {
				matched = 0
				if _, err := c.Write(answer); err != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// BenchmarkFastClientRoundTrip sends a GET over loopback and reads its answer to
// the end, with the body framed by length and by chunks, and a body of 3 KB that
// arrives with the head.
func BenchmarkFastClientRoundTrip(b *testing.B) {
	large := strings.Repeat("x", 3000)
	for _, bc := range []struct{ name, answer, body string }{
		{"length", nginxHead + "{}", "{}"},
		{"chunked", strings.Replace(nginxHead, "Content-Length: 2", "Transfer-Encoding: chunked", 1) + "2\r\n{}\r\n0\r\n\r\n", "{}"},
		{"length-3k", strings.Replace(nginxHead, "Content-Length: 2", "Content-Length: 3000", 1) + large, large},
	} {
		b.Run(bc.name, func(b *testing.B) {
			url := cannedServer(b, bc.answer)
			o := Options{}.withDefaults()
			f := newFastTransport(o, newHTTP1Transport(o))
			b.Cleanup(f.CloseIdleConnections)
			req := benchRequest(b, url+"/api/items?limit=10")
			buf := make([]byte, len(bc.body)+1)
			b.ReportAllocs()
			for b.Loop() {
				res, err := f.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.ReadFull(res.Body, buf)
				res.Body.Close()
				if n != len(bc.body) {
					b.Fatalf("body of %d bytes", n)
				}
			}
		})
	}
}
