package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/switchyard-dev/switchyard/controller/distribute"
)

// LoadTLS reads tls.crt and tls.key from certDir (a mounted Secret) and returns a
// server configuration that reads them again whenever either file changes, so that
// a certificate rotated by cert-manager or a Helm upgrade is served without a restart.
// A rotation that does not load keeps the previous pair and is logged.
func LoadTLS(certDir string, logger *slog.Logger) (*tls.Config, error) {
	if certDir == "" {
		return nil, errors.New("no certificate folder")
	}
	cfg, err := distribute.LoadServerTLSWithLogger(filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key"), logger)
	if err != nil {
		return nil, fmt.Errorf("webhook certificate in %s: %w", certDir, err)
	}
	return cfg, nil
}

// Serve serves h at Path over HTTPS on ln until ctx ends, then shuts down within five
// seconds. It returns nil after a shutdown, else the error that stopped it.
func Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config, h http.Handler, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	srv := &http.Server{
		Handler:   mux,
		TLSConfig: tlsConfig,
		// The API server waits at most the configuration's timeoutSeconds (at most 30).
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		// Handshake failures (a scanner, a client with an old CA) are not errors of ours.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
