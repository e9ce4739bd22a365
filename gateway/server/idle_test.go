package server

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestKeepAliveAcrossIdlePauses has one keep-alive connection idle between requests
// long enough for the server to wait without its buffers, with requests of every
// size of head and body in between: each is served whole, in order, on the same
// connection, and its answer is written whole.
func TestKeepAliveAcrossIdlePauses(t *testing.T) {
	for _, mode := range []HTTP1Mode{HTTP1Fast, HTTP1Std} {
		t.Run(string(mode), func(t *testing.T) {
			limits := DefaultLimits()
			limits.HTTP1 = mode
			m := newTestManager(t, limits)
			addr := serveOne(t, m, Spec{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				// An answer larger than the write buffer, so that the buffer the
				// connection gets back after idling is filled past its size.
				fmt.Fprintf(w, "%s %d %d %s", r.URL.Path, len(r.Header.Get("X-Big")), len(body), strings.Repeat("z", 6000))
			})})
			client := &http.Client{Timeout: testTimeout, Transport: &http.Transport{MaxConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			big := strings.Repeat("h", 6000)
			for i, tc := range []struct {
				path, header, body string
			}{
				{"/first", "", ""},
				{"/big-head", big, ""},
				{"/after-big-head", "", ""},
				{"/with-body", "", strings.Repeat("b", 9000)},
				{"/last", "", ""},
			} {
				time.Sleep(30 * time.Millisecond)
				req, _ := http.NewRequest(http.MethodPost, "http://"+addr+tc.path, strings.NewReader(tc.body))
				if tc.header != "" {
					req.Header.Set("X-Big", tc.header)
				}
				res, err := client.Do(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				got, err := io.ReadAll(res.Body)
				res.Body.Close()
				want := fmt.Sprintf("%s %d %d %s", tc.path, len(tc.header), len(tc.body), strings.Repeat("z", 6000))
				if err != nil || string(got) != want {
					t.Fatalf("request %d: got %d bytes (%v), want %q...", i, len(got), err, want[:30])
				}
			}
		})
	}
}
