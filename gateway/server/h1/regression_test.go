package h1

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWatcherByteFollowsBufferedBytes: while a slow handler runs, the client watcher
// reads the next byte from the socket; it must be placed after the bytes of a
// pipelined request already buffered, which arrived before it.
func TestWatcherByteFollowsBufferedBytes(t *testing.T) {
	addr, _ := serve(t, Config{WatchAfter: 10 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(150 * time.Millisecond)
		}
		_, _ = io.WriteString(w, r.Method+" "+r.URL.Path)
	})})
	c, br := dial(t, addr)
	// The first request and the start of the second arrive together.
	_, _ = io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\n")
	time.Sleep(60 * time.Millisecond) // The watcher is reading by now.
	_, _ = io.WriteString(c, "Host: h\r\n\r\n")
	for _, want := range []string{"GET /slow", "GET /next"} {
		res, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		t.Logf("status %d body %q", res.StatusCode, b)
		if string(b) != want {
			t.Errorf("got %q want %q", b, want)
		}
	}
}

type zeroReader struct{}

// TestEmptyReadOfAChunkedBody: io.Reader allows reads into an empty buffer; one on a
// chunked body must return rather than loop.
func TestEmptyReadOfAChunkedBody(t *testing.T) {
	done := make(chan struct{})
	addr, _ := serve(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		go func() {
			_, _ = r.Body.Read(nil)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Error("Body.Read(nil) on chunked body did not return within 1s (spinning)")
		}
	})})
	c, br := dial(t, addr)
	_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	_, _ = http.ReadResponse(br, &http.Request{Method: "POST"})
	_ = strings.TrimSpace
}
