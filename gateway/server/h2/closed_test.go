package h2

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
)

// earlyResponder answers without reading the request body, so that the
// server ends the response while the client is still sending and resets
// the stream with NO_ERROR (RFC 9113 §8.1).
var earlyResponder = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "early")
})

// trailersAfterReset plays a client whose body and trailers were already in
// flight when the server's RST_STREAM(NO_ERROR) for stream 1 arrived, then
// asks for stream 3 on the same connection. It returns the GOAWAY the server
// sent, if any, and whether stream 3 got its response; a second RST_STREAM
// for stream 1 (answering the ignored frames) fails the test.
func trailersAfterReset(t *testing.T, addr string) (*http2.GoAwayFrame, bool) {
	t.Helper()
	rc := dialRaw(t, addr)
	rc.request(1, false, "POST", "/upload", "trailer", "x-checksum")
	rc.readUntil("RST_STREAM on stream 1", isRST(1))
	// Frames the client had queued before it saw the reset.
	rc.fr.WriteData(1, false, []byte("more body"))
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.block("x-checksum", "abc"), EndStream: true, EndHeaders: true})
	rc.request(3, true, "GET", "/next")
	for i := 0; i < 1000; i++ {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			return nil, false
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			g := *f
			return &g, false
		case *http2.MetaHeadersFrame:
			if f.StreamID == 3 {
				return nil, true
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				t.Errorf("stream 1 reset again (%v): frames after our reset must be ignored", f.ErrCode)
			}
		}
	}
	return nil, false
}

// TestTrailersAfterServerResetAreIgnored: when a handler answers without
// reading the whole body, the server ends the stream with
// RST_STREAM(NO_ERROR); a client's body and trailers that were already in
// flight are ignored and the connection carries on (a gRPC client-streaming
// call answered early does exactly this). RFC 9113 §5.1 ("closed"): "An
// endpoint MUST ignore frames that it receives on closed streams after it has
// sent a RST_STREAM frame."
func TestTrailersAfterServerResetAreIgnored(t *testing.T) {
	ts := startServer(t, earlyResponder, nil)
	ga, ok := trailersAfterReset(t, ts.addr)
	if ga != nil || !ok {
		t.Fatalf("trailers in flight after our RST_STREAM: GOAWAY %v, next stream answered %v; want the trailers ignored and the connection kept", goAwayString(ga), ok)
	}
}

// TestStreamIDDecreaseIsProtocolError: a HEADERS frame opening a stream id
// lower than one already opened (a stream that was never used) is "an
// unexpected stream identifier", a connection error PROTOCOL_ERROR (RFC 9113
// §5.1.1), not STREAM_CLOSED, which is for streams that were closed.
func TestStreamIDDecreaseIsProtocolError(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	rc := dialRaw(t, ts.addr)
	rc.request(5, true, "GET", "/")
	rc.request(3, true, "GET", "/")
	ga, _ := rc.readUntilEnd()
	if ga == nil || ga.ErrCode != http2.ErrCodeProtocol {
		t.Fatalf("GOAWAY %s, want PROTOCOL_ERROR", goAwayString(ga))
	}
}

// TestSelfDependentStreamIsNotServedAgain: a HEADERS frame whose priority
// makes the stream depend on itself is reset with PROTOCOL_ERROR (RFC 9113
// §5.3.1), and its id counts as used: a second HEADERS on it is ignored as a
// frame on a stream this side reset (§5.1), and its handler never runs. A
// PING after it shows the connection read past it.
func TestSelfDependentStreamIsNotServedAgain(t *testing.T) {
	var served atomic.Int32
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) }), nil)
	rc := dialRaw(t, ts.addr)
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: 1, EndStream: true, EndHeaders: true,
		BlockFragment: rc.block(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/"),
		Priority:      http2.PriorityParam{StreamDep: 1, Weight: 16},
	}); err != nil {
		t.Fatal(err)
	}
	rc.readUntil("RST_STREAM on stream 1", isRST(1))
	rc.request(1, true, "GET", "/again")
	rc.fr.WritePing(false, [8]byte{7})
	for i := 0; i < 1000; i++ {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended before the PING was answered: %v", err)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			return // refusing the connection is acceptable too
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 {
				t.Fatalf("stream 1 served again after it was reset: status %s (handler ran %d times)", f.PseudoValue("status"), served.Load())
			}
		case *http2.PingFrame:
			if f.IsAck() {
				if n := served.Load(); n != 0 {
					t.Fatalf("the handler of the reset stream ran %d times", n)
				}
				return
			}
		}
	}
	t.Fatal("no PING acknowledgement in 1000 frames")
}
