package h2

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/internal/ctxhook"
)

type slotKey struct{}

// TestStreamContextRunsHooks: a request's context is a ctxhook.Source, which the
// backend client watches requests with, and has room for one value the handler
// adds. Its hooks run when the client resets the stream, and when the handler
// returns for a stream that ended normally.
func TestStreamContextRunsHooks(t *testing.T) {
	type result struct {
		source, slot bool
		hooked       chan struct{}
	}
	results := make(chan result, 2)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		res := result{hooked: make(chan struct{})}
		source := ctxhook.Find(ctx)
		res.source = source != nil
		holder, ok := ctx.(interface{ SetValue(key, value any) bool })
		res.slot = ok && holder.SetValue(slotKey{}, "v") && ctx.Value(slotKey{}) == "v"
		if source != nil {
			hooked := res.hooked
			source.Hook(&ctxhook.Hook{Func: func() { close(hooked) }})
		}
		results <- res
		if r.URL.Path == "/wait" {
			// Longer than the test waits for the hook, so that only the
			// reset can run it in time.
			select {
			case <-ctx.Done():
			case <-time.After(3 * ioBound):
			}
		}
	}), nil)
	c := h2cClient(t)

	// A request the handler answers: the hook runs once it returns.
	res, err := c.Get("http://" + ts.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	first := <-results
	if !first.source || !first.slot {
		t.Fatalf("request context: hook source %v, value slot %v; want both", first.source, first.slot)
	}
	waitClosedCh(t, first.hooked, "the hook of a request whose handler returned")

	// A request the client gives up on: the reset runs the hook while the
	// handler still waits.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ts.addr+"/wait", nil)
	go func() {
		if res, err := c.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	second := <-results
	cancel()
	waitClosedCh(t, second.hooked, "the hook of a request the client reset")
}

func waitClosedCh(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(ioBound):
		t.Fatalf("%s did not run", what)
	}
}
