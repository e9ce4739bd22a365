package h2

import (
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// stalledWriter is a handler that writes a large body until a write fails,
// and reports when it returned.
type stalledWriter struct {
	written  atomic.Int64
	returned chan error
}

func newStalledWriter() *stalledWriter { return &stalledWriter{returned: make(chan error, 1)} }

func (h *stalledWriter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	buf := make([]byte, 32<<10)
	for i := 0; i < 1<<16; i++ { // at most 2 GiB
		if _, err := w.Write(buf); err != nil {
			h.returned <- err
			return
		}
		h.written.Add(int64(len(buf)))
	}
	h.returned <- nil
}

// resetWhileSocketStalled opens a big flow-control window on rc, asks for a
// large response, stops reading the socket, waits until the server's writes
// stall, resets the stream, and reports how long the handler took to return
// after the reset (or bound, if it did not).
func resetWhileSocketStalled(t *testing.T, rc *rawConn, h *stalledWriter, bound time.Duration) time.Duration {
	t.Helper()
	// Flow control is not what stops the server: the client grants all it can.
	rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	rc.fr.WriteWindowUpdate(0, 1<<31-1-initialWindow)
	rc.request(1, true, "GET", "/big")
	// Wait for the writes to stall on the socket: no progress for 300ms.
	last := int64(-1)
	for i := 0; i < 100; i++ {
		time.Sleep(300 * time.Millisecond)
		n := h.written.Load()
		if n == last && n > 0 {
			break
		}
		last = n
	}
	rc.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	start := time.Now()
	select {
	case <-h.returned:
		return time.Since(start)
	case <-time.After(bound):
		return bound
	}
}

// dialRawSmallBuffer is dialRaw with a small socket receive buffer, so that
// the server's writes stall soon once the client stops reading.
func dialRawSmallBuffer(t *testing.T, addr string) *rawConn {
	t.Helper()
	rc := dialRaw(t, addr)
	if tc, ok := rc.nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	return rc
}

// TestClientResetReleasesHandlerBlockedBySlowReader: when the client stops
// reading, the handler that wrote last must not stay blocked in the socket
// write (where nothing aimed at its stream could reach it) until
// WriteByteTimeout, 60 s by default in the gateway; it hands the write over
// to a flusher goroutine, and the client's RST_STREAM releases it at once,
// as in x/net/http2.
func TestClientResetReleasesHandlerBlockedBySlowReader(t *testing.T) {
	h := newStalledWriter()
	ts := startServer(t, h, func(c *Config) { c.WriteByteTimeout = 60 * time.Second })
	took := resetWhileSocketStalled(t, dialRawSmallBuffer(t, ts.addr), h, 5*time.Second)
	if took >= 5*time.Second {
		t.Fatalf("handler still blocked in Write 5s after the client reset its stream (wrote %d MiB first)", h.written.Load()>>20)
	}
	// Let the connection die so that the flusher is released at cleanup.
}

// TestWriteTimeoutReleasesHandlerBlockedBySlowReader: the same with the
// stream's WriteTimeout instead of a client reset.
func TestWriteTimeoutReleasesHandlerBlockedBySlowReader(t *testing.T) {
	h := newStalledWriter()
	ts := startServer(t, h, func(c *Config) {
		c.WriteByteTimeout = 60 * time.Second
		c.WriteTimeout = 2 * time.Second
	})
	rc := dialRawSmallBuffer(t, ts.addr)
	rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	rc.fr.WriteWindowUpdate(0, 1<<31-1-initialWindow)
	start := time.Now()
	rc.request(1, true, "GET", "/big")
	select {
	case <-h.returned:
	case <-time.After(8 * time.Second):
		t.Fatalf("handler still blocked in Write %v after it started, WriteTimeout 2s (wrote %d MiB)", time.Since(start).Round(time.Second), h.written.Load()>>20)
	}
}

// TestZeroStreamWindowStallResetsStream: a client that grants no
// flow-control window (SETTINGS_INITIAL_WINDOW_SIZE 0) and then goes silent
// must not pin the handlers that write a body: no output waits on the
// socket, so the socket's WriteByteTimeout never starts, and IdleTimeout
// does not apply while streams are open. The gateway documents
// HTTP2WriteByteTimeout as what bounds stalled HTTP/2 readers, so a writer
// that waited that long for window has its stream reset (RST_STREAM CANCEL)
// and its write fails.
func TestZeroStreamWindowStallResetsStream(t *testing.T) {
	h := newStalledWriter()
	ts := startServer(t, h, func(c *Config) { c.WriteByteTimeout = time.Second })
	rc := dialRaw(t, ts.addr)
	rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	rc.request(1, true, "GET", "/big")
	// The client now reads nothing more and sends nothing more.
	expectWindowStallReset(t, rc, h, time.Second)
}

// TestZeroConnectionWindowStallResetsStream: the same when the stream has
// window but the connection has none: the client never returns the
// connection window its first 64 KiB used.
func TestZeroConnectionWindowStallResetsStream(t *testing.T) {
	h := newStalledWriter()
	ts := startServer(t, h, func(c *Config) { c.WriteByteTimeout = time.Second })
	rc := dialRaw(t, ts.addr)
	rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	rc.request(1, true, "GET", "/big")
	expectWindowStallReset(t, rc, h, time.Second)
}

// expectWindowStallReset checks that h's write fails about timeout after
// the window ran out, and that the client then reads RST_STREAM CANCEL.
func expectWindowStallReset(t *testing.T, rc *rawConn, h *stalledWriter, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	select {
	case err := <-h.returned:
		if err == nil {
			t.Fatal("handler wrote its whole body without window")
		}
		if took := time.Since(start); took < timeout/2 {
			t.Fatalf("handler released after %v, before the timeout %v", took, timeout)
		}
	case <-time.After(6 * timeout):
		t.Fatalf("handler still blocked on a zero flow-control window %v after the request, with WriteByteTimeout %v (wrote %d bytes)", 6*timeout, timeout, h.written.Load())
	}
	f := rc.readUntil("RST_STREAM", isRST(1)).(*http2.RSTStreamFrame)
	if f.ErrCode != http2.ErrCodeCancel {
		t.Fatalf("stream reset with %v, want CANCEL", f.ErrCode)
	}
}
