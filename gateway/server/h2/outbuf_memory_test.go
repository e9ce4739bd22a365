//go:build linux

package h2

import (
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestTLSConnectionGivesLargeOutputBuffersBack: a connection that cannot
// wait without its buffers (HTTP/2 over TLS, the common case) still gives its
// 64 KiB output buffers back once nothing is queued. The output buffer jumps
// from 4 KiB straight to 64 KiB, so otherwise two responses of a few KiB
// would leave it holding two 64 KiB buffers (out and spare) for as long as it
// stays open.
func TestTLSConnectionGivesLargeOutputBuffersBack(t *testing.T) {
	serverTLS, clientTLS := selfSignedTLS(t)
	ts := startServerWrapped(t, bodyDigest, nil, tlsHandshake(serverTLS))
	tr := &http2.Transport{TLSClientConfig: clientTLS}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: ioBound}
	const size = 6000
	for range 2 {
		res, err := client.Get("https://" + ts.addr + "/?size=" + strconv.Itoa(size))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if len(b) != size {
			t.Fatalf("body of %d bytes, want %d", len(b), size)
		}
	}
	cc := serverConn(t, ts.srv)
	held := outputBuffersHeld(t, cc, true)
	// Two buffers sized to what was written (a 6000-byte response and its
	// headers) would be well under 32 KiB.
	if held > 32<<10 {
		t.Fatalf("idle TLS connection holds %d bytes of output buffers (out %d, spare %d) after two %d-byte responses; want at most 32 KiB",
			held, cap(cc.out.b), cap(cc.spare), size)
	}
}

// TestOpenStreamGivesLargeOutputBuffersBack: the same on a connection that
// can wait without its buffers, while one long-lived stream stays open (a
// gRPC server stream or an event stream between events): its handler counts
// as running, so the connection is not idle, yet the 64 KiB buffers go back.
func TestOpenStreamGivesLargeOutputBuffersBack(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	chunk := make([]byte, 6000)
	ts, _ := startIdleWaitServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 2 {
			w.Write(chunk)
			w.(http.Flusher).Flush()
			time.Sleep(10 * time.Millisecond)
		}
		select {
		case <-release:
		case <-time.After(ioBound):
		}
	}), nil)
	rc := dialRaw(t, ts.addr)
	rc.request(1, true, "GET", "/")
	got := 0
	rc.readUntil("12000 body bytes", func(f http2.Frame) bool {
		if d, ok := f.(*http2.DataFrame); ok {
			got += len(d.Data())
		}
		return got >= 2*len(chunk)
	})
	cc := serverConn(t, ts.srv)
	held := outputBuffersHeld(t, cc, false)
	if held > 32<<10 {
		t.Fatalf("connection with one waiting stream holds %d bytes of output buffers (out %d, spare %d) after two %d-byte flushes; want at most 32 KiB",
			held, cap(cc.out.b), cap(cc.spare), len(chunk))
	}
}

// outputBuffersHeld waits until cc has flushed everything (and, when
// handlersDone, until no handler runs) and returns the capacity of the output
// buffers it holds then.
func outputBuffersHeld(t *testing.T, cc *conn, handlersDone bool) int {
	t.Helper()
	var held int
	waitFor(t, "the output to be flushed", func() bool {
		cc.wmu.Lock()
		defer cc.wmu.Unlock()
		held = cap(cc.out.b) + cap(cc.spare)
		return !cc.flushing && len(cc.out.b) == 0 && (!handlersDone || cc.handlers.Load() == 0)
	})
	return held
}
