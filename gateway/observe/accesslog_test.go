package observe_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/dataplane"
	"github.com/switchyard-dev/switchyard/gateway/observe"
)

// accessLine is the decoded JSON of one access log line.
type accessLine struct {
	Time       time.Time `json:"time"`
	Msg        string    `json:"msg"`
	Listener   string    `json:"listener"`
	Route      string    `json:"route"`
	Rule       string    `json:"rule"`
	Backend    string    `json:"backend"`
	Endpoint   string    `json:"endpoint"`
	Method     string    `json:"method"`
	Host       string    `json:"host"`
	Path       string    `json:"path"`
	Status     int       `json:"status"`
	Bytes      int64     `json:"bytes"`
	Attempts   int       `json:"attempts"`
	DurationMS float64   `json:"duration_ms"`
	UpstreamMS float64   `json:"upstream_ms"`
	Flags      string    `json:"flags"`
	TraceID    string    `json:"trace_id"`
	Client     string    `json:"client"`
}

func parseLines(t *testing.T, data []byte) []accessLine {
	t.Helper()
	var lines []accessLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var l accessLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

// accessLogRoutes serves /retry (first endpoint refuses connections, one retry),
// /limited (one request per minute) and /empty (a backend without endpoints).
func accessLogRoutes(t *testing.T) (*config.Snapshot, string) {
	ok := startBackend(t, answer(http.StatusOK, "fine"))
	limit := config.Filter{Type: config.FilterRateLimit, RateLimit: &config.RateLimit{ID: "default/limit", Mode: config.RateLimitLocal,
		Rules: []config.RateLimitRule{{Key: config.RateLimitKey{Type: config.KeyRoute}, Requests: 1, Per: config.Duration(time.Minute)}}}}
	retry := config.Rule{Name: "main", Backends: to("default/flaky:80"), Retry: &config.Retry{Attempts: 1}}
	routes := []config.Route{
		prefixRoute("default/retry", "/retry", retry),
		prefixRoute("default/limited", "/limited", config.Rule{Backends: to("default/ok:80"), Filters: []config.Filter{limit}}),
		prefixRoute("default/empty", "/empty", config.Rule{Backends: to("default/empty:80")}),
	}
	return snapshot("v1", routes, httpBackend("default/flaky:80", closedAddr(t), ok), httpBackend("default/ok:80", ok),
		httpBackend("default/empty:80")), ok
}

func TestAccessLogWritesOneLinePerRequest(t *testing.T) {
	var out bytes.Buffer
	log := observe.NewAccessLog(&out, nil, 1)
	obs, err := observe.New(observe.Options{AccessLog: log})
	if err != nil {
		t.Fatal(err)
	}
	snap, okAddr := accessLogRoutes(t)
	e, url := startEngine(t, obs, snap)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	send(t, url+"/retry/x?secret=1", "Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	send(t, url+"/limited")
	send(t, url+"/limited")
	send(t, url+"/empty")
	send(t, url+"/nowhere")
	closeAfterEngine(t, e, log)
	lines := parseLines(t, out.Bytes())
	if len(lines) != 5 {
		t.Fatalf("%d lines, want 5:\n%s", len(lines), out.String())
	}
	retried := lines[0]
	if retried.Msg != "request" || retried.Listener != listenerName || retried.Route != "default/retry" || retried.Rule != "main" ||
		retried.Backend != "default/flaky:80" || retried.Endpoint != okAddr || retried.Method != http.MethodGet ||
		retried.Path != "/retry/x" || retried.Status != http.StatusOK || retried.Bytes != int64(len("fine")) ||
		retried.Attempts != 2 || retried.Flags != "retried" || retried.TraceID != traceID || retried.Client == "" || retried.Host == "" {
		t.Errorf("retried request: %+v", retried)
	}
	if retried.UpstreamMS <= 0 || retried.DurationMS < retried.UpstreamMS || time.Since(retried.Time) > time.Minute {
		t.Errorf("retried request timings: %+v", retried)
	}
	if l := lines[1]; l.Status != http.StatusOK || l.Flags != "" || l.Backend != "default/ok:80" || l.Attempts != 1 || l.Rule != "0" || l.TraceID != "" {
		t.Errorf("first limited request: %+v", l)
	}
	if l := lines[2]; l.Status != http.StatusTooManyRequests || l.Flags != "rate-limited" || l.Backend != "" || l.Attempts != 0 {
		t.Errorf("second limited request: %+v", l)
	}
	if l := lines[3]; l.Status != http.StatusServiceUnavailable || l.Flags != "no-endpoints" || l.Backend != "default/empty:80" || l.Endpoint != "" {
		t.Errorf("request to a backend without endpoints: %+v", l)
	}
	if l := lines[4]; l.Status != http.StatusNotFound || l.Flags != "no-route" || l.Route != "" || l.Path != "/nowhere" {
		t.Errorf("unrouted request: %+v", l)
	}
}

func TestAccessLogSamplingKeepsEveryServerError(t *testing.T) {
	var out bytes.Buffer
	log := observe.NewAccessLog(&out, nil, 0)
	obs, err := observe.New(observe.Options{AccessLog: log})
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := accessLogRoutes(t)
	e, url := startEngine(t, obs, snap)
	for range 5 {
		send(t, url+"/retry")
	}
	send(t, url+"/empty")
	closeAfterEngine(t, e, log)
	lines := parseLines(t, out.Bytes())
	if len(lines) != 1 || lines[0].Status != http.StatusServiceUnavailable {
		t.Fatalf("with sampling 0, got %d lines, want only the 503:\n%s", len(lines), out.String())
	}
}

// closeAfterEngine closes log once e has shut down. A request's line is written
// after its answer is out, so a test that closed the log as soon as its client had
// the answer could lose the line; the shutdown waits for requests to end.
func closeAfterEngine(t *testing.T, e *dataplane.Engine, log *observe.AccessLog) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenAccessLog(t *testing.T) {
	for _, dest := range []string{"", "off"} {
		if log, err := observe.OpenAccessLog(dest, 1); log != nil || err != nil {
			t.Errorf("OpenAccessLog(%q) = %v, %v; want no log", dest, log, err)
		}
	}
	for _, bad := range []float64{-0.1, 1.5} {
		if _, err := observe.OpenAccessLog("stdout", bad); err == nil {
			t.Errorf("sample %v was accepted", bad)
		}
	}
	if _, err := observe.OpenAccessLog(filepath.Join(t.TempDir(), "missing", "access.log"), 1); err == nil {
		t.Error("a file in a missing folder was accepted")
	}
	path := filepath.Join(t.TempDir(), "access.log")
	if err := os.WriteFile(path, []byte("earlier\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := observe.OpenAccessLog(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := observe.New(observe.Options{AccessLog: log})
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := accessLogRoutes(t)
	e, url := startEngine(t, obs, snap)
	send(t, url+"/limited")
	closeAfterEngine(t, e, log)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	earlier, rest, _ := bytes.Cut(data, []byte("\n"))
	if string(earlier) != "earlier" {
		t.Fatalf("the file was not appended to: %q", data)
	}
	if lines := parseLines(t, rest); len(lines) != 1 || lines[0].Route != "default/limited" {
		t.Fatalf("file holds %q", rest)
	}
}
