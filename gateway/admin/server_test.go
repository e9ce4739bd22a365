package admin

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// fakeState is a State whose answers the test sets.
type fakeState struct {
	ready atomic.Bool
	view  ConfigView
}

func (f *fakeState) Ready() bool        { return f.ready.Load() }
func (f *fakeState) Config() ConfigView { return f.view }
func (f *fakeState) Status() any {
	return map[string]any{"gateways": []map[string]string{{"name": "default/gw", "programmed": "True"}}}
}

// tlsSnapshot is a snapshot with one HTTPS listener holding two certificates and
// client certificate validation.
func tlsSnapshot() *config.Snapshot {
	return &config.Snapshot{SchemaVersion: config.SchemaVersion, Version: "v42", Listeners: []config.Listener{
		{Name: ":8080", Port: 8080, Protocol: config.ProtocolHTTP, VirtualHosts: []config.VirtualHost{{Name: "default/gw/http"}}},
		{Name: ":8443", Port: 8443, Protocol: config.ProtocolHTTPS, VirtualHosts: []config.VirtualHost{{
			Name: "default/gw/https",
			TLS: &config.TLS{Certificates: []config.Certificate{
				{Name: "default/a", CertPEM: "CERT-A", KeyPEM: "-----BEGIN PRIVATE KEY-----\nSECRET-A"},
				{Name: "default/b", CertPEM: "CERT-B", KeyPEM: "-----BEGIN PRIVATE KEY-----\nSECRET-B"},
			}, ClientValidation: &config.ClientValidation{Mode: config.ClientValidationRequired,
				CACertificates: []config.CACertificate{{Name: "default/ca", PEM: "CA-PEM"}}}},
		}}},
	}}
}

// startServer starts an admin server on a free loopback port.
func startServer(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	opts.Addr = "127.0.0.1:0"
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s, "http://" + s.Addr()
}

// call sends one request without a body and returns the response and its body.
func call(t *testing.T, method, url, token string) (*http.Response, string) {
	t.Helper()
	header := http.Header{}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	return send(t, method, url, "", header)
}

// send sends one request with a body and headers ("Host" sets the request's host)
// and returns the response and its body.
func send(t *testing.T, method, url, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if h := header.Get("Host"); h != "" {
		req.Host = h
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(data)
}

// assertProblem checks that a response is a problem details document with status.
func assertProblem(t *testing.T, resp *http.Response, body string, status int) Problem {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != problemContentType {
		t.Errorf("Content-Type %q, want %q", ct, problemContentType)
	}
	var p Problem
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	if p.Status != status || p.Title != http.StatusText(status) || p.Type == "" || p.Detail == "" {
		t.Errorf("problem %+v for status %d", p, status)
	}
	return p
}

func TestHealthAndReadiness(t *testing.T) {
	state := &fakeState{}
	_, base := startServer(t, Options{State: state})
	if resp, body := call(t, "GET", base+"/healthz", ""); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
	resp, body := call(t, "GET", base+"/readyz", "")
	assertProblem(t, resp, body, http.StatusServiceUnavailable)
	state.ready.Store(true)
	if resp, body := call(t, "GET", base+"/readyz", ""); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("readyz once ready: %d %q", resp.StatusCode, body)
	}
	state.ready.Store(false)
	if resp, _ := call(t, "GET", base+"/readyz", ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz after becoming unready: %d", resp.StatusCode)
	}
}

func TestConfigRedactsKeys(t *testing.T) {
	snap := tlsSnapshot()
	applied := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	state := &fakeState{view: ConfigView{Version: "v42", AppliedAt: applied, Snapshot: snap,
		LastError: "routes.yaml: bad", LastErrorAt: applied.Add(time.Minute), RejectedVersion: "v43"}}
	_, base := startServer(t, Options{State: state})
	resp, body := call(t, "GET", base+"/api/v1/config", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("config: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if strings.Contains(body, "SECRET") || strings.Contains(body, "PRIVATE KEY") {
		t.Fatalf("the config view leaks a private key: %s", body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"version", "appliedAt", "snapshot", "lastError", "lastErrorAt", "rejectedVersion"} {
		if _, ok := raw[field]; !ok {
			t.Errorf("field %q missing from %s", field, body)
		}
	}
	var view ConfigView
	if err := json.Unmarshal([]byte(body), &view); err != nil {
		t.Fatal(err)
	}
	certs := view.Snapshot.Listeners[1].VirtualHosts[0].TLS.Certificates
	if len(certs) != 2 || certs[0].KeyPEM != "<redacted>" || certs[1].KeyPEM != "<redacted>" || certs[1].CertPEM != "CERT-B" {
		t.Errorf("certificates shown as %+v", certs)
	}
	if cv := view.Snapshot.Listeners[1].VirtualHosts[0].TLS.ClientValidation; cv == nil || cv.CACertificates[0].PEM != "CA-PEM" {
		t.Errorf("client validation shown as %+v", cv)
	}
	if !view.AppliedAt.Equal(applied) || view.RejectedVersion != "v43" || view.LastError != "routes.yaml: bad" {
		t.Errorf("view %+v", view)
	}
	if got := snap.Listeners[1].VirtualHosts[0].TLS.Certificates[0].KeyPEM; !strings.Contains(got, "SECRET-A") {
		t.Errorf("redaction changed the serving snapshot: key is now %q", got)
	}
}

func TestConfigBeforeFirstApply(t *testing.T) {
	_, base := startServer(t, Options{State: &fakeState{}})
	resp, body := call(t, "GET", base+"/api/v1/config", "")
	if resp.StatusCode != 200 || strings.TrimSpace(body) != `{"version":""}` {
		t.Fatalf("config before any apply: %d %s", resp.StatusCode, body)
	}
}

// TestDNSRebindingIsRefusedWithoutToken checks that, without a token, the API
// answers only requests addressed to a loopback host: a page whose name was rebound
// to 127.0.0.1 sends its own name in Host. Health and metrics stay open.
func TestDNSRebindingIsRefusedWithoutToken(t *testing.T) {
	_, base := startServer(t, Options{State: &fakeState{}})
	for _, host := range []string{"attacker.example", "attacker.example:9901", "10.1.2.3"} {
		resp, body := send(t, "GET", base+"/api/v1/config", "", http.Header{"Host": {host}})
		assertProblem(t, resp, body, http.StatusForbidden)
		if resp, _ := send(t, "GET", base+"/healthz", "", http.Header{"Host": {host}}); resp.StatusCode != http.StatusOK {
			t.Errorf("healthz with Host %s: %d", host, resp.StatusCode)
		}
	}
	for _, host := range []string{"localhost:9901", "127.0.0.1", "[::1]:9901"} {
		if resp, body := send(t, "GET", base+"/api/v1/config", "", http.Header{"Host": {host}}); resp.StatusCode != http.StatusOK {
			t.Errorf("Host %s: %d %s", host, resp.StatusCode, body)
		}
	}
	// With a token, the token is the guard and any Host may be used.
	_, withToken := startServer(t, Options{State: &fakeState{}, Token: "s3cret"})
	header := http.Header{"Host": {"gateway-admin.internal"}, "Authorization": {"Bearer s3cret"}}
	if resp, body := send(t, "GET", withToken+"/api/v1/config", "", header); resp.StatusCode != http.StatusOK {
		t.Errorf("with a token: %d %s", resp.StatusCode, body)
	}
}

func TestOtherSitesPagesAreRefusedWithoutToken(t *testing.T) {
	_, base := startServer(t, Options{State: &fakeState{}})
	host := strings.TrimPrefix(base, "http://")
	refused := []http.Header{
		{"Sec-Fetch-Site": {"cross-site"}},
		{"Sec-Fetch-Site": {"same-site"}},
		{"Origin": {"https://attacker.example"}},
		{"Origin": {"http://127.0.0.1:3000"}},
		{"Origin": {"null"}},
	}
	for _, h := range refused {
		resp, body := send(t, "POST", base+"/api/v1/config", "", h)
		assertProblem(t, resp, body, http.StatusForbidden)
	}
	allowed := []http.Header{
		{},
		{"Sec-Fetch-Site": {"none"}},
		{"Sec-Fetch-Site": {"same-origin"}, "Origin": {"http://" + host}},
	}
	for _, h := range allowed {
		if resp, body := send(t, "GET", base+"/api/v1/config", "", h); resp.StatusCode != http.StatusOK {
			t.Errorf("headers %v: %d %s", h, resp.StatusCode, body)
		}
	}
}

func TestStatus(t *testing.T) {
	_, base := startServer(t, Options{State: &fakeState{}})
	resp, body := call(t, "GET", base+"/api/v1/status", "")
	if resp.StatusCode != 200 || !strings.Contains(body, `"name":"default/gw"`) {
		t.Fatalf("status: %d %s", resp.StatusCode, body)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	counter := prometheus.NewCounter(prometheus.CounterOpts{Name: "switchyard_test_total", Help: "A test counter."})
	reg.MustRegister(counter)
	counter.Add(3)
	_, base := startServer(t, Options{State: &fakeState{}, Token: "s3cret",
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})})
	resp, body := call(t, "GET", base+"/metrics", "")
	if resp.StatusCode != 200 || !strings.Contains(body, "switchyard_test_total 3") {
		t.Fatalf("metrics without a token: %d %s", resp.StatusCode, body)
	}

	_, base = startServer(t, Options{State: &fakeState{}})
	resp, body = call(t, "GET", base+"/metrics", "")
	if resp.StatusCode != 200 || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("default metrics: %d %.200s", resp.StatusCode, body)
	}
}

func TestAuthentication(t *testing.T) {
	state := &fakeState{}
	state.ready.Store(true)
	_, base := startServer(t, Options{State: state, Token: "s3cret"})
	for _, path := range []string{"/api/v1/config", "/api/v1/status", "/api/v1/nothing-here"} {
		for _, token := range []string{"", "wrong", "s3cret-but-longer", "S3CRET"} {
			resp, body := call(t, "GET", base+path, token)
			assertProblem(t, resp, body, http.StatusUnauthorized)
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s with token %q: no WWW-Authenticate challenge", path, token)
			}
		}
	}
	if resp, body := call(t, "GET", base+"/api/v1/status", "s3cret"); resp.StatusCode != 200 {
		t.Fatalf("status with the right token: %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, _ := call(t, "GET", base+path, ""); resp.StatusCode != 200 {
			t.Errorf("%s needs no token, got %d", path, resp.StatusCode)
		}
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	_, base := startServer(t, Options{State: &fakeState{}, Token: "s3cret"})
	resp, body := call(t, "GET", base+"/nope", "")
	if p := assertProblem(t, resp, body, http.StatusNotFound); !strings.Contains(p.Detail, "/nope") {
		t.Errorf("404 detail %q does not name the path", p.Detail)
	}
	resp, body = call(t, "GET", base+"/api/v1/nope", "s3cret")
	assertProblem(t, resp, body, http.StatusNotFound)
	resp, body = call(t, "POST", base+"/api/v1/config", "s3cret")
	if p := assertProblem(t, resp, body, http.StatusMethodNotAllowed); !strings.Contains(p.Detail, "POST") {
		t.Errorf("405 detail %q does not name the method", p.Detail)
	}
	resp, body = call(t, "DELETE", base+"/healthz", "")
	assertProblem(t, resp, body, http.StatusMethodNotAllowed)
}

func TestNonLoopbackWithoutTokenIsRefused(t *testing.T) {
	for _, addr := range []string{":9901", "0.0.0.0:9901", "[::]:9901", "10.1.2.3:9901", "example.com:9901"} {
		s, err := New(Options{Addr: addr, State: &fakeState{}})
		if err == nil || !strings.Contains(err.Error(), "without a token") {
			t.Errorf("New(%q) without a token: server %v, error %v; want a refusal", addr, s, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "localhost:0", "127.0.0.5:0"} {
		if _, err := New(Options{Addr: addr, State: &fakeState{}}); err != nil {
			t.Errorf("New(%q) without a token: %v", addr, err)
		}
	}
	// With a token any address is accepted; New does not bind, so nothing listens.
	if _, err := New(Options{Addr: "0.0.0.0:9901", Token: "t", State: &fakeState{}}); err != nil {
		t.Errorf("New on 0.0.0.0 with a token: %v", err)
	}
	if _, err := New(Options{Addr: "no-port", State: &fakeState{}}); err == nil {
		t.Error("New accepted an address without a port")
	}
}

func TestDefaultAddr(t *testing.T) {
	s, err := New(Options{State: &fakeState{}})
	if err != nil || s.Addr() != DefaultAddr {
		t.Fatalf("default address %q, %v", s.Addr(), err)
	}
}

// TestStartReportsBindErrors holds a port with a socket that does not share it
// (no SO_REUSEPORT), so that the admin server cannot bind it.
func TestStartReportsBindErrors(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	s, err := New(Options{Addr: held.Addr().String(), State: &fakeState{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), held.Addr().String()) {
		t.Fatalf("Start on a used address: %v", err)
	}
}

// TestReplacementSharesTheAddress starts a second admin server on the address of a
// running one, as a replacement process does during a rolling restart, and expects
// it to take over every request once the first shuts down.
func TestReplacementSharesTheAddress(t *testing.T) {
	first, _ := startServer(t, Options{State: &fakeState{}})
	second, err := New(Options{Addr: first.Addr(), State: &fakeState{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(); err != nil {
		t.Fatalf("a replacement could not bind the address of a running admin server: %v", err)
	}
	defer second.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := first.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range 20 {
		resp, err := client.Get("http://" + first.Addr() + "/healthz")
		if err != nil {
			t.Fatalf("after the first server stopped: %v", err)
		}
		resp.Body.Close()
	}
}

func TestEngineAcceptsNewRoutesBehindAuth(t *testing.T) {
	s, err := New(Options{Addr: "127.0.0.1:0", State: &fakeState{}, Token: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	var size int
	s.Engine().POST("/api/v1/echo-size", func(c *gin.Context) {
		data, err := io.ReadAll(c.Request.Body)
		if err != nil {
			abortWithProblem(c, http.StatusRequestEntityTooLarge, err.Error())
			return
		}
		size = len(data)
		c.String(200, "read")
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr()
	resp, body := call(t, "POST", base+"/api/v1/echo-size", "")
	assertProblem(t, resp, body, http.StatusUnauthorized)

	post := func(n int) *http.Response {
		req, _ := http.NewRequest("POST", base+"/api/v1/echo-size", strings.NewReader(strings.Repeat("x", n)))
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := post(1000); resp.StatusCode != 200 || size != 1000 {
		t.Fatalf("small body: %d, read %d", resp.StatusCode, size)
	}
	if resp := post(maxRequestBody + 1); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d, want 413", resp.StatusCode)
	}
}

func TestMetricsServer(t *testing.T) {
	state := &fakeState{}
	state.ready.Store(true)
	s, err := NewMetricsServer("127.0.0.1:0", state, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr()
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, body := call(t, "GET", base+path, ""); resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	resp, body := call(t, "GET", base+"/api/v1/config", "")
	assertProblem(t, resp, body, http.StatusNotFound)
	if _, err := NewMetricsServer("", state, nil, nil); err == nil {
		t.Error("NewMetricsServer accepted an empty address")
	}
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	if tok, err := LoadToken(write("ok", "  abc123\n")); err != nil || tok != "abc123" {
		t.Errorf("LoadToken: %q, %v", tok, err)
	}
	if _, err := LoadToken(write("empty", " \n\t")); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty token file: %v", err)
	}
	if _, err := LoadToken(filepath.Join(dir, "absent")); err == nil {
		t.Error("missing token file: no error")
	}
}

func TestRedactKeysNil(t *testing.T) {
	if redactKeys(nil) != nil {
		t.Error("redactKeys(nil) is not nil")
	}
	snap := &config.Snapshot{Version: "v"}
	if got := redactKeys(snap); got == snap || got.Version != "v" || got.Listeners != nil {
		t.Errorf("redactKeys of a snapshot without listeners: %+v", got)
	}
}
