package admin

import (
	"net/http"
	"strings"
	"testing"
)

func TestProfilingIsOffByDefault(t *testing.T) {
	_, base := startServer(t, Options{State: &fakeState{}, Token: "s3cret"})
	resp, body := call(t, http.MethodGet, base+profilingPrefix+"/heap", "s3cret")
	assertProblem(t, resp, body, http.StatusNotFound)
}

func TestProfilingServesProfilesBehindTheToken(t *testing.T) {
	_, base := startServer(t, Options{State: &fakeState{}, Token: "s3cret", Profiling: true})

	resp, body := call(t, http.MethodGet, base+profilingPrefix+"/heap", "")
	assertProblem(t, resp, body, http.StatusUnauthorized)

	resp, body = call(t, http.MethodGet, base+profilingPrefix+"/goroutine?debug=1", "s3cret")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Fatalf("goroutine profile: status %d, body %.200q", resp.StatusCode, body)
	}
	resp, body = call(t, http.MethodGet, base+profilingPrefix+"/profile?seconds=1", "s3cret")
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("CPU profile: status %d, %d bytes", resp.StatusCode, len(body))
	}
	resp, body = call(t, http.MethodGet, base+profilingPrefix+"/", "s3cret")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "href='heap?debug=1'") {
		t.Fatalf("index: status %d, body %.300q", resp.StatusCode, body)
	}
	resp, body = call(t, http.MethodGet, base+profilingPrefix+"/no-such-profile", "s3cret")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown profile: status %d, body %.200q", resp.StatusCode, body)
	}
}
