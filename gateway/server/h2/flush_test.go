package h2

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// startTLSServer serves h over TLS on 127.0.0.1 and returns the server and
// a client config that trusts it.
func startTLSServer(t *testing.T, h http.Handler, mod func(*Config)) (*testServer, *tls.Config) {
	t.Helper()
	serverTLS, clientTLS := selfSignedTLS(t)
	clientTLS.ServerName = "127.0.0.1"
	ts := startServerWrapped(t, h, mod, func(nc net.Conn) net.Conn {
		tc := tls.Server(nc, serverTLS)
		tc.SetDeadline(time.Now().Add(ioBound))
		tc.Handshake()
		tc.SetDeadline(time.Time{})
		return tc
	})
	return ts, clientTLS
}

// dialTLSSmallBuffer dials addr over TLS with a small socket receive buffer,
// so that the server's writes stall soon when the client stops reading.
func dialTLSSmallBuffer(t *testing.T, addr string, cfg *tls.Config) (*tls.Conn, error) {
	raw, err := net.DialTimeout("tcp", addr, ioBound)
	if err != nil {
		return nil, err
	}
	raw.(*net.TCPConn).SetReadBuffer(4096)
	tc := tls.Client(raw, cfg)
	tc.SetDeadline(time.Now().Add(ioBound))
	if err := tc.Handshake(); err != nil {
		raw.Close()
		return nil, err
	}
	return tc, nil
}

// TestClientResetReleasesHandlerBlockedBySlowReaderTLS is the same over
// TLS, where a write that times out breaks the connection, so handlers do
// not write to the socket themselves at all.
func TestClientResetReleasesHandlerBlockedBySlowReaderTLS(t *testing.T) {
	h := newStalledWriter()
	ts, clientTLS := startTLSServer(t, h, func(c *Config) { c.WriteByteTimeout = 60 * time.Second })
	nc, err := dialTLSSmallBuffer(t, ts.addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	rc := rawClientConn(t, nc)
	took := resetWhileSocketStalled(t, rc, h, 5*time.Second)
	if took >= 5*time.Second {
		t.Fatalf("handler still blocked in Write 5s after the client reset its stream (wrote %d MiB first)", h.written.Load()>>20)
	}
}

// TestTLSConnectionSurvivesPausedReader: a client that stops reading for a
// while, long enough for the server's socket writes to stall, and then reads
// on gets its whole response. On TLS a write that times out breaks the
// connection for good, so no write may be cut short by the short deadline
// handlers use on plain connections.
func TestTLSConnectionSurvivesPausedReader(t *testing.T) {
	const size = 16 << 20
	chunk := make([]byte, 64<<10)
	ts, clientTLS := startTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}), nil)
	nc, err := tls.Dial("tcp", ts.addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(ioBound))
	rc := rawClientConn(t, nc)
	rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	rc.fr.WriteWindowUpdate(0, 1<<31-1-initialWindow)
	rc.request(1, true, "GET", "/")
	time.Sleep(300 * time.Millisecond)
	got := 0
	rc.readUntil("the end of the response", func(f http2.Frame) bool {
		if d, ok := f.(*http2.DataFrame); ok && d.StreamID == 1 {
			got += len(d.Data())
			return d.StreamEnded()
		}
		return false
	})
	if got != size {
		t.Fatalf("read %d bytes of %d", got, size)
	}
}

// TestUnreadOutputIsBoundedByConcurrentStreams: a client that sends
// requests but never reads its socket must not make the server buffer every
// response. Handlers writing a body wait for room in the output buffer; a
// response with no body (204, 304, redirects, errors, HEAD), or the
// RST_STREAM(NO_ERROR) after an early answer, does not, so its stream stays
// counted as open until the buffer holding its end goes to the socket, and
// SETTINGS_MAX_CONCURRENT_STREAMS bounds what is queued. A client that
// keeps opening streams then is refused, and then cut off as a flood;
// either way, the output held stays small.
func TestUnreadOutputIsBoundedByConcurrentStreams(t *testing.T) {
	const requests = 20000
	pad := strings.Repeat("p", 2000)
	var gauge atomic.Pointer[writeGauge]
	ts := startServerWrapped(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A response header that differs per request (a cookie, an id), so
		// HPACK cannot shrink it to an index.
		w.Header().Set("X-Pad", r.URL.Path+pad)
		w.WriteHeader(http.StatusNoContent)
	}), func(c *Config) { c.WriteByteTimeout = 60 * time.Second }, func(nc net.Conn) net.Conn {
		gauge.Store(&writeGauge{Conn: nc})
		return gauge.Load()
	})
	rc := dialRaw(t, ts.addr)
	if tc, ok := rc.nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	c := ts.onlyConn(t)

	stopSampling := sampleHeldOutput(c, gauge.Load())
	handled := func(id uint32) func() bool {
		return func() bool {
			c.smu.Lock()
			defer c.smu.Unlock()
			return c.dead || c.maxStreamID == id && c.running == 0
		}
	}
	sent := 0
	for i := 0; i < requests; i++ {
		id := uint32(2*i + 1)
		err := rc.fr.WriteHeaders(http2.HeadersFrameParam{
			StreamID: id, EndStream: true, EndHeaders: true,
			BlockFragment: rc.block(":method", "GET", ":scheme", "http", ":authority", "example.com", ":path", fmt.Sprintf("/%d", i)),
		})
		if err != nil {
			// The server cut the connection off.
			t.Logf("request %d: %v", i, err)
			waitFor(t, "the server to close the connection", func() bool {
				c.smu.Lock()
				defer c.smu.Unlock()
				return c.dead
			})
			break
		}
		sent++
		if i%100 == 99 {
			// Stay under SETTINGS_MAX_CONCURRENT_STREAMS, as a client that
			// paces itself by time would.
			waitFor(t, "a batch to be handled", handled(id))
		}
	}
	// Wait until the server has handled every request (or gave up on the
	// connection, which is fine too).
	if sent > 0 {
		waitFor(t, "the server to handle the requests", handled(uint32(2*sent-1)))
	}
	peak := stopSampling()
	t.Logf("socket accepted %d KiB", gauge.Load().written.Load()>>10)
	t.Logf("%d requests sent: output held (unflushed + in a blocked socket write) peaked at %d KiB", sent, peak>>10)
	if peak > 4<<20 {
		t.Fatalf("server buffers %d MiB of output for a client that does not read; want it bounded (highWater is %d KiB)",
			peak>>20, highWater>>10)
	}
}

// sampleHeldOutput samples, every millisecond, the output c holds: unflushed,
// and handed to a socket write still in progress. The function it returns
// stops sampling and returns the largest amount seen, including now.
func sampleHeldOutput(c *conn, gauge *writeGauge) func() int64 {
	held := func() int64 {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return int64(len(c.out.b)) + gauge.inWrite.Load()
	}
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if n := held(); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() int64 {
		close(stop)
		wg.Wait()
		return max(peak.Load(), held())
	}
}

// TestStreamEndFreesSlotBeforeClientSeesIt: a stream held open while its
// last frames wait in the output buffer is released before they are
// written, so a client at SETTINGS_MAX_CONCURRENT_STREAMS that opens a
// stream as soon as it sees another end is never refused.
func TestStreamEndFreesSlotBeforeClientSeesIt(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}), func(c *Config) { c.MaxConcurrentStreams = 1 })
	rc := dialRaw(t, ts.addr)
	for i := 0; i < 500; i++ {
		id := uint32(2*i + 1)
		rc.request(id, true, "GET", "/")
		f := rc.readUntil("the response", func(f http2.Frame) bool {
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				return f.StreamID == id && f.StreamEnded()
			case *http2.RSTStreamFrame:
				return f.StreamID == id
			}
			return false
		})
		if r, ok := f.(*http2.RSTStreamFrame); ok {
			t.Fatalf("request %d: stream reset with %v", i, r.ErrCode)
		}
	}
}
