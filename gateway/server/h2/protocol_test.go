package h2

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// blockingHandler blocks every request until release is closed and counts
// the requests it saw.
func blockingHandler(release <-chan struct{}, calls *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-release
		io.WriteString(w, "done")
	})
}

func TestRefusedStreamAboveMaxConcurrent(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var calls atomic.Int32
	ts := startServer(t, blockingHandler(release, &calls), func(c *Config) { c.MaxConcurrentStreams = 2 })
	rc := dialRaw(t, ts.addr)
	rc.request(1, true, "GET", "/")
	rc.request(3, true, "GET", "/")
	rc.request(5, true, "GET", "/")
	f := rc.readUntil("RST_STREAM on stream 5", isRST(5)).(*http2.RSTStreamFrame)
	if f.ErrCode != http2.ErrCodeRefusedStream {
		t.Fatalf("stream 5 reset with %v, want REFUSED_STREAM", f.ErrCode)
	}
	waitFor(t, "two handlers", func() bool { return calls.Load() == 2 })
}

func TestRapidResetGetsEnhanceYourCalm(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var calls atomic.Int32
	// The handler ignores cancellation, as a slow handler would.
	ts := startServer(t, blockingHandler(release, &calls), func(c *Config) { c.MaxConcurrentStreams = 4 })
	rc := dialRaw(t, ts.addr)
	var sendErr error
	for i := 0; i < 100 && sendErr == nil; i++ {
		id := uint32(2*i + 1)
		sendErr = rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndStream: true, EndHeaders: true,
			BlockFragment: rc.block(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/")})
		if sendErr == nil {
			sendErr = rc.fr.WriteRSTStream(id, http2.ErrCodeCancel)
		}
	}
	ga, _ := rc.readUntilEnd()
	if ga == nil || ga.ErrCode != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("GOAWAY %+v, want ENHANCE_YOUR_CALM", ga)
	}
	if n := calls.Load(); n > 8 {
		t.Errorf("%d handlers started, want at most 2×MaxConcurrentStreams", n)
	}
}

func TestMalformedRequestsNeverReachHandler(t *testing.T) {
	var calls atomic.Int32
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/good" {
			calls.Add(1)
		}
	}), nil)
	base := []string{":method", "GET", ":scheme", "http", ":authority", "a.test"}
	cases := map[string][]string{
		"uppercase":      append(append([]string{}, base...), ":path", "/", "X-Upper", "1"),
		"connection":     append(append([]string{}, base...), ":path", "/", "connection", "close"),
		"missing path":   base,
		"te gzip":        append(append([]string{}, base...), ":path", "/", "te", "gzip"),
		"pseudo after":   {":method", "GET", "x-a", "1", ":scheme", "http", ":path", "/"},
		"unknown pseudo": append(append([]string{}, base...), ":path", "/", ":foo", "x"),
		"dup pseudo":     append(append([]string{}, base...), ":path", "/", ":path", "/x"),
		"upgrade":        append(append([]string{}, base...), ":path", "/", "upgrade", "h2c"),
		"bad value":      append(append([]string{}, base...), ":path", "/", "x-a", "a\nb"),
		"no method":      {":scheme", "http", ":path", "/"},
	}
	rc := dialRaw(t, ts.addr)
	id := uint32(1)
	for name, kv := range cases {
		rc.rawHeaders(id, true, kv...)
		f := rc.readUntil("RST_STREAM for "+name, isRST(id)).(*http2.RSTStreamFrame)
		if f.ErrCode != http2.ErrCodeProtocol {
			t.Errorf("%s: reset with %v, want PROTOCOL_ERROR", name, f.ErrCode)
		}
		id += 2
	}
	// The connection still serves a well-formed request.
	rc.request(id, true, "GET", "/good")
	rc.readUntil("response", func(f http2.Frame) bool {
		h, ok := f.(*http2.MetaHeadersFrame)
		return ok && h.StreamID == id
	})
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d malformed requests reached the handler", n)
	}
}

func TestContentLengthMismatchIsProtocolError(t *testing.T) {
	var calls atomic.Int32
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if _, err := io.ReadAll(r.Body); err == nil {
			w.Header().Set("X-Body", "complete")
		}
	}), nil)
	rc := dialRaw(t, ts.addr)
	rc.request(1, false, "POST", "/", "content-length", "3")
	rc.fr.WriteData(1, true, []byte("four"))
	f := rc.readUntil("RST_STREAM", isRST(1)).(*http2.RSTStreamFrame)
	if f.ErrCode != http2.ErrCodeProtocol {
		t.Fatalf("reset with %v, want PROTOCOL_ERROR", f.ErrCode)
	}
}

func TestOversizedHeadersCloseConnection(t *testing.T) {
	var calls atomic.Int32
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }),
		func(c *Config) { c.MaxHeaderBytes = 4096 })
	rc := dialRaw(t, ts.addr)
	rc.request(1, true, "GET", "/", "x-big", strings.Repeat("a", 5000))
	ga, _ := rc.readUntilEnd()
	if ga == nil || ga.ErrCode == http2.ErrCodeNo {
		t.Fatalf("GOAWAY %+v, want an error code", ga)
	}
	if calls.Load() != 0 {
		t.Fatal("oversized request reached the handler")
	}
}

func TestContinuationFloodClosesConnection(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	rc := dialRaw(t, ts.addr)
	// One field that fills a frame; the flood repeats it in CONTINUATION
	// frames that never end the header block.
	var b bytes.Buffer
	hpack.NewEncoder(&b).WriteField(hpack.HeaderField{Name: "x-flood", Value: strings.Repeat("f", 16000)})
	frag := b.Bytes()
	const frames = 4000 // 64 MB: far beyond any socket buffering
	writeErr := make(chan error, 1)
	go func() {
		err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.block(
			":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/")})
		for i := 0; i < frames && err == nil; i++ {
			err = rc.fr.WriteContinuation(1, false, frag)
		}
		writeErr <- err
	}()
	rc.readUntilEnd()
	if err := <-writeErr; err == nil {
		t.Fatal("server read the whole CONTINUATION flood instead of closing")
	}
}

func TestDataBeyondWindowIsFlowControlError(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var calls atomic.Int32
	ts := startServer(t, blockingHandler(release, &calls), func(c *Config) { c.MaxReceiveBufferPerStream = 65535 })
	rc := dialRaw(t, ts.addr)
	rc.request(1, false, "POST", "/")
	chunk := make([]byte, 16384)
	for i := 0; i < 4; i++ { // 65536 bytes: one more than the window
		if err := rc.fr.WriteData(1, false, chunk); err != nil {
			t.Fatal(err)
		}
	}
	f := rc.readUntil("RST_STREAM", isRST(1)).(*http2.RSTStreamFrame)
	if f.ErrCode != http2.ErrCodeFlowControl {
		t.Fatalf("reset with %v, want FLOW_CONTROL_ERROR", f.ErrCode)
	}
}

func TestWindowUpdateOverflowIsFlowControlError(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	rc := dialRaw(t, ts.addr)
	rc.fr.WriteWindowUpdate(0, 1<<31-1)
	ga, _ := rc.readUntilEnd()
	if ga == nil || ga.ErrCode != http2.ErrCodeFlowControl {
		t.Fatalf("GOAWAY %+v, want FLOW_CONTROL_ERROR", ga)
	}
}

func TestStreamIDRules(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	for name, ids := range map[string][]uint32{"even": {2}, "decreasing": {5, 3}} {
		rc := dialRaw(t, ts.addr)
		for _, id := range ids {
			rc.request(id, true, "GET", "/")
		}
		ga, _ := rc.readUntilEnd()
		if ga == nil || ga.ErrCode == http2.ErrCodeNo {
			t.Errorf("%s stream ids: GOAWAY %+v, want an error", name, ga)
		}
	}
}

func TestPushPromiseFromClientIsProtocolError(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	rc := dialRaw(t, ts.addr)
	rc.request(1, false, "POST", "/")
	rc.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: rc.block(":method", "GET"), EndHeaders: true})
	ga, _ := rc.readUntilEnd()
	if ga == nil || ga.ErrCode != http2.ErrCodeProtocol {
		t.Fatalf("GOAWAY %+v, want PROTOCOL_ERROR", ga)
	}
}

func TestPingAndSettingsAreAcked(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	rc := dialRaw(t, ts.addr)
	rc.readUntil("SETTINGS ack", func(f http2.Frame) bool {
		s, ok := f.(*http2.SettingsFrame)
		return ok && s.IsAck()
	})
	rc.fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	rc.readUntil("PING ack", func(f http2.Frame) bool {
		p, ok := f.(*http2.PingFrame)
		return ok && p.IsAck() && p.Data == [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	})
}

func TestPingFloodClosesConnection(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	rc := dialRaw(t, ts.addr)
	// Many PINGs written in large batches, with no reading meanwhile: the
	// acks back up, and the server must give up rather than queue them all.
	batch := bytes.Repeat([]byte{0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, 4096)
	writeErr := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < 2000 && err == nil; i++ { // at most 8 million PINGs
			_, err = rc.nc.Write(batch)
		}
		writeErr <- err
	}()
	if err := <-writeErr; err == nil {
		t.Fatal("server absorbed the PING flood")
	}
}

func TestBadPrefaceCloses(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), nil)
	nc, err := net.DialTimeout("tcp", ts.addr, ioBound)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(ioBound))
	nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	buf := make([]byte, 100)
	n, err := nc.Read(buf)
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read %q, %v; want the connection closed without a reply", buf[:n], err)
	}
}

func TestReadHeaderTimeoutCloses(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		func(c *Config) { c.ReadHeaderTimeout = 50 * time.Millisecond })
	nc, err := net.DialTimeout("tcp", ts.addr, ioBound)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(ioBound))
	nc.Write([]byte(http2.ClientPreface[:10]))
	n, err := nc.Read(make([]byte, 100))
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read %d bytes, %v; want the connection closed", n, err)
	}
}

func TestPeerInitialWindowChangesApplyToOpenStreams(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), 100))
		w.(http.Flusher).Flush()
	}), nil)
	rc := dialRaw(t, ts.addr)
	rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	// Wait until the server has applied the zero window, then open a stream.
	rc.readUntil("SETTINGS ack", func(f http2.Frame) bool {
		s, ok := f.(*http2.SettingsFrame)
		return ok && s.IsAck()
	})
	rc.request(1, true, "GET", "/")
	rc.readUntil("response HEADERS", func(f http2.Frame) bool {
		if d, ok := f.(*http2.DataFrame); ok && len(d.Data()) > 0 {
			t.Fatalf("DATA sent with a zero window")
		}
		h, ok := f.(*http2.MetaHeadersFrame)
		return ok && h.StreamID == 1
	})
	// Raising the initial window to 30 lets exactly 30 bytes through; a
	// WINDOW_UPDATE then releases the rest.
	rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 30})
	got := 0
	countData := func(f http2.Frame) {
		if d, ok := f.(*http2.DataFrame); ok {
			got += len(d.Data())
		}
	}
	rc.readUntil("30 bytes", func(f http2.Frame) bool {
		countData(f)
		return got >= 30
	})
	// A PING round trip gives a server that oversteps the window the chance
	// to show it; the total below catches any excess that comes later.
	rc.fr.WritePing(false, [8]byte{9})
	rc.readUntil("PING ack", func(f http2.Frame) bool {
		countData(f)
		p, ok := f.(*http2.PingFrame)
		return ok && p.IsAck()
	})
	if got != 30 {
		t.Fatalf("%d bytes after the window grew to 30", got)
	}
	rc.fr.WriteWindowUpdate(1, 70)
	rc.readUntil("END_STREAM", func(f http2.Frame) bool {
		if d, ok := f.(*http2.DataFrame); ok {
			got += len(d.Data())
			return d.StreamEnded()
		}
		return false
	})
	if got != 100 {
		t.Fatalf("%d bytes in all, want 100", got)
	}
}

func TestDataBeyondConnectionWindowIsFlowControlError(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var calls atomic.Int32
	ts := startServer(t, blockingHandler(release, &calls), func(c *Config) {
		c.MaxReceiveBufferPerConnection = 65535
		c.MaxReceiveBufferPerStream = 1 << 20
	})
	rc := dialRaw(t, ts.addr)
	chunk := make([]byte, 16384)
	for _, id := range []uint32{1, 3} {
		rc.request(id, false, "POST", "/")
		for i := 0; i < 2; i++ { // 2×2×16384 bytes: more than the 65535 granted
			if err := rc.fr.WriteData(id, false, chunk); err != nil {
				t.Fatal(err)
			}
		}
	}
	ga, _ := rc.readUntilEnd()
	if ga == nil || ga.ErrCode != http2.ErrCodeFlowControl {
		t.Fatalf("GOAWAY %+v, want FLOW_CONTROL_ERROR", ga)
	}
}
