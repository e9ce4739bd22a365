package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/switchyard-dev/switchyard/e2e/echo"
)

func runEcho(args []string) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	listen := fs.String("listen", envOr("ECHO_LISTEN", ":"+envOr("HTTP_PORT", "3000")), "address to serve on")
	pod := fs.String("pod", os.Getenv("POD_NAME"), "pod name to report (default $POD_NAME)")
	namespace := fs.String("namespace", os.Getenv("NAMESPACE"), "namespace to report (default $NAMESPACE)")
	ingress := fs.String("ingress", os.Getenv("INGRESS_NAME"), "ingress name to report (default $INGRESS_NAME)")
	service := fs.String("service", os.Getenv("SERVICE_NAME"), "service name to report (default $SERVICE_NAME)")
	failStatus := fs.Int("fail-status", 0, "answer every request but /health with this status code, for failure tests (default $ECHO_FAIL_STATUS)")
	if v, err := strconv.Atoi(os.Getenv("ECHO_FAIL_STATUS")); err == nil {
		*failStatus = v
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *failStatus != 0 && (*failStatus < 100 || *failStatus > 599) {
		return fmt.Errorf("--fail-status %d is not an HTTP status code", *failStatus)
	}
	port := 0
	if _, p, err := net.SplitHostPort(*listen); err == nil {
		port, _ = strconv.Atoi(p)
	}
	opts := echo.Options{
		Pod: *pod, Namespace: *namespace, Ingress: *ingress, Service: *service,
		HTTPPort: port, FailStatus: *failStatus, Logger: slog.Default(), LogWriter: os.Stdout,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "echo backend %q listening on %s\n", *pod, *listen)
	return echo.ListenAndServe(ctx, *listen, opts)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
