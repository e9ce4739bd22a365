package mirror

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/plugins"
)

// loopbackUpstream sends requests to real httptest servers by backend name, as the
// data plane's backend manager does with endpoints.
type loopbackUpstream struct {
	servers map[string]*httptest.Server
}

func (u *loopbackUpstream) RoundTrip(ctx context.Context, backend string, req *http.Request) (*http.Response, error) {
	srv, ok := u.servers[backend]
	if !ok {
		return nil, fmt.Errorf("unknown backend %q", backend)
	}
	target, _ := url.Parse(srv.URL)
	out := req.Clone(ctx)
	out.URL.Scheme, out.URL.Host = target.Scheme, target.Host
	return srv.Client().Transport.RoundTrip(out)
}

// received is what a backend saw.
type received struct {
	method, host, uri, header, body string
}

// recordingServer reports each request it serves on a channel.
func recordingServer(t *testing.T) (*httptest.Server, chan received) {
	t.Helper()
	ch := make(chan received, 1024)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ch <- received{r.Method, r.Host, r.RequestURI, r.Header.Get("X-Test"), string(body)}
		fmt.Fprint(w, "mirror response")
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

// gateway serves the mirror filter in front of a primary handler that records the
// request too, over a real listener.
func gateway(t *testing.T, up plugins.Upstream, m *config.Mirror) (*httptest.Server, chan received) {
	t.Helper()
	primary := make(chan received, 1024)
	h, err := plugins.Chain(plugins.Context{Upstream: up}, []config.Filter{{Type: config.FilterRequestMirror, RequestMirror: m}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			primary <- received{r.Method, r.Host, r.RequestURI, r.Header.Get("X-Test"), string(body)}
			fmt.Fprint(w, "primary response")
		}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, primary
}

func send(t *testing.T, srv *httptest.Server, method, path, body string) string {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Host = "app.example"
	req.Header.Set("X-Test", "marker")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return string(out)
}

func waitFor(t *testing.T, ch chan received) received {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no request arrived within 5s")
		return received{}
	}
}

func TestMirrorCopiesRequest(t *testing.T) {
	mirrorSrv, mirrored := recordingServer(t)
	up := &loopbackUpstream{servers: map[string]*httptest.Server{"shadow": mirrorSrv}}
	gw, primary := gateway(t, up, &config.Mirror{Backend: "shadow"})

	if got := send(t, gw, http.MethodPost, "/api/items?x=1", "payload"); got != "primary response" {
		t.Fatalf("client got %q", got)
	}
	want := received{http.MethodPost, "app.example", "/api/items?x=1", "marker", "payload"}
	if got := waitFor(t, primary); got != want {
		t.Errorf("primary got %+v, want %+v", got, want)
	}
	if got := waitFor(t, mirrored); got != want {
		t.Errorf("mirror got %+v, want %+v", got, want)
	}
}

func TestLargeBodyIsNotMirrored(t *testing.T) {
	mirrorSrv, mirrored := recordingServer(t)
	up := &loopbackUpstream{servers: map[string]*httptest.Server{"shadow": mirrorSrv}}
	gw, primary := gateway(t, up, &config.Mirror{Backend: "shadow"})
	big := strings.Repeat("x", MaxBody+1)

	for _, chunked := range []bool{false, true} {
		skipped := Stats.Skipped.Load()
		var body io.Reader = strings.NewReader(big)
		if chunked {
			// Hiding the length makes the client send the body chunked.
			body = io.MultiReader(body)
		}
		req, _ := http.NewRequest(http.MethodPut, gw.URL+"/upload", body)
		res, err := gw.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := waitFor(t, primary); got.body != big {
			t.Errorf("chunked=%v: primary got %d bytes, want %d", chunked, len(got.body), len(big))
		}
		if Stats.Skipped.Load() != skipped+1 {
			t.Errorf("chunked=%v: skipped count did not grow", chunked)
		}
	}
	// A small request afterwards is mirrored, and is the first the mirror sees.
	send(t, gw, http.MethodPost, "/small", "s")
	waitFor(t, primary)
	if got := waitFor(t, mirrored); got.uri != "/small" {
		t.Errorf("mirror first saw %+v", got)
	}
}

func TestBodyAtTheLimitIsMirrored(t *testing.T) {
	mirrorSrv, mirrored := recordingServer(t)
	up := &loopbackUpstream{servers: map[string]*httptest.Server{"shadow": mirrorSrv}}
	gw, primary := gateway(t, up, &config.Mirror{Backend: "shadow"})
	body := strings.Repeat("y", MaxBody)
	send(t, gw, http.MethodPost, "/limit", body)
	if got := waitFor(t, primary); got.body != body {
		t.Errorf("primary got %d bytes", len(got.body))
	}
	if got := waitFor(t, mirrored); got.body != body {
		t.Errorf("mirror got %d bytes", len(got.body))
	}
}

// A mirror that does not answer must not hold up the primary; copies beyond the
// in-flight bound are dropped and counted.
func TestSlowMirrorNeverBlocksPrimary(t *testing.T) {
	defer func(n int) { maxInFlight = n }(maxInFlight)
	maxInFlight = 2
	release := make(chan struct{})
	arrived := make(chan struct{}, 16)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
	}))
	defer slow.Close()
	defer close(release)
	up := &loopbackUpstream{servers: map[string]*httptest.Server{"slow": slow}}
	gw, primary := gateway(t, up, &config.Mirror{Backend: "slow"})

	dropped := Stats.Dropped.Load()
	for i := range 5 {
		start := time.Now()
		send(t, gw, http.MethodGet, fmt.Sprintf("/r%d", i), "")
		waitFor(t, primary)
		if d := time.Since(start); d > time.Second {
			t.Errorf("request %d took %v with a stuck mirror", i, d)
		}
		if i < 2 {
			// Let the copy reach the mirror so the slot is surely held.
			select {
			case <-arrived:
			case <-time.After(5 * time.Second):
				t.Fatal("copy did not reach the mirror")
			}
		}
	}
	if got := Stats.Dropped.Load() - dropped; got != 3 {
		t.Errorf("dropped %d copies, want 3", got)
	}
}

func TestFailingMirrorIsCounted(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	up := &loopbackUpstream{servers: map[string]*httptest.Server{"dead": dead}}
	gw, primary := gateway(t, up, &config.Mirror{Backend: "dead"})
	failed := Stats.Failed.Load()
	if got := send(t, gw, http.MethodGet, "/", ""); got != "primary response" {
		t.Fatalf("client got %q", got)
	}
	waitFor(t, primary)
	deadline := time.Now().Add(5 * time.Second)
	for Stats.Failed.Load() == failed && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if Stats.Failed.Load() == failed {
		t.Error("a failed copy was not counted")
	}
}

func TestSampling(t *testing.T) {
	count := func(m *mirror, n int) int {
		hits := 0
		for range n {
			if m.sampled() {
				hits++
			}
		}
		return hits
	}
	if got := count(&mirror{numerator: 0, denominator: 100}, 1000); got != 0 {
		t.Errorf("0/100 sampled %d", got)
	}
	if got := count(&mirror{numerator: 7, denominator: 7}, 1000); got != 1000 {
		t.Errorf("7/7 sampled %d of 1000", got)
	}
	// 50/100 over 4000 draws: the mean is 2000 and the deviation about 32, so this
	// range is more than ten deviations wide on each side.
	if got := count(&mirror{numerator: 50, denominator: 100}, 4000); got < 1650 || got > 2350 {
		t.Errorf("50/100 sampled %d of 4000", got)
	}
}

func TestFractionOverRealConnection(t *testing.T) {
	mirrorSrv, mirrored := recordingServer(t)
	up := &loopbackUpstream{servers: map[string]*httptest.Server{"shadow": mirrorSrv}}
	gw, primary := gateway(t, up, &config.Mirror{Backend: "shadow", Fraction: &config.Fraction{Numerator: 0, Denominator: 1}})
	for range 5 {
		send(t, gw, http.MethodGet, "/", "")
		waitFor(t, primary)
	}
	select {
	case r := <-mirrored:
		t.Errorf("a 0/1 mirror sent %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestUnresolvedBackendPassesThrough(t *testing.T) {
	p, _ := plugins.Lookup(config.FilterRequestMirror)
	mw, err := p.Provision(plugins.Context{}, &config.Filter{Type: config.FilterRequestMirror, RequestMirror: &config.Mirror{}})
	if err != nil {
		t.Fatal(err)
	}
	reached := false
	mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true })).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", bytes.NewReader([]byte("b"))))
	if !reached {
		t.Error("the request did not reach the next handler")
	}
	_, err = p.Provision(plugins.Context{}, &config.Filter{Type: config.FilterRequestMirror, RequestMirror: &config.Mirror{Backend: "b"}})
	if err == nil || !strings.Contains(err.Error(), "needs an upstream") {
		t.Errorf("Provision without an upstream: %v", err)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		m    *config.Mirror
		want string
	}{
		{nil, "settings are missing"},
		{&config.Mirror{Backend: "b", Fraction: &config.Fraction{Numerator: 1, Denominator: 0}}, "denominator 0 must be positive"},
		{&config.Mirror{Backend: "b", Fraction: &config.Fraction{Numerator: 3, Denominator: 2}}, "3/2 is out of range"},
		{&config.Mirror{Backend: "b", Fraction: &config.Fraction{Numerator: -1, Denominator: 2}}, "-1/2 is out of range"},
	}
	p, _ := plugins.Lookup(config.FilterRequestMirror)
	for _, c := range cases {
		err := p.Validate(&config.Filter{Type: config.FilterRequestMirror, RequestMirror: c.m})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", c.m, err, c.want)
		}
	}
}
