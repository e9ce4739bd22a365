package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// memConn is a net.Conn whose reads replay one byte stream, for measuring the cost
// of the guard without the kernel.
type memConn struct {
	net.Conn
	data []byte
	pos  int
}

func (c *memConn) Read(p []byte) (int, error) {
	if c.pos == len(c.data) {
		return 0, io.EOF
	}
	n := copy(p, c.data[c.pos:])
	c.pos += n
	return n, nil
}

// benchStream is a keep-alive stream of typical requests: a browser-like GET, a POST
// with a 4 KiB body and a chunked upload of 4 KiB.
func benchStream() []byte {
	var b strings.Builder
	body := strings.Repeat("x", 4096)
	for i := range 32 {
		fmt.Fprintf(&b, "GET /static/app-%d.js HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: bench/1.0\r\n"+
			"Accept: */*\r\nAccept-Encoding: gzip, br\r\nCookie: session=%040d\r\n\r\n", i, i)
		fmt.Fprintf(&b, "POST /api/items HTTP/1.1\r\nHost: www.example.test\r\nContent-Type: application/json\r\n"+
			"Content-Length: %d\r\n\r\n%s", len(body), body)
		fmt.Fprintf(&b, "POST /upload HTTP/1.1\r\nHost: www.example.test\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"800\r\n%s\r\n800\r\n%s\r\n0\r\n\r\n", body[:2048], body[:2048])
	}
	return []byte(b.String())
}

func benchmarkRead(b *testing.B, guarded bool) {
	stream := benchStream()
	buf := make([]byte, 4096) // net/http's bufio reader reads 4 KiB at a time
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	mem := &memConn{data: stream}
	var conn net.Conn = mem
	if guarded {
		conn = newGuardConn(mem, 64<<10)
	}
	b.ResetTimer()
	for range b.N {
		mem.pos = 0
		if g := guardOf(conn); g != nil {
			g.tracker.index, g.tracker.state = 0, stateRequestLine
		}
		for {
			if _, err := conn.Read(buf); err != nil {
				break
			}
		}
	}
	b.StopTimer()
	if g := guardOf(conn); g != nil && g.badIndex.Load() >= 0 {
		b.Fatalf("benchmark stream flagged: %s", g.reason)
	}
}

// BenchmarkConnRead is the baseline: reads without the guard.
func BenchmarkConnRead(b *testing.B) { benchmarkRead(b, false) }

// BenchmarkGuardConnRead is the same reads through the framing guard.
func BenchmarkGuardConnRead(b *testing.B) { benchmarkRead(b, true) }

// BenchmarkGuardConnAccept is the per-connection cost of the guard: allocating the
// wrapper and its tracker.
func BenchmarkGuardConnAccept(b *testing.B) {
	b.ReportAllocs()
	mem := &memConn{}
	for range b.N {
		benchSink = newGuardConn(mem, 64<<10)
	}
}

// benchSink keeps the compiler from optimising allocations away.
var benchSink net.Conn

// BenchmarkServerRoundTrip measures whole keep-alive requests over loopback, for
// scale, with each HTTP/1.x server (net/http's with the guard included).
func BenchmarkServerRoundTrip(b *testing.B) {
	for _, mode := range []HTTP1Mode{HTTP1Fast, HTTP1Std} {
		b.Run(string(mode), func(b *testing.B) { benchmarkServerRoundTrip(b, mode) })
	}
}

func benchmarkServerRoundTrip(b *testing.B, mode HTTP1Mode) {
	limits := DefaultLimits()
	limits.HTTP1 = mode
	m := newTestManager(b, limits)
	addr := serveOne(b, m, Spec{Handler: textHandler("ok")})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(conn)
	req := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := conn.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("response: %v %v", resp, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
