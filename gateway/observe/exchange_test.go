package observe

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestResponseWriterRecordsTheFinalStatus(t *testing.T) {
	cases := []struct {
		name  string
		write func(w http.ResponseWriter)
		want  int
		bytes int64
	}{
		{"body only", func(w http.ResponseWriter) { _, _ = w.Write([]byte("abc")) }, 200, 3},
		{"informational first", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusTeapot)
		}, http.StatusTeapot, 0},
		{"second WriteHeader ignored", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusAccepted)
			w.WriteHeader(http.StatusInternalServerError)
		}, http.StatusAccepted, 0},
		{"flush sends headers", func(w http.ResponseWriter) { http.NewResponseController(w).Flush() }, 200, 0},
		{"nothing", func(http.ResponseWriter) {}, 0, 0},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		w := &responseWriter{ResponseWriter: rec}
		c.write(w)
		if w.status != c.want || w.bytes != c.bytes {
			t.Errorf("%s: status %d, bytes %d; want %d, %d", c.name, w.status, w.bytes, c.want, c.bytes)
		}
		if c.name == "flush sends headers" && !rec.Flushed {
			t.Errorf("%s: the flush did not reach the connection's writer", c.name)
		}
	}
}

func TestTraceparentID(t *testing.T) {
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	cases := map[string]string{
		"00-" + id + "-00f067aa0ba902b7-01":                                 id,
		"01-" + id + "-00f067aa0ba902b7-01-future":                          id,
		"00-" + "4BF92F3577B34DA6A3CE929D0E0E4736" + "-00f067aa0ba902b7-01": "",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01":           "",
		"00-" + id + "-00f067aa0ba902b7":                                    "",
		"":                                                                  "",
		"garbage":                                                           "",
	}
	for in, want := range cases {
		if got := traceparentID(in); got != want {
			t.Errorf("traceparentID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseRouteMetrics(t *testing.T) {
	for in, want := range map[string]RouteMetrics{"": RouteMetricsFull, "full": RouteMetricsFull, "coarse": RouteMetricsCoarse, "off": RouteMetricsOff} {
		if got, err := ParseRouteMetrics(in); got != want || err != nil {
			t.Errorf("ParseRouteMetrics(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseRouteMetrics("some"); err == nil {
		t.Error("an unknown mode was accepted")
	}
}
