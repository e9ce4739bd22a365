package h2

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestReadBodyBuffersAreReleased: a request body buffer that a burst grew
// is let go once the handler has read it. The connection window bounds the
// bytes buffered unread at any moment (1 MiB by default), but a buffer that
// kept its capacity would not be: a client sends each of many streams a full
// stream window (1 MiB) that the handler reads a moment later, and each
// stream would then hold a 1 MiB buffer while its handler waits (for a slow
// upstream, say): with the default 250 streams, 250 MiB per connection from a
// client that never exceeded its windows.
func TestReadBodyBuffersAreReleased(t *testing.T) {
	const (
		streams = 24
		window  = 1 << 20 // the default stream and connection windows
	)
	var read [streams]chan struct{}
	for i := range read {
		read[i] = make(chan struct{})
	}
	readDone := make(chan int, streams)
	release := make(chan struct{})
	defer close(release)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		select {
		case <-read[i]:
		case <-r.Context().Done():
			return
		}
		io.Copy(io.Discard, r.Body) // reads in 32 KiB pieces
		readDone <- i
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}), nil)
	rc := dialRaw(t, ts.addr)
	c := ts.onlyConn(t)

	// Track the connection window the server grants us.
	var connWindow atomic.Int64
	connWindow.Store(initialWindow)
	go func() {
		for {
			f, err := rc.fr.ReadFrame()
			if err != nil {
				return
			}
			if wu, ok := f.(*http2.WindowUpdateFrame); ok && wu.StreamID == 0 {
				connWindow.Add(int64(wu.Increment))
			}
		}
	}()
	chunk := make([]byte, maxFrameRead)
	for i := 0; i < streams; i++ {
		waitFor(t, "the connection window to come back", func() bool { return connWindow.Load() >= window })
		id := uint32(2*i + 1)
		rc.request(id, false, "POST", "/"+strconv.Itoa(i))
		for sent := 0; sent < window; sent += len(chunk) {
			if err := rc.fr.WriteData(id, sent+len(chunk) == window, chunk); err != nil {
				t.Fatal(err)
			}
		}
		connWindow.Add(-window)
		// Let the handler read once the whole body is buffered.
		waitFor(t, "the body to be buffered", func() bool {
			c.smu.Lock()
			st := c.streams[id]
			c.smu.Unlock()
			if st == nil {
				return false
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			return len(st.buf)-st.off == window
		})
		close(read[i])
		select {
		case <-readDone:
		case <-time.After(ioBound):
			t.Fatal("handler did not read its body")
		}
	}
	// Every body has been read; the handlers wait.
	retained := 0
	c.smu.Lock()
	for _, st := range c.streams {
		st.mu.Lock()
		retained += cap(st.buf)
		st.mu.Unlock()
	}
	c.smu.Unlock()
	t.Logf("%d streams, all bodies read: %d bytes of body buffers retained", streams, retained)
	if retained > 2*window {
		t.Fatalf("%d MiB of request body buffers retained after the handlers read everything; want at most about a connection window (%d MiB)",
			retained>>20, window>>20)
	}
}
