package main

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestObserveFlagsRefuseBadValues(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--route-metrics", "some"}, "--route-metrics"},
		{[]string{"--access-log", "stdout", "--access-log-sample", "2"}, "--access-log"},
		{[]string{"--access-log", filepath.Join(t.TempDir(), "missing", "access.log")}, "--access-log"},
		{[]string{"--otlp-endpoint", "collector:4318"}, "--otlp-endpoint"},
		{[]string{"--otlp-endpoint", "http://127.0.0.1:4318", "--trace-sample-ratio", "1.5"}, "--trace-sample-ratio"},
	}
	for _, c := range cases {
		f, err := parseStandaloneFlags(append([]string{"--config", "x"}, c.args...))
		if err != nil {
			t.Fatalf("flags %v: %v", c.args, err)
		}
		_, _, err = f.observer(prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("flags %v: error %v, want one naming %s", c.args, err, c.want)
		}
	}
}

func TestObserveFlagsBuildAnObserver(t *testing.T) {
	f, err := parseStandaloneFlags([]string{"--config", "x", "--route-metrics", "coarse",
		"--access-log", filepath.Join(t.TempDir(), "access.log"), "--otlp-endpoint", "http://127.0.0.1:4318"})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	obs, stop, err := f.observer(reg, slog.New(slog.DiscardHandler))
	if err != nil || obs == nil || !obs.Tracing() {
		t.Fatalf("observer %v, %v; want one that traces", obs, err)
	}
	stop()
	if _, _, err := f.observer(reg, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a second observer registered the same metrics")
	}
}
