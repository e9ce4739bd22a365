package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/controller/webhook"
)

// webhookFlags configure the east-west admission webhook the controller serves.
type webhookFlags struct {
	addr      string
	certDir   string
	proxyPort int
	noProxy   string
}

func (w *webhookFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&w.addr, "webhook-addr", "", "address of the east-west mutating admission webhook (HTTPS, path "+webhook.Path+"); empty turns it off")
	fs.StringVar(&w.certDir, "webhook-cert-dir", "", "folder holding the webhook's tls.crt and tls.key, read again when they change (required with --webhook-addr)")
	fs.IntVar(&w.proxyPort, "webhook-proxy-port", webhook.DefaultProxyPort, "the node replicas' port that injected HTTP_PROXY variables name")
	fs.StringVar(&w.noProxy, "webhook-no-proxy", "", "comma-separated NO_PROXY entries injected after the built-in ones (loopback and the API server), for example kubernetes.default.svc.cluster.local or the Service CIDR")
}

func (w *webhookFlags) validate() error {
	if w.addr != "" && w.certDir == "" {
		return errors.New("--webhook-addr needs --webhook-cert-dir: the API server calls webhooks over HTTPS only")
	}
	return nil
}

// controllerWebhook is the webhook's server, ready to serve; nil when it is off.
type controllerWebhook struct {
	addr    string
	handler *webhook.Handler
	tls     *tls.Config
	logger  *slog.Logger
}

// newControllerWebhook loads the certificate and builds the handler, so that a bad
// flag or a missing certificate stops the controller at start.
func newControllerWebhook(w webhookFlags, logger *slog.Logger, reg prometheus.Registerer) (*controllerWebhook, error) {
	if w.addr == "" {
		return nil, nil
	}
	h, err := webhook.NewHandler(webhook.Config{ProxyPort: w.proxyPort, NoProxy: splitList(w.noProxy)}, logger, reg)
	if err != nil {
		return nil, fmt.Errorf("--webhook-proxy-port/--webhook-no-proxy: %w", err)
	}
	tlsConfig, err := webhook.LoadTLS(w.certDir, logger)
	if err != nil {
		return nil, fmt.Errorf("--webhook-cert-dir: %w", err)
	}
	return &controllerWebhook{addr: w.addr, handler: h, tls: tlsConfig, logger: logger}, nil
}

// start listens and serves until ctx ends. Every controller serves it, leader or
// not: the answer depends on the Pod alone.
func (w *controllerWebhook) start(ctx context.Context) error {
	if w == nil {
		return nil
	}
	ln, err := net.Listen("tcp", w.addr)
	if err != nil {
		return fmt.Errorf("--webhook-addr: %w", err)
	}
	w.logger.Info("east-west webhook listening", "addr", ln.Addr().String(), "path", webhook.Path)
	go func() {
		// Pods are still admitted while it is down (failurePolicy Ignore), unchanged.
		if err := webhook.Serve(ctx, ln, w.tls, w.handler, w.logger); err != nil {
			w.logger.Error("east-west webhook stopped; Pods are admitted without east-west settings", "error", err)
		}
	}()
	return nil
}
