package observe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/observe"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// rawCase is one request served both ways: by the handler path from an
// http.Request, and by the raw path from its wire form.
type rawCase struct {
	name                         string
	method, target, host, remote string
	// status is what the client got; 0 means it went away unanswered.
	status int
	body   string
	// info holds what the proxy and filters filled in (Start aside).
	info reqctx.Info
	// noRule leaves the request to no rule, as when none took it.
	noRule bool
	// traceparent is the client's traceparent field, whose trace ID the line names.
	traceparent string
}

var rawCases = []rawCase{
	{name: "plain", method: http.MethodGet, target: "/app/items", host: "app.example.com", remote: "10.0.0.7:51234",
		traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", status: http.StatusOK, body: "fine", info: reqctx.Info{Backend: "default/app:80", Endpoint: "10.244.1.7:8080", Attempts: 1,
			UpstreamTime: 900 * time.Microsecond}},
	{name: "escaped path", method: http.MethodGet, target: "/a%20b/c%2Fd/%25x/%22q%22/%ff/e+f;g", host: "app.example.com",
		remote: "10.0.0.7:51234", status: http.StatusOK, body: "x", info: reqctx.Info{Backend: "default/app:80", Attempts: 1}},
	{name: "query", method: http.MethodGet, target: "/search%2Dthis?q=a%20b&secret=1", host: "app.example.com:8080",
		remote: "10.0.0.7:51234", status: http.StatusOK, info: reqctx.Info{Backend: "default/app:80", Attempts: 1}},
	{name: "empty query", method: http.MethodHead, target: "/?", host: "app", remote: "10.0.0.7:1",
		status: http.StatusNoContent, info: reqctx.Info{Backend: "default/app:80", Attempts: 1}},
	{name: "IPv6 client", method: http.MethodPost, target: "/upload", host: "[2001:db8::5]:8443", remote: "[2001:db8::1]:40000",
		status: http.StatusCreated, body: strings.Repeat("y", 300), info: reqctx.Info{Backend: "default/app:80", Attempts: 1}},
	{name: "5xx", method: http.MethodGet, target: "/fail", host: "app.example.com", remote: "10.0.0.7:51234",
		status: http.StatusGatewayTimeout, body: "upstream timeout", info: reqctx.Info{Backend: "default/app:80", Endpoint: "10.244.1.8:8080",
			Attempts: 3, UpstreamTime: 2500 * time.Millisecond, Flags: reqctx.FlagUpstreamTimeout | reqctx.FlagRetried}},
	{name: "client closed", method: http.MethodGet, target: "/slow?x=1", host: "app.example.com", remote: "10.0.0.7:51234",
		info: reqctx.Info{Backend: "default/app:80", Endpoint: "10.244.1.7:8080", Attempts: 1, Flags: reqctx.FlagRetried}},
	{name: "rate limited", method: http.MethodGet, target: "/limited", host: "app.example.com", remote: "10.0.0.7:51234",
		status: http.StatusTooManyRequests, body: "slow down", info: reqctx.Info{Flags: reqctx.FlagRateLimited}},
	{name: "rate limit passed", method: http.MethodGet, target: "/limited", host: "app.example.com", remote: "10.0.0.7:51234",
		status: http.StatusOK, info: reqctx.Info{Backend: "default/app:80", Attempts: 1, Flags: reqctx.FlagRateLimitPassed}},
	{name: "caller", method: http.MethodGet, target: "/east-west", host: "app.shop.svc", remote: "10.244.2.3:33000",
		status: http.StatusOK, body: "hi", info: reqctx.Info{Backend: "shop/app:80", Attempts: 1,
			Caller: reqctx.Caller{Namespace: "shop", Name: "web-1", Workload: "web", ServiceAccount: "web"}}},
	{name: "no rule", method: http.MethodGet, target: "/nowhere", host: "app.example.com", remote: "10.0.0.7:51234",
		status: http.StatusNotFound, info: reqctx.Info{Flags: reqctx.FlagNoRoute}, noRule: true},
}

// rawAge is how long before LogRaw the raw path's requests start.
const rawAge = 1500 * time.Millisecond

// TestLogRawWritesTheHandlerPathLine serves each request by the handler path
// (Begin, Route and End around a real request and recorder) and logs it by LogRaw,
// and compares the two lines field by field, in order, but for time and
// duration_ms, which are taken from different clocks.
func TestLogRawWritesTheHandlerPathLine(t *testing.T) {
	var out bytes.Buffer
	log := observe.NewAccessLog(&out, nil, 1)
	defer log.Close()
	obs, err := observe.New(observe.Options{AccessLog: log})
	if err != nil {
		t.Fatal(err)
	}
	l := obs.Listener("default/gw/http")
	rule := obs.Rule("default/app", 0, &config.Rule{Name: "main", Backends: to("default/app:80")})
	for _, c := range rawCases {
		t.Run(c.name, func(t *testing.T) {
			out.Reset()
			serveHandlerPath(l, rule, c)
			rawRule := rule
			if c.noRule {
				rawRule = nil
			}
			info := c.info
			// A start in the past shows in duration_ms, as the time since it.
			info.Start = time.Now().Add(-rawAge)
			l.LogRaw(rawRule, observe.RawRequest{Method: c.method, Host: c.host, Target: c.target, RemoteAddr: c.remote,
				Traceparent: c.traceparent}, &info, c.status, int64(len(c.body)))
			if info.Flags != c.info.Flags {
				t.Errorf("LogRaw changed the flags of info to %v", info.Flags)
			}
			if err := log.Flush(); err != nil {
				t.Fatal(err)
			}
			lines := strings.SplitAfter(out.String(), "\n")
			if len(lines) != 3 || lines[2] != "" {
				t.Fatalf("want two lines, got %q", out.String())
			}
			compareLines(t, lines[0], lines[1])
		})
	}
	// Listeners without an access log write nothing, and take no Observer to.
	quiet, err := observe.New(observe.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	for _, l := range []*observe.Listener{nil, quiet.Listener("l")} {
		l.LogRaw(rule, observe.RawRequest{Target: "/"}, &reqctx.Info{Start: time.Now()}, http.StatusInternalServerError, 0)
	}
	if err := log.Flush(); err != nil || out.Len() != 0 {
		t.Errorf("listeners without an access log wrote %q (%v)", out.String(), err)
	}
}

// serveHandlerPath serves c as the data plane serves a request from its handler.
func serveHandlerPath(l *observe.Listener, rule *observe.Rule, c rawCase) {
	r := httptest.NewRequest(c.method, c.target, nil)
	r.Host, r.RemoteAddr = c.host, c.remote
	if c.traceparent != "" {
		r.Header.Set("Traceparent", c.traceparent)
	}
	if c.status == 0 {
		ctx, cancel := context.WithCancel(r.Context())
		cancel()
		r = r.WithContext(ctx)
	}
	x, _ := l.Begin(httptest.NewRecorder(), r)
	if !c.noRule {
		x.Route(rule)
	}
	start := x.Info.Start
	x.Info = c.info
	x.Info.Start = start
	if c.status != 0 {
		x.Writer().WriteHeader(c.status)
		_, _ = io.WriteString(x.Writer(), c.body)
	}
	x.End()
}

// lineField is one field of a line, as decoded.
type lineField struct {
	key   string
	value any
}

// compareLines fails the test unless the raw line has the fields of the handler
// line, in their order, time and duration_ms aside, which it must have too.
func compareLines(t *testing.T, handler, raw string) {
	t.Helper()
	want, got := decodeFields(t, handler), decodeFields(t, raw)
	if len(got) != len(want) {
		t.Fatalf("raw line has %d fields, handler line %d:\n%s%s", len(got), len(want), raw, handler)
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.key != w.key {
			t.Fatalf("field %d is %q, want %q:\n%s%s", i, g.key, w.key, raw, handler)
		}
		switch w.key {
		case "time":
			if at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(g.value)); err != nil || time.Since(at).Abs() > time.Minute {
				t.Errorf("time %v: %v", g.value, err)
			}
		case "duration_ms":
			ms := float64(rawAge.Milliseconds())
			if d, err := g.value.(json.Number).Float64(); err != nil || d < ms || d > ms+60e3 {
				t.Errorf("duration_ms %v, want the time since info.Start, %v and a little", g.value, ms)
			}
		default:
			if g.value != w.value {
				t.Errorf("%s is %#v, want %#v", w.key, g.value, w.value)
			}
		}
	}
}

// decodeFields decodes a line of one flat JSON object into its fields, in order.
func decodeFields(t *testing.T, line string) []lineField {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(line))
	d.UseNumber()
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("line %q does not open an object: %v", line, err)
	}
	var fields []lineField
	for d.More() {
		key, err := d.Token()
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		value, err := d.Token()
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		fields = append(fields, lineField{key.(string), value})
	}
	return fields
}

// TestRecordRawCountsAsTheHandlerPath counts the same requests by the handler path
// in one observer and by RecordRaw in another, and compares their request, duration
// and rate limit decision series.
func TestRecordRawCountsAsTheHandlerPath(t *testing.T) {
	limit := config.Filter{Type: config.FilterRateLimit, RateLimit: &config.RateLimit{ID: "default/limit", Mode: config.RateLimitLocal}}
	ruleConfig := &config.Rule{Backends: []config.BackendRef{{Backend: "default/a:80", Weight: 1}, {Backend: "default/b:80", Weight: 1}},
		Filters: []config.Filter{limit}}
	observer := func() (*prometheus.Registry, *observe.Listener, *observe.Rule) {
		reg := prometheus.NewRegistry()
		obs, err := observe.New(observe.Options{Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		obs.BeginCompile()
		l, rule := obs.Listener("l"), obs.Rule("default/app", 0, ruleConfig)
		obs.EndCompile(true)
		return reg, l, rule
	}
	handlerReg, l, handlerRule := observer()
	rawReg, _, rawRule := observer()
	requests := []rawCase{
		{status: http.StatusOK, info: reqctx.Info{Backend: "default/a:80", Flags: reqctx.FlagRateLimitPassed}},
		{status: http.StatusOK, info: reqctx.Info{Backend: "default/a:80", Flags: reqctx.FlagRateLimitPassed}},
		{status: http.StatusNotFound, info: reqctx.Info{Backend: "default/b:80", Flags: reqctx.FlagRateLimitPassed | reqctx.FlagRetried}},
		{status: http.StatusServiceUnavailable, info: reqctx.Info{Backend: "default/b:80", Flags: reqctx.FlagNoEndpoints}},
		{status: http.StatusTooManyRequests, info: reqctx.Info{Flags: reqctx.FlagRateLimited}},
		{status: http.StatusBadGateway, info: reqctx.Info{Backend: "default/unknown:80", Flags: reqctx.FlagBackendNotFound}},
		{info: reqctx.Info{Backend: "default/a:80", Flags: reqctx.FlagRateLimitPassed}},
	}
	for _, c := range requests {
		c.method, c.target = http.MethodGet, "/"
		serveHandlerPath(l, handlerRule, c)
		info := c.info
		info.Start = time.Now().Add(-rawAge)
		rawRule.RecordRaw(&info, c.status)
	}
	var nilRule *observe.Rule
	nilRule.RecordRaw(&reqctx.Info{Start: time.Now()}, http.StatusOK)

	want, got := ruleSeries(t, handlerReg), ruleSeries(t, rawReg)
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v after RecordRaw, %v by the handler path", name, got[name], v)
		}
	}
	for name, v := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("RecordRaw made %s = %v, which the handler path has not", name, v)
		}
	}
	// The handler path is the reference, but it must count what the test means.
	expectValue(t, rawReg, 2, "switchyard_requests_total", "route", "default/app", "backend", "default/a:80", "code", "2xx")
	expectValue(t, rawReg, 1, "switchyard_requests_total", "route", "default/app", "backend", "default/a:80", "code", "4xx")
	expectValue(t, rawReg, 1, "switchyard_requests_total", "route", "default/app", "backend", "", "code", "4xx")
	expectValue(t, rawReg, 1, "switchyard_requests_total", "route", "default/app", "backend", "", "code", "5xx")
	expectValue(t, rawReg, 3, "switchyard_request_duration_seconds", "route", "default/app", "backend", "default/a:80")
	expectValue(t, rawReg, 4, "switchyard_rate_limit_decisions_total", "route", "default/app", "decision", "allowed")
	expectValue(t, rawReg, 1, "switchyard_rate_limit_decisions_total", "route", "default/app", "decision", "limited")
	// Durations run from info.Start.
	m := series(t, rawReg, "switchyard_request_duration_seconds", "route", "default/app", "backend", "default/a:80")
	if sum, least := m.GetHistogram().GetSampleSum(), 3*rawAge.Seconds(); sum < least || sum > least+60 {
		t.Errorf("the durations of default/a:80 add up to %vs, want the time since each start, %vs and a little", sum, least)
	}
}

// ruleSeries returns the values of the series RecordRaw counts in: requests (by
// status class), durations (their sample count) and rate limit decisions, by name
// and labels.
func ruleSeries(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, name := range []string{"switchyard_requests_total", "switchyard_request_duration_seconds", "switchyard_rate_limit_decisions_total"} {
		f := family(t, reg, name)
		if f == nil {
			t.Fatalf("no %s", name)
		}
		for _, m := range f.GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				key += fmt.Sprintf(" %s=%q", l.GetName(), l.GetValue())
			}
			if m.Histogram != nil {
				out[key] = float64(m.GetHistogram().GetSampleCount())
			} else {
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// TestRecordsRawWithoutTracing checks that requests are left to the raw path, which
// now writes access log lines, unless they are traced.
func TestRecordsRawWithoutTracing(t *testing.T) {
	var none *observe.Observer
	if !none.RecordsRaw() {
		t.Error("a nil observer does not record raw requests")
	}
	log := observe.NewAccessLog(io.Discard, nil, 1)
	defer log.Close()
	logged, err := observe.New(observe.Options{AccessLog: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if !logged.RecordsRaw() {
		t.Error("an observer with metrics and an access log does not record raw requests")
	}
	tracing, err := observe.NewTracing(context.Background(), observe.TracingOptions{Endpoint: "http://127.0.0.1:1/v1/traces"})
	if err != nil {
		t.Fatal(err)
	}
	defer tracing.Shutdown(context.Background())
	traced, err := observe.New(observe.Options{Tracing: tracing})
	if err != nil {
		t.Fatal(err)
	}
	if traced.RecordsRaw() {
		t.Error("an observer that traces records raw requests")
	}
}
