package dataplane

import (
	"bytes"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// BenchmarkIdleHTTP2ConnectionMemory reports, as BenchmarkIdleConnectionMemory does
// for HTTP/1.1, the heap and stacks that 1,000 idle HTTP/2 (h2c) client connections
// hold in the gateway after one request each, less the sockets' own cost. The
// HTTP/2 server is the one SWITCHYARD_HTTP2 chooses.
func BenchmarkIdleHTTP2ConnectionMemory(b *testing.B) {
	opening := h2cOpening(b)
	idleConnectionMemory(b, func(b *testing.B, c net.Conn) { h2AnswerOf(b, c, opening) })
}

// h2cOpening returns what an h2c client sends to open a connection and ask for one
// GET on stream 1: the preface, its SETTINGS and the request's HEADERS.
func h2cOpening(b *testing.B) []byte {
	var out, block bytes.Buffer
	out.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&out, nil)
	enc := hpack.NewEncoder(&block)
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "app.example.com"}, {Name: ":path", Value: "/"}} {
		if err := enc.WriteField(f); err != nil {
			b.Fatal(err)
		}
	}
	if err := fr.WriteSettings(); err != nil {
		b.Fatal(err)
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		b.Fatal(err)
	}
	return out.Bytes()
}

// h2AnswerOf sends the opening on c and reads frames until stream 1 ends, which
// must be with a 302 (the route redirects).
func h2AnswerOf(b *testing.B, c net.Conn, opening []byte) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if _, err := c.Write(opening); err != nil {
		b.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	status := ""
	for range 100 {
		f, err := fr.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		ended := false
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					b.Fatal(err)
				}
			}
		case *http2.MetaHeadersFrame:
			status, ended = f.PseudoValue("status"), f.StreamEnded()
		case *http2.DataFrame:
			ended = f.StreamEnded()
		case *http2.GoAwayFrame:
			b.Fatalf("GOAWAY %v", f.ErrCode)
		}
		if ended {
			if status != "302" {
				b.Fatalf("status %q, want 302", status)
			}
			return
		}
	}
	b.Fatal("stream 1 did not end within 100 frames")
}
