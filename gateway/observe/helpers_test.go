package observe_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/dataplane"
	"github.com/switchyard-dev/switchyard/gateway/observe"
	// The test routes use the rate limit filter, which registers itself.
	_ "github.com/switchyard-dev/switchyard/plugins/all"
)

// testClient bounds every test request in time and keeps no connection between
// tests.
var testClient = &http.Client{Timeout: 10 * time.Second}

// listenerName is the one listener of the test snapshots.
const listenerName = "127.0.0.1:0"

// startEngine runs a data plane observed by obs, serving snap.
func startEngine(t *testing.T, obs *observe.Observer, snap *config.Snapshot) (*dataplane.Engine, string) {
	t.Helper()
	e := dataplane.New(dataplane.Options{Observer: obs, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	if err := e.Apply(snap); err != nil {
		t.Fatal(err)
	}
	return e, "http://" + e.Addr(listenerName)
}

// startBackend runs h on a loopback port and returns its address.
func startBackend(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// closedAddr returns a loopback address that refuses connections.
func closedAddr(t *testing.T) string {
	t.Helper()
	// On 127.0.0.2, so that the port freed here cannot be taken again by a
	// gateway listener of the test, which binds 127.0.0.1.
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func endpoints(addrs ...string) []config.Endpoint {
	out := make([]config.Endpoint, len(addrs))
	for i, a := range addrs {
		out[i] = config.Endpoint{Address: a, Ready: true, Serving: true}
	}
	return out
}

func httpBackend(name string, addrs ...string) config.Backend {
	return config.Backend{Name: name, Protocol: config.AppProtocolHTTP1, Endpoints: endpoints(addrs...)}
}

// prefixRoute is a route taking the requests under prefix to the rule's backends.
func prefixRoute(name, prefix string, rule config.Rule) config.Route {
	rule.Matches = []config.Match{{Path: &config.PathMatch{Type: config.PathPrefix, Value: prefix}}}
	return config.Route{Name: name, Rules: []config.Rule{rule}}
}

func to(backend string) []config.BackendRef {
	return []config.BackendRef{{Backend: backend, Weight: 1}}
}

// snapshot serves routes on one loopback listener.
func snapshot(version string, routes []config.Route, backends ...config.Backend) *config.Snapshot {
	return &config.Snapshot{
		SchemaVersion: config.SchemaVersion,
		Version:       version,
		Listeners: []config.Listener{{
			Name: listenerName, Address: "127.0.0.1", Protocol: config.ProtocolHTTP,
			VirtualHosts: []config.VirtualHost{{Name: "default/gw/http", Routes: routes}},
		}},
		Backends: backends,
	}
}

// send makes a GET with the headers given as name, value pairs and returns the
// status, having read the body.
func send(t *testing.T, url string, headers ...string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// family returns the metric family of a name, or nil.
func family(t *testing.T, reg prometheus.Gatherer, name string) *dto.MetricFamily {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

// series returns the metric of a family whose labels are exactly labels (name,
// value pairs), or nil.
func series(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) *dto.Metric {
	t.Helper()
	f := family(t, reg, name)
	if f == nil {
		return nil
	}
	for _, m := range f.GetMetric() {
		if hasLabels(m, labels) {
			return m
		}
	}
	return nil
}

func hasLabels(m *dto.Metric, labels []string) bool {
	if len(m.GetLabel())*2 != len(labels) {
		return false
	}
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// value returns the value of a counter or gauge series, or of a histogram's sample
// count; -1 when the series does not exist.
func value(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	m := series(t, reg, name, labels...)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return -1
}

// expectValue fails the test unless a series has the wanted value.
func expectValue(t *testing.T, reg prometheus.Gatherer, want float64, name string, labels ...string) {
	t.Helper()
	if got := value(t, reg, name, labels...); got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// eventuallyValue waits, for up to five seconds, until a series has the wanted
// value, and fails the test if it never does. It is for what a request records once
// its client has the answer: a request forwarded from its wire form is counted out
// of requests_in_flight just after its answer is written.
func eventuallyValue(t *testing.T, reg prometheus.Gatherer, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := value(t, reg, name, labels...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s%v = %v after 5s, want %v", name, labels, got, want)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
