package distribute

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// LoadServerTLS returns a server TLS config (TLS 1.2 or later) for Serve that serves
// the PEM certificate chain and key in certFile and keyFile. The files are checked at
// every handshake and read again when they change, so a rotated certificate (for
// example a renewed Secret volume) takes effect without a restart; if the new files do
// not load, the previous certificate stays in use.
func LoadServerTLS(certFile, keyFile string) (*tls.Config, error) {
	return LoadServerTLSWithLogger(certFile, keyFile, nil)
}

// LoadServerTLSWithLogger is LoadServerTLS that logs to logger (nil logs nowhere) when
// changed files do not load, once per distinct error, so that a broken rotation is
// visible while the previous certificate keeps serving.
func LoadServerTLSWithLogger(certFile, keyFile string, logger *slog.Logger) (*tls.Config, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	kp := &reloadingKeyPair{certFile: certFile, keyFile: keyFile, logger: logger}
	if err := kp.reload(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: kp.certificate,
	}, nil
}

// reloadingKeyPair is a certificate and key read from files, read again when either
// file's size or modification time changes.
type reloadingKeyPair struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	certStamp fileStamp
	keyStamp  fileStamp
	lastErr   string // the last reload error logged, to log each only once
}

type fileStamp struct {
	size    int64
	modTime time.Time
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{size: fi.Size(), modTime: fi.ModTime()}, nil
}

func (k *reloadingKeyPair) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cs, err := stampOf(k.certFile)
	if err == nil {
		var ks fileStamp
		if ks, err = stampOf(k.keyFile); err == nil && (cs != k.certStamp || ks != k.keyStamp) {
			err = k.reloadLocked()
		}
	}
	// A failed reload keeps the old pair: the files may be mid-rotation. The failure
	// is logged once, and again only if it changes or comes back after a success.
	switch {
	case err == nil:
		k.lastErr = ""
	case err.Error() != k.lastErr:
		k.lastErr = err.Error()
		k.logger.Error("cannot reload the server certificate; serving the previous one",
			"cert", k.certFile, "key", k.keyFile, "error", err)
	}
	return k.cert, nil
}

func (k *reloadingKeyPair) reload() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reloadLocked()
}

func (k *reloadingKeyPair) reloadLocked() error {
	cs, err := stampOf(k.certFile)
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	ks, err := stampOf(k.keyFile)
	if err != nil {
		return fmt.Errorf("server key: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("server certificate %s and key %s: %w", k.certFile, k.keyFile, err)
	}
	k.cert, k.certStamp, k.keyStamp = &cert, cs, ks
	return nil
}
