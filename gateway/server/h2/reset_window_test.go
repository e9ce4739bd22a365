package h2

import (
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// resetUploadGetsConnWindowBack uploads half a megabyte on stream 1, whose
// handler has not read it, resets the stream, and reports how much
// connection window the server gave back within wait, beyond its initial
// grant (it advertises 1 MiB windows).
func resetUploadGetsConnWindowBack(t *testing.T, addr string, wait time.Duration) int64 {
	t.Helper()
	rc := dialRaw(t, addr)
	rc.readUntil("server SETTINGS", func(f http2.Frame) bool {
		sf, ok := f.(*http2.SettingsFrame)
		return ok && !sf.IsAck()
	})
	rc.request(1, false, "POST", "/upload")
	chunk := make([]byte, 16384)
	for i := 0; i < resetUploadBytes/len(chunk); i++ {
		rc.fr.WriteData(1, false, chunk)
	}
	rc.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	var got int64
	rc.nc.SetReadDeadline(time.Now().Add(wait))
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			return got - (1<<20 - initialWindow)
		}
		if wu, ok := f.(*http2.WindowUpdateFrame); ok && wu.StreamID == 0 {
			got += int64(wu.Increment)
		}
	}
}

const resetUploadBytes = 512 << 10

// busyUploadHandler does not read the body for a while, as a proxy handler
// still dialing its upstream, and does not watch its context meanwhile.
func busyUploadHandler(release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	})
}

// TestClientResetReturnsConnectionWindow: when the client resets a stream
// whose body is buffered unread, the buffered bytes go back to the connection
// window at once, not when the handler returns; otherwise a client that
// cancels a few uploads to busy handlers would stall all its uploads on that
// connection (net/http's server also gives them back at once).
func TestClientResetReturnsConnectionWindow(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	ts := startServer(t, busyUploadHandler(release), nil)
	got := resetUploadGetsConnWindowBack(t, ts.addr, time.Second)
	if got < resetUploadBytes {
		t.Fatalf("connection window given back within 1s of RST_STREAM for %d unread bytes: %d", resetUploadBytes, got)
	}
}
