package observe_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/observe"
)

// metricsFixture is a gateway with one route per behaviour the metrics count:
//
//   - /split: stable (200) by weight, the canary (500) for requests with x-canary;
//     the canary's two endpoints are under outlier detection that ejects after
//     one failure, at most half of them.
//   - /retry: a backend whose first endpoint refuses connections, so that round
//     robin makes every request fail once and be retried on the second.
//   - /tight: a backend whose breaker admits one request at a time, and which
//     holds each request until released.
//   - /limited: a route-wide rate limit of 2 per minute.
type metricsFixture struct {
	reg     *prometheus.Registry
	url     string
	release chan struct{}
	arrived chan struct{}
}

func newMetricsFixture(t *testing.T, mode observe.RouteMetrics) *metricsFixture {
	t.Helper()
	f := &metricsFixture{reg: prometheus.NewRegistry(), release: make(chan struct{}), arrived: make(chan struct{}, 1)}
	obs, err := observe.New(observe.Options{Registerer: f.reg, RouteMetrics: mode})
	if err != nil {
		t.Fatal(err)
	}
	ok := startBackend(t, answer(http.StatusOK, "ok"))
	failing := answer(http.StatusInternalServerError, "failing")
	blocking := startBackend(t, func(w http.ResponseWriter, r *http.Request) {
		f.arrived <- struct{}{}
		select {
		case <-f.release:
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	canary := httpBackend("default/canary:80", startBackend(t, failing), startBackend(t, failing))
	canary.OutlierDetection = &config.OutlierDetection{Consecutive5xx: 1, BaseEjectionTime: config.Duration(time.Minute), MaxEjectionPercent: 50}
	tight := httpBackend("default/tight:80", blocking)
	tight.CircuitBreaker = &config.CircuitBreaker{MaxRequests: 1}
	limit := config.Filter{Type: config.FilterRateLimit, RateLimit: &config.RateLimit{ID: "default/limit", Mode: config.RateLimitLocal,
		Rules: []config.RateLimitRule{{Key: config.RateLimitKey{Type: config.KeyRoute}, Requests: 2, Per: config.Duration(time.Minute)}}}}
	split := config.Rule{
		Backends:    []config.BackendRef{{Backend: "default/stable:80", Weight: 1}, {Backend: "default/canary:80", Weight: 0}},
		HeaderRoute: &config.HeaderRoute{Headers: []config.Header{{Name: "x-canary", Value: "1"}}, Backend: 1},
	}
	routes := []config.Route{
		prefixRoute("default/split", "/split", split),
		prefixRoute("default/retry", "/retry", config.Rule{Backends: to("default/flaky:80"), Retry: &config.Retry{Attempts: 1}}),
		prefixRoute("default/tight", "/tight", config.Rule{Backends: to("default/tight:80")}),
		prefixRoute("default/limited", "/limited", config.Rule{Backends: to("default/stable:80"), Filters: []config.Filter{limit}}),
	}
	snap := snapshot("v1", routes, httpBackend("default/stable:80", ok), canary,
		httpBackend("default/flaky:80", closedAddr(t), ok), tight)
	_, f.url = startEngine(t, obs, snap)
	return f
}

func TestMetricsCountTrafficThroughTheGateway(t *testing.T) {
	f := newMetricsFixture(t, observe.RouteMetricsFull)
	reg := f.reg
	for range 3 {
		if code := send(t, f.url+"/split"); code != http.StatusOK {
			t.Fatalf("/split: %d", code)
		}
	}
	for range 2 {
		if code := send(t, f.url+"/split", "X-Canary", "1"); code != http.StatusInternalServerError {
			t.Fatalf("/split canary: %d", code)
		}
	}
	for range 4 {
		if code := send(t, f.url+"/retry"); code != http.StatusOK {
			t.Fatalf("/retry: %d", code)
		}
	}
	for _, want := range []int{200, 200, 429} {
		if code := send(t, f.url+"/limited"); code != want {
			t.Fatalf("/limited: %d, want %d", code, want)
		}
	}
	if code := send(t, f.url+"/nowhere"); code != http.StatusNotFound {
		t.Fatalf("/nowhere: %d", code)
	}
	f.breakerTrip(t)

	expectValue(t, reg, 3, "switchyard_requests_total", "route", "default/split", "backend", "default/stable:80", "code", "2xx")
	expectValue(t, reg, 2, "switchyard_requests_total", "route", "default/split", "backend", "default/canary:80", "code", "5xx")
	expectValue(t, reg, 4, "switchyard_requests_total", "route", "default/retry", "backend", "default/flaky:80", "code", "2xx")
	expectValue(t, reg, 2, "switchyard_requests_total", "route", "default/limited", "backend", "default/stable:80", "code", "2xx")
	// The rate limit answered before a backend was chosen.
	expectValue(t, reg, 1, "switchyard_requests_total", "route", "default/limited", "backend", "", "code", "4xx")
	expectValue(t, reg, 1, "switchyard_requests_total", "route", "default/tight", "backend", "default/tight:80", "code", "2xx")
	expectValue(t, reg, 1, "switchyard_requests_total", "route", "default/tight", "backend", "default/tight:80", "code", "5xx")
	// Classes a pair never answered, and pairs that never answered, have no series.
	expectValue(t, reg, -1, "switchyard_requests_total", "route", "default/split", "backend", "default/stable:80", "code", "5xx")
	expectValue(t, reg, -1, "switchyard_request_duration_seconds", "route", "default/split", "backend", "")
	expectValue(t, reg, 1, "switchyard_request_duration_seconds", "route", "default/limited", "backend", "")

	expectValue(t, reg, 3, "switchyard_request_duration_seconds", "route", "default/split", "backend", "default/stable:80")
	expectValue(t, reg, 2, "switchyard_request_duration_seconds", "route", "default/split", "backend", "default/canary:80")
	expectValue(t, reg, 4, "switchyard_request_duration_seconds", "route", "default/retry", "backend", "default/flaky:80")
	if m := series(t, reg, "switchyard_request_duration_seconds", "route", "default/tight", "backend", "default/tight:80"); m == nil ||
		m.GetHistogram().GetSampleSum() <= 0 {
		t.Errorf("the duration histogram of /tight has no time in it: %v", m)
	}

	expectValue(t, reg, 4, "switchyard_backend_retries_total", "backend", "default/flaky:80")
	expectValue(t, reg, 0, "switchyard_backend_retries_total", "backend", "default/stable:80")
	expectValue(t, reg, 1, "switchyard_backend_circuit_breaker_trips_total", "backend", "default/tight:80")
	expectValue(t, reg, 0, "switchyard_backend_circuit_breaker_trips_total", "backend", "default/stable:80")
	// The first canary failure ejects one endpoint; a second would exceed 50%.
	expectValue(t, reg, 1, "switchyard_backend_outlier_ejections_total", "backend", "default/canary:80")
	expectValue(t, reg, 2, "switchyard_rate_limit_decisions_total", "route", "default/limited", "decision", "allowed")
	expectValue(t, reg, 1, "switchyard_rate_limit_decisions_total", "route", "default/limited", "decision", "limited")
	// Routes without a rate limit have no decision series.
	expectValue(t, reg, -1, "switchyard_rate_limit_decisions_total", "route", "default/split", "decision", "allowed")
	expectValue(t, reg, 1, "switchyard_unmatched_requests_total", "listener", listenerName, "reason", "no-route")
	// The last requests' answers are out, but their handlers may not have finished.
	eventuallyValue(t, reg, 0, "switchyard_requests_in_flight", "listener", listenerName)
	expectValue(t, reg, 1, "switchyard_config_reloads_total", "outcome", "success")
	expectValue(t, reg, 0, "switchyard_config_reloads_total", "outcome", "failure")
	expectValue(t, reg, 1, "switchyard_config_info", "version", "v1")
}

// breakerTrip holds one request to /tight in the backend, checks that it counts as
// in flight, sends a second that the breaker turns away, and lets the first finish.
func (f *metricsFixture) breakerTrip(t *testing.T) {
	t.Helper()
	first := make(chan int, 1)
	go func() {
		res, err := testClient.Get(f.url + "/tight")
		if err != nil {
			first <- 0
			return
		}
		res.Body.Close()
		first <- res.StatusCode
	}()
	select {
	case <-f.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the first /tight request never reached the backend")
	}
	expectValue(t, f.reg, 1, "switchyard_requests_in_flight", "listener", listenerName)
	if code := send(t, f.url+"/tight"); code != http.StatusServiceUnavailable {
		t.Fatalf("second /tight: %d, want 503 from the breaker", code)
	}
	close(f.release)
	if code := <-first; code != http.StatusOK {
		t.Fatalf("first /tight: %d", code)
	}
}

func TestCoarseAndOffRouteMetricsShareSeries(t *testing.T) {
	for _, mode := range []observe.RouteMetrics{observe.RouteMetricsCoarse, observe.RouteMetricsOff} {
		t.Run(string(mode), func(t *testing.T) {
			f := newMetricsFixture(t, mode)
			for _, path := range []string{"/split", "/split", "/limited", "/limited"} {
				if code := send(t, f.url+path); code != http.StatusOK {
					t.Fatalf("%s: %d", path, code)
				}
			}
			route := func(name string) string {
				if mode == observe.RouteMetricsOff {
					return ""
				}
				return name
			}
			if mode == observe.RouteMetricsCoarse {
				expectValue(t, f.reg, 2, "switchyard_requests_total", "route", "default/split", "backend", "default/stable:80", "code", "2xx")
				expectValue(t, f.reg, 2, "switchyard_requests_total", "route", "default/limited", "backend", "default/stable:80", "code", "2xx")
			} else {
				expectValue(t, f.reg, 4, "switchyard_requests_total", "route", "", "backend", "default/stable:80", "code", "2xx")
			}
			// One histogram per backend, whatever the route.
			expectValue(t, f.reg, 4, "switchyard_request_duration_seconds", "route", "", "backend", "default/stable:80")
			expectValue(t, f.reg, -1, "switchyard_request_duration_seconds", "route", "default/split", "backend", "default/stable:80")
			expectValue(t, f.reg, 2, "switchyard_rate_limit_decisions_total", "route", route("default/limited"), "decision", "allowed")
		})
	}
}

func TestReloadsCountAndRemovedRoutesLoseTheirSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	obs, err := observe.New(observe.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ok := startBackend(t, answer(http.StatusOK, "ok"))
	// routes returns new routes each time, so that spoiling one snapshot leaves the
	// others intact.
	routes := func(n int) []config.Route {
		return []config.Route{
			prefixRoute("default/a", "/a", config.Rule{Backends: to("default/a:80")}),
			prefixRoute("default/b", "/b", config.Rule{Backends: to("default/b:80"), Retry: &config.Retry{Attempts: 1}}),
		}[:n]
	}
	e, url := startEngine(t, obs, snapshot("v1", routes(2), httpBackend("default/a:80", ok), httpBackend("default/b:80", ok)))
	send(t, url+"/a")
	send(t, url+"/b")
	expectValue(t, reg, 1, "switchyard_requests_total", "route", "default/b", "backend", "default/b:80", "code", "2xx")

	bad := snapshot("v2", routes(1), httpBackend("default/a:80", ok))
	bad.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Matches[0].Path = &config.PathMatch{Type: config.PathRegularExpression, Value: "(unclosed"}
	if err := e.Apply(bad); err == nil {
		t.Fatal("an invalid snapshot was accepted")
	}
	expectValue(t, reg, 1, "switchyard_config_reloads_total", "outcome", "failure")
	// A rejected snapshot takes nothing out of the metrics.
	expectValue(t, reg, 1, "switchyard_requests_total", "route", "default/b", "backend", "default/b:80", "code", "2xx")
	expectValue(t, reg, 1, "switchyard_config_info", "version", "v1")

	if err := e.Apply(snapshot("v3", routes(1), httpBackend("default/a:80", ok))); err != nil {
		t.Fatal(err)
	}
	send(t, url+"/a")
	expectValue(t, reg, 2, "switchyard_config_reloads_total", "outcome", "success")
	expectValue(t, reg, 1, "switchyard_config_info", "version", "v3")
	expectValue(t, reg, -1, "switchyard_config_info", "version", "v1")
	expectValue(t, reg, 2, "switchyard_requests_total", "route", "default/a", "backend", "default/a:80", "code", "2xx")
	expectValue(t, reg, -1, "switchyard_requests_total", "route", "default/b", "backend", "default/b:80", "code", "2xx")
	expectValue(t, reg, -1, "switchyard_request_duration_seconds", "route", "default/b", "backend", "default/b:80")
	expectValue(t, reg, -1, "switchyard_backend_retries_total", "backend", "default/b:80")
	expectValue(t, reg, -1, "switchyard_backend_circuit_breaker_trips_total", "backend", "default/b:80")
	if ts := value(t, reg, "switchyard_config_last_reload_success_timestamp_seconds"); ts < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last reload timestamp %v is not recent", ts)
	}
}
