package config

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func validSnapshot() *Snapshot {
	return &Snapshot{
		SchemaVersion: SchemaVersion,
		Version:       "v",
		Listeners: []Listener{{
			Name: ":80", Port: 80, Protocol: ProtocolHTTP,
			VirtualHosts: []VirtualHost{{
				Name: "ns/gw/http",
				Routes: []Route{{
					Name: "ns/r",
					Rules: []Rule{{
						Matches:  []Match{{Path: &PathMatch{Type: PathPrefix, Value: "/"}}},
						Backends: []BackendRef{{Backend: "ns/svc:80", Weight: 1}},
					}},
				}},
			}},
		}},
		Backends: []Backend{{Name: "ns/svc:80", Protocol: AppProtocolHTTP1,
			Endpoints: []Endpoint{{Address: "127.0.0.1:8080", Ready: true, Serving: true}}}},
	}
}

func TestValidateAcceptsAGoodSnapshot(t *testing.T) {
	if err := validSnapshot().Validate(); err != nil {
		t.Fatal(err)
	}
}

// Each case breaks one thing and expects an error naming it.
func TestValidateNamesEachProblem(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(s *Snapshot)
		want   string
	}{
		{"schema", func(s *Snapshot) { s.SchemaVersion = 99 }, "schemaVersion 99"},
		{"port", func(s *Snapshot) { s.Listeners[0].Port = 70000 }, "port 70000"},
		{"address", func(s *Snapshot) { s.Listeners[0].Address = "not-an-ip" }, `address "not-an-ip"`},
		{"duplicate socket", func(s *Snapshot) { s.Listeners = append(s.Listeners, s.Listeners[0]) }, "used by another listener"},
		{"https without certs", func(s *Snapshot) { s.Listeners[0].Protocol = ProtocolHTTPS }, "HTTPS needs at least one certificate"},
		{"regex", func(s *Snapshot) {
			s.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Matches[0].Path = &PathMatch{Type: PathRegularExpression, Value: "("}
		}, "invalid regular expression"},
		{"undefined backend", func(s *Snapshot) {
			s.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Backends[0].Backend = "ns/none:80"
		}, `backend "ns/none:80" is not defined`},
		{"negative weight", func(s *Snapshot) {
			s.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Backends[0].Weight = -1
		}, "weight -1 is negative"},
		{"redirect code", func(s *Snapshot) {
			s.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Filters = []Filter{{Type: FilterRequestRedirect, RequestRedirect: &Redirect{StatusCode: 418}}}
		}, "418 is not a redirect code"},
		{"endpoint address", func(s *Snapshot) { s.Backends[0].Endpoints[0].Address = "nope" }, `endpoint "nope"`},
		{"backend protocol", func(s *Snapshot) { s.Backends[0].Protocol = "gopher" }, `protocol "gopher"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := validSnapshot()
			c.mutate(s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	b, err := json.Marshal(Timeouts{Request: Duration(1500 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"request":"1.5s"}` {
		t.Fatalf("marshal = %s", b)
	}
	var back Timeouts
	if err := json.Unmarshal(b, &back); err != nil || back.Request.D() != 1500*time.Millisecond {
		t.Fatalf("round trip = %v, %v", back.Request.D(), err)
	}
	if err := json.Unmarshal([]byte(`{"request":"soon"}`), &back); err == nil {
		t.Fatal("a malformed duration was accepted")
	}
}

func TestValidateRetryPolicies(t *testing.T) {
	good := Retry{Attempts: 2, Codes: []int{503}, On: []RetryCondition{RetryGatewayError, RetryReset},
		Backoff: Duration(25 * time.Millisecond), MaxBackoff: Duration(time.Second),
		Budget: &RetryBudget{Percent: 20, MinRetriesPerSecond: 10}}
	s := validSnapshot()
	s.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Retry = &good
	if err := s.Validate(); err != nil {
		t.Fatalf("a good retry policy: %v", err)
	}
	bad := map[string]Retry{
		"negative":       {Attempts: -1},
		"not in 400-599": {Attempts: 1, Codes: []int{200}},
		"not one of":     {Attempts: 1, On: []RetryCondition{"sometimes"}},
		"shorter than":   {Attempts: 1, Backoff: Duration(time.Second), MaxBackoff: Duration(time.Millisecond)},
		"budget percent": {Attempts: 1, Budget: &RetryBudget{Percent: 101}},
	}
	for want, r := range bad {
		s := validSnapshot()
		s.Listeners[0].VirtualHosts[0].Routes[0].Rules[0].Retry = &r
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("retry %+v: error %v; want one saying %q", r, err, want)
		}
	}
}

func TestValidateCircuitBreaker(t *testing.T) {
	s := validSnapshot()
	s.Backends[0].CircuitBreaker = &CircuitBreaker{MaxRequests: -1}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "circuit breaker") {
		t.Fatalf("a negative cap: %v", err)
	}
	s.Backends[0].CircuitBreaker = &CircuitBreaker{MaxConnections: 10, MaxPendingRequests: 5}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateOutlierAndHealth(t *testing.T) {
	s := validSnapshot()
	s.Backends[0].OutlierDetection = &OutlierDetection{Consecutive5xx: 5}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "baseEjectionTime") {
		t.Fatalf("outlier detection without a base ejection time: %v", err)
	}
	s.Backends[0].OutlierDetection = nil
	s.Backends[0].HealthCheck = &HealthCheck{Path: "healthz", Interval: Duration(time.Second), Timeout: Duration(time.Second), HealthyThreshold: 1, UnhealthyThreshold: 1}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "health check") {
		t.Fatalf("a health check path without /: %v", err)
	}
}
