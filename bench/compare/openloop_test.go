package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func startServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestOpenLoopSendsTheScheduleAndTimesEveryAnswer(t *testing.T) {
	var served atomic.Int64
	var hosts atomic.Value
	addr := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		hosts.Store(r.Host + r.URL.Path)
		_, _ = w.Write([]byte("ok"))
	})
	o := openLoop{Addr: addr, Host: "h1.bench.test", Path: "/svc1/item", Rate: 400, Duration: 500 * time.Millisecond, Conns: 4}
	r, err := o.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 200 || r.Errors != 0 || served.Load() != 200 {
		t.Fatalf("answered %d, errors %d, served %d; want 200, 0, 200", r.Requests, r.Errors, served.Load())
	}
	if got := hosts.Load(); got != "h1.bench.test/svc1/item" {
		t.Errorf("the server saw %v", got)
	}
	labels := []string{"p50", "p90", "p99", "p99.9", "max"}
	for i := 1; i < len(labels); i++ {
		if r.Latency[labels[i]] < r.Latency[labels[i-1]] || r.Latency[labels[i-1]] <= 0 {
			t.Errorf("percentiles out of order: %v", r.Latency)
		}
	}
}

func TestOpenLoopCountsFailuresAndReconnects(t *testing.T) {
	var served atomic.Int64
	addr := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		// Every third answer is an error, and every answer closes the connection.
		w.Header().Set("Connection", "close")
		if served.Add(1)%3 == 0 {
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	})
	r, err := openLoop{Addr: addr, Path: "/", Rate: 300, Duration: 300 * time.Millisecond, Conns: 2}.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests+r.Errors != 90 || r.Errors != 30 {
		t.Errorf("answered %d, errors %d; want 60 and 30", r.Requests, r.Errors)
	}
}

func TestOpenLoopAgainstNothingFailsEveryRequest(t *testing.T) {
	// A port that was just listened on and closed refuses connections.
	closed := httptest.NewServer(http.NotFoundHandler())
	closedAddr := strings.TrimPrefix(closed.URL, "http://")
	closed.Close()
	r, err := openLoop{Addr: closedAddr, Path: "/", Rate: 100, Duration: 200 * time.Millisecond, Conns: 2}.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 0 || r.Errors != 20 {
		t.Errorf("answered %d, errors %d; want 0 and 20", r.Requests, r.Errors)
	}
}

func TestOpenLoopRefusesBadSettings(t *testing.T) {
	for _, o := range []openLoop{{Rate: 0, Duration: time.Second, Conns: 1}, {Rate: 1, Conns: 1}, {Rate: 1, Duration: time.Second}} {
		if _, err := o.run(context.Background()); err == nil {
			t.Errorf("%+v was accepted", o)
		}
	}
}
