package observe_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/observe"
)

// otlpReceiver is an OTLP/HTTP traces endpoint on loopback that keeps the spans it is
// sent, decoded from their protobuf encoding.
type otlpReceiver struct {
	url      string
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
}

func startReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rcv := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want a protobuf POST to /v1/traces", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		var req coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rcv.keep(&req)
		resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	rcv.url = srv.URL
	return rcv
}

func (r *otlpReceiver) keep(req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		r.services = append(r.services, stringAttr(rs.GetResource().GetAttributes(), "service.name"))
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
}

// trace returns the spans received of one trace (hex trace ID).
func (r *otlpReceiver) trace(traceID string) []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range r.spans {
		if hex.EncodeToString(s.GetTraceId()) == traceID {
			out = append(out, s)
		}
	}
	return out
}

func (r *otlpReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.spans)
}

func stringAttr(attrs []*commonpb.KeyValue, key string) string {
	for _, a := range attrs {
		if a.GetKey() == key {
			return a.GetValue().GetStringValue()
		}
	}
	return ""
}

func intAttr(attrs []*commonpb.KeyValue, key string) int64 {
	for _, a := range attrs {
		if a.GetKey() == key {
			return a.GetValue().GetIntValue()
		}
	}
	return -1
}

// traceHeaders records the trace context headers the backend receives.
type traceHeaders struct {
	mu          sync.Mutex
	traceparent []string
	tracestate  []string
}

func (h *traceHeaders) handler(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.traceparent = append(h.traceparent, r.Header.Get("Traceparent"))
	h.tracestate = append(h.tracestate, r.Header.Get("Tracestate"))
	h.mu.Unlock()
	_, _ = io.WriteString(w, "traced")
}

func (h *traceHeaders) last() (traceparent, tracestate string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.traceparent) == 0 {
		return "", ""
	}
	return h.traceparent[len(h.traceparent)-1], h.tracestate[len(h.tracestate)-1]
}

// tracedGateway serves /retry (first endpoint refuses connections, one retry) to a
// backend that records trace headers, observed with obs.
func tracedGateway(t *testing.T, obs *observe.Observer) (string, *traceHeaders) {
	t.Helper()
	seen := &traceHeaders{}
	backend := startBackend(t, seen.handler)
	routes := []config.Route{prefixRoute("default/r", "/retry", config.Rule{Backends: to("default/b:80"), Retry: &config.Retry{Attempts: 1}})}
	_, url := startEngine(t, obs, snapshot("v1", routes, httpBackend("default/b:80", closedAddr(t), backend)))
	return url, seen
}

func startTracing(t *testing.T, rcv *otlpReceiver, ratio float64) *observe.Tracing {
	t.Helper()
	tracing, err := observe.NewTracing(context.Background(), observe.TracingOptions{Endpoint: rcv.url, SampleRatio: ratio})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tracing.Shutdown(ctx)
	})
	return tracing
}

func flush(t *testing.T, tracing *observe.Tracing) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tracing.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
}

// splitTraceparent returns the trace ID, parent ID and flags of a traceparent.
func splitTraceparent(t *testing.T, v string) (traceID, parentID, flags string) {
	t.Helper()
	parts := strings.Split(v, "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		t.Fatalf("traceparent %q is malformed", v)
	}
	return parts[1], parts[2], parts[3]
}

func TestTracingContinuesTheClientsTrace(t *testing.T) {
	rcv := startReceiver(t)
	tracing := startTracing(t, rcv, 1)
	obs, err := observe.New(observe.Options{Tracing: tracing})
	if err != nil {
		t.Fatal(err)
	}
	url, seen := tracedGateway(t, obs)
	const traceID, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	if code := send(t, url+"/retry", "Traceparent", "00-"+traceID+"-"+clientSpan+"-01", "Tracestate", "vendor=opaque"); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	flush(t, tracing)

	spans := rcv.trace(traceID)
	if len(spans) != 3 {
		t.Fatalf("%d spans of the trace, want the request's and two attempts'", len(spans))
	}
	var server *tracepb.Span
	var attempts []*tracepb.Span
	for _, s := range spans {
		switch s.GetKind() {
		case tracepb.Span_SPAN_KIND_SERVER:
			server = s
		case tracepb.Span_SPAN_KIND_CLIENT:
			attempts = append(attempts, s)
		}
	}
	if server == nil || len(attempts) != 2 {
		t.Fatalf("spans %v; want one server and two client spans", spans)
	}
	if hex.EncodeToString(server.GetParentSpanId()) != clientSpan || server.GetName() != "GET default/r" ||
		stringAttr(server.GetAttributes(), "switchyard.route") != "default/r" || intAttr(server.GetAttributes(), "http.response.status_code") != 200 ||
		intAttr(server.GetAttributes(), "switchyard.attempts") != 2 {
		t.Errorf("server span: %v", server)
	}
	failed, answered := attempts[0], attempts[1]
	if failed.GetStartTimeUnixNano() > answered.GetStartTimeUnixNano() {
		failed, answered = answered, failed
	}
	for _, a := range attempts {
		if !bytes.Equal(a.GetParentSpanId(), server.GetSpanId()) || stringAttr(a.GetAttributes(), "switchyard.backend") != "default/b:80" {
			t.Errorf("attempt span is not the server span's child: %v", a)
		}
	}
	if failed.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR || intAttr(answered.GetAttributes(), "http.response.status_code") != 200 {
		t.Errorf("attempts: failed %v, answered %v", failed, answered)
	}
	if got := rcv.services; len(got) == 0 || got[0] != "switchyard" {
		t.Errorf("service names %v", got)
	}

	traceparent, tracestate := seen.last()
	gotTrace, gotParent, gotFlags := splitTraceparent(t, traceparent)
	if gotTrace != traceID || gotParent != hex.EncodeToString(answered.GetSpanId()) || gotFlags != "01" || tracestate != "vendor=opaque" {
		t.Errorf("the backend got traceparent %q tracestate %q; want the trace, the answered attempt's span as parent, sampled, and the state",
			traceparent, tracestate)
	}
}

func TestTracingStartsTracesAndHonoursTheSampleRatio(t *testing.T) {
	rcv := startReceiver(t)
	for _, ratio := range []float64{1, 0} {
		tracing := startTracing(t, rcv, ratio)
		obs, err := observe.New(observe.Options{Tracing: tracing})
		if err != nil {
			t.Fatal(err)
		}
		url, seen := tracedGateway(t, obs)
		before := rcv.count()
		send(t, url+"/retry")
		flush(t, tracing)
		traceparent, _ := seen.last()
		traceID, _, flags := splitTraceparent(t, traceparent)
		spans := rcv.trace(traceID)
		if ratio == 1 {
			if flags != "01" || len(spans) != 3 {
				t.Fatalf("ratio 1: traceparent %q, %d spans; want a sampled new trace of 3 spans", traceparent, len(spans))
			}
			for _, s := range spans {
				if s.GetKind() == tracepb.Span_SPAN_KIND_SERVER && len(s.GetParentSpanId()) != 0 {
					t.Errorf("the root span has a parent: %v", s)
				}
			}
			continue
		}
		if flags != "00" || traceID == strings.Repeat("0", 32) || rcv.count() != before {
			t.Fatalf("ratio 0: traceparent %q and %d new spans; want a new trace, not sampled, and no spans", traceparent, rcv.count()-before)
		}
		// A parent that was sampled decides for the request, whatever the ratio.
		const sampled = "0af7651916cd43dd8448eb211c80319c"
		send(t, url+"/retry", "Traceparent", "00-"+sampled+"-b7ad6b7169203331-01")
		flush(t, tracing)
		if n := len(rcv.trace(sampled)); n != 3 {
			t.Fatalf("ratio 0 with a sampled parent: %d spans, want 3", n)
		}
	}
}

func TestTraceContextPassesThroughWithoutTracing(t *testing.T) {
	observers := map[string]*observe.Observer{"no observer": nil}
	withMetrics, err := observe.New(observe.Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	observers["metrics only"] = withMetrics
	for name, obs := range observers {
		t.Run(name, func(t *testing.T) {
			url, seen := tracedGateway(t, obs)
			const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
			send(t, url+"/retry", "Traceparent", traceparent, "Tracestate", "vendor=opaque")
			if got, state := seen.last(); got != traceparent || state != "vendor=opaque" {
				t.Errorf("the backend got traceparent %q tracestate %q; want them unchanged", got, state)
			}
			send(t, url+"/retry")
			if got, _ := seen.last(); got != "" {
				t.Errorf("a request without trace context reached the backend with traceparent %q", got)
			}
		})
	}
}

func TestNewTracingChecksItsOptions(t *testing.T) {
	for _, opts := range []observe.TracingOptions{
		{Endpoint: "collector:4318", SampleRatio: 1},
		{Endpoint: "ftp://collector:4318", SampleRatio: 1},
		{Endpoint: "http://", SampleRatio: 1},
		{Endpoint: "http://collector:4318", SampleRatio: 1.5},
		{Endpoint: "http://collector:4318", SampleRatio: -1},
	} {
		if tr, err := observe.NewTracing(context.Background(), opts); err == nil {
			_ = tr.Shutdown(context.Background())
			t.Errorf("NewTracing(%+v) was accepted", opts)
		}
	}
}
