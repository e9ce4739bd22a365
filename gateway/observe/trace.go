package observe

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of the gateway's spans.
const tracerName = "github.com/switchyard-dev/switchyard/gateway"

// TracingOptions configure span export.
type TracingOptions struct {
	// Endpoint is the OTLP/HTTP traces URL, such as
	// http://collector:4318/v1/traces; a URL without a path gets /v1/traces.
	Endpoint string
	// SampleRatio is the share of new traces (requests without a sampled parent)
	// that are recorded, from 0 to 1. Requests whose traceparent says sampled are
	// always recorded, those that say not sampled never are, as W3C trace context
	// asks of a participant.
	SampleRatio float64
	// ServiceName is the service.name of the spans; empty means "switchyard".
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override it.
	ServiceName string
	// BatchTimeout is the longest a span waits before it is exported; zero means
	// the SDK's default (5s).
	BatchTimeout time.Duration
}

// Tracing exports spans over OTLP/HTTP through a batch span processor, so that
// requests never wait for the collector: when its queue is full, spans are dropped.
type Tracing struct {
	provider *sdktrace.TracerProvider
}

// NewTracing starts span export to opts.Endpoint.
func NewTracing(ctx context.Context, opts TracingOptions) (*Tracing, error) {
	endpoint, err := tracesURL(opts.Endpoint)
	if err != nil {
		return nil, err
	}
	if opts.SampleRatio < 0 || opts.SampleRatio > 1 {
		return nil, fmt.Errorf("trace sample ratio %v: want 0 to 1", opts.SampleRatio)
	}
	exporter, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	name := opts.ServiceName
	if name == "" {
		name = "switchyard"
	}
	res, err := resource.New(ctx, resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", name)), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	var batch []sdktrace.BatchSpanProcessorOption
	if opts.BatchTimeout > 0 {
		batch = append(batch, sdktrace.WithBatchTimeout(opts.BatchTimeout))
	}
	provider := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter, batch...),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(opts.SampleRatio))),
	)
	return &Tracing{provider: provider}, nil
}

// tracesURL checks an OTLP endpoint and gives it the traces path when it has none.
func tracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("OTLP endpoint: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("OTLP endpoint %q: want http:// or https:// and a host", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// ForceFlush exports the spans that have ended and wait in the batch.
func (t *Tracing) ForceFlush(ctx context.Context) error { return t.provider.ForceFlush(ctx) }

// Shutdown exports the spans that wait and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.provider.Shutdown(ctx) }

func injectContext(p propagation.TextMapPropagator, ctx context.Context, h http.Header) {
	p.Inject(ctx, propagation.HeaderCarrier(h))
}

// startServerSpan starts the span of a request received, as a child of the trace
// context the client sent, if any.
func (o *Observer) startServerSpan(r *http.Request) (*http.Request, trace.Span) {
	ctx := o.propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	// Attributes are set once the sampler has decided, so that a request that is
	// not recorded does not pay for them.
	ctx, span := o.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("url.path", r.URL.Path),
			attribute.String("server.address", r.Host),
		)
	}
	return r.WithContext(ctx), span
}

// StartAttempt starts the span of one try at forwarding a request to an endpoint,
// as a child of the request's span, and returns the context the try is made in,
// whose trace context Inject writes into the outbound request. Without tracing it
// returns ctx and a nil span.
func (o *Observer) StartAttempt(ctx context.Context, backend, endpoint string) (context.Context, trace.Span) {
	if o == nil || o.tracer == nil {
		return ctx, nil
	}
	ctx, span := o.tracer.Start(ctx, "forward", trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(attribute.String("switchyard.backend", backend), attribute.String("server.address", endpoint))
	}
	return ctx, span
}

// EndAttempt ends an attempt's span with the status the backend answered, or the
// error the attempt failed with (status 0).
func EndAttempt(span trace.Span, status int, err error) {
	if span == nil {
		return
	}
	if !span.IsRecording() {
		span.End()
		return
	}
	if status > 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	switch {
	case err != nil:
		span.SetStatus(codes.Error, err.Error())
	case status >= 500:
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// traceIDOf returns the trace ID of a request for its access log line: its span's
// when it is traced, else the one of the traceparent the client sent when that is
// well formed, else "".
func traceIDOf(span trace.Span, r *http.Request) string {
	if span != nil {
		if sc := span.SpanContext(); sc.HasTraceID() {
			return sc.TraceID().String()
		}
	}
	if r == nil {
		return ""
	}
	// The header's key is canonical already: Get would canonicalise it for every
	// line.
	if v := r.Header["Traceparent"]; len(v) > 0 {
		return traceparentID(v[0])
	}
	return ""
}

// traceparentID returns the trace-id field of a W3C traceparent value
// ("00-<32 hex>-<16 hex>-<2 hex>"), or "" when it is malformed or all zeros.
func traceparentID(v string) string {
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return ""
	}
	id := v[3:35]
	if id == "00000000000000000000000000000000" {
		return ""
	}
	for i := range len(id) {
		if !isLowerHex(id[i]) {
			return ""
		}
	}
	return id
}

func isLowerHex(c byte) bool { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') }
