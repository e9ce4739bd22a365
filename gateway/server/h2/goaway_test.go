package h2

import (
	"context"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
)

// TestGoAwayLastStreamIDNeverIncreases: after a graceful GOAWAY (Shutdown)
// with last-stream-id 1, the client's streams opened meanwhile are refused,
// and a later connection error's GOAWAY repeats last-stream-id 1. RFC 9113
// §6.8: "Endpoints MUST NOT increase the value they send in the last stream
// identifier, since the peers might already have retried unprocessed
// requests on another connection."
func TestGoAwayLastStreamIDNeverIncreases(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var calls atomic.Int32
	ts := startServer(t, blockingHandler(release, &calls), nil)
	rc := dialRaw(t, ts.addr)
	rc.request(1, true, "GET", "/")
	waitFor(t, "handler", func() bool { return calls.Load() == 1 })
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioBound)
		defer cancel()
		ts.srv.Shutdown(ctx)
	}()
	first := rc.readUntil("GOAWAY", isGoAway).(*http2.GoAwayFrame)
	if first.LastStreamID != 1 {
		t.Fatalf("first GOAWAY last-stream-id %d, want 1", first.LastStreamID)
	}
	// Requests the client had sent before it saw the GOAWAY.
	rc.request(3, true, "GET", "/")
	rc.request(5, true, "GET", "/")
	// Then a protocol error: HEADERS on an even stream id.
	rc.request(6, true, "GET", "/")
	for i := 0; i < 1000; i++ {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			return // no second GOAWAY: fine
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.LastStreamID > first.LastStreamID {
				t.Fatalf("second GOAWAY (%v) raised last-stream-id from %d to %d", ga.ErrCode, first.LastStreamID, ga.LastStreamID)
			}
			return
		}
	}
}
