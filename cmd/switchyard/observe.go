package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel"

	"github.com/switchyard-dev/switchyard/gateway/observe"
)

// observeFlags are the observability flags of commands that carry traffic: request
// metrics, the access log and tracing.
type observeFlags struct {
	routeMetrics     string
	accessLog        string
	accessLogSample  float64
	otlpEndpoint     string
	traceSampleRatio float64
}

func (o *observeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.routeMetrics, "route-metrics", string(observe.RouteMetricsFull),
		"request metrics per route: full (counts and histograms per route and backend), coarse (counts per route and backend, histograms per backend) or off (per backend only)")
	fs.StringVar(&o.accessLog, "access-log", "off", "access log destination: off, stdout or a file path (one JSON line per request)")
	fs.Float64Var(&o.accessLogSample, "access-log-sample", 1, "share of requests answered below 500 that the access log records, 0 to 1; 5xx answers are always recorded")
	fs.StringVar(&o.otlpEndpoint, "otlp-endpoint", "", "OTLP/HTTP traces URL (http://collector:4318/v1/traces); when set, requests are traced and spans exported")
	fs.Float64Var(&o.traceSampleRatio, "trace-sample-ratio", 1, "share of new traces recorded, 0 to 1; a request's sampled traceparent decides for it")
}

// newMetricsRegistry returns the registry a data plane's /metrics serves: runtime and
// process figures, and what the Observer registers.
func newMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// observer builds the data plane's Observer, registering its metrics on reg. The
// returned stop writes out the access log's buffered lines and the spans waiting
// for export; call it once the data plane has drained.
func (o *observeFlags) observer(reg prometheus.Registerer, logger *slog.Logger) (*observe.Observer, func(), error) {
	mode, err := observe.ParseRouteMetrics(o.routeMetrics)
	if err != nil {
		return nil, nil, errors.New("--route-metrics: " + err.Error())
	}
	if o.traceSampleRatio < 0 || o.traceSampleRatio > 1 {
		return nil, nil, errors.New("--trace-sample-ratio: want 0 to 1")
	}
	accessLog, err := observe.OpenAccessLog(o.accessLog, o.accessLogSample)
	if err != nil {
		return nil, nil, errors.New("--access-log: " + err.Error())
	}
	var tracing *observe.Tracing
	if o.otlpEndpoint != "" {
		// Export failures are reported by the SDK's global handler; they go to the
		// gateway's log rather than the SDK's default logger.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { logger.Warn("span export failed", "error", err) }))
		tracing, err = observe.NewTracing(context.Background(), observe.TracingOptions{Endpoint: o.otlpEndpoint, SampleRatio: o.traceSampleRatio})
		if err != nil {
			closeAccessLog(accessLog)
			return nil, nil, errors.New("--otlp-endpoint: " + err.Error())
		}
	}
	stop := func() {
		closeAccessLog(accessLog)
		if tracing != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tracing.Shutdown(ctx); err != nil {
				logger.Warn("spans could not all be exported at shutdown", "error", err)
			}
		}
	}
	obs, err := observe.New(observe.Options{Registerer: reg, RouteMetrics: mode, AccessLog: accessLog, Tracing: tracing})
	if err != nil {
		stop()
		return nil, nil, err
	}
	return obs, stop, nil
}

func closeAccessLog(a *observe.AccessLog) {
	if a != nil {
		_ = a.Close()
	}
}
