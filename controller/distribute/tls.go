package distribute

import (
	"crypto/tls"
	"fmt"
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
	kp := &reloadingKeyPair{certFile: certFile, keyFile: keyFile}
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

	mu        sync.Mutex
	cert      *tls.Certificate
	certStamp fileStamp
	keyStamp  fileStamp
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
	cs, err1 := stampOf(k.certFile)
	ks, err2 := stampOf(k.keyFile)
	if err1 == nil && err2 == nil && (cs != k.certStamp || ks != k.keyStamp) {
		// A failed reload keeps the old pair: the files may be mid-rotation.
		_ = k.reloadLocked()
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
