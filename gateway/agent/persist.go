package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/controller/distribute"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

// The state file holds a snapshot frame's payload (gzip-compressed JSON): the one the
// controller sent, or, for a snapshot rebuilt from a delta frame, a new encoding of
// it, made by the persister's goroutine so that applying never waits for it.

// loadPersisted applies the saved snapshot, if there is a usable one. A missing file is
// normal on a first start; an unreadable or corrupt one is reported and ignored.
func (a *Agent) loadPersisted() {
	path := a.opts.StatePath
	if path == "" {
		return
	}
	payload, err := readLimited(path, a.maxFrame)
	if errors.Is(err, fs.ErrNotExist) {
		a.logger.Info("no saved snapshot; not ready until the controller sends one", "path", path)
		return
	}
	if err != nil {
		a.logger.Error("cannot read the saved snapshot; ignoring it", "path", path, "error", err)
		a.setError(fmt.Errorf("saved snapshot: %w", err))
		return
	}
	lines, err := distribute.ParseSnapshotLines(payload, a.maxFrame)
	var snap *config.Snapshot
	if err == nil {
		snap, err = a.decoder.DecodeLines(lines)
	}
	if err != nil {
		a.logger.Error("saved snapshot is corrupt; ignoring it", "path", path, "error", err)
		a.setError(fmt.Errorf("saved snapshot %s is corrupt: %w", path, err))
		return
	}
	if err := a.apply(snap, SourcePersisted); err != nil {
		a.logger.Error("saved snapshot does not apply; ignoring it", "path", path, "version", snap.Version, "error", err)
		return
	}
	a.persisted(snap.Version, nil)
	// The controller may still run this snapshot: then its next change comes as a delta.
	a.setHeld(lines)
	a.logger.Info("serving the saved snapshot until the controller answers", "path", path, "version", snap.Version)
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// writeAtomic replaces path with data, mode 0600, so that a crash at any moment leaves
// either the old file or the new one: it writes a temporary file in the same
// directory, syncs it, renames it over path, and syncs the directory.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// CreateTemp already uses 0600; say so explicitly, the file holds private keys.
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		// Best effort: the rename is durable once the directory is synced.
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// persister saves snapshots in the background, newest first: a snapshot superseded
// before its turn is never written, and saving never delays applying the next one.
type persister struct {
	path string
	done func(version string, err error)

	mu      sync.Mutex
	pending *persistJob
	wake    chan struct{}
}

type persistJob struct {
	version string
	payload func() ([]byte, error)
}

func newPersister(path string, done func(string, error)) *persister {
	return &persister{path: path, done: done, wake: make(chan struct{}, 1)}
}

// submit queues payload to be saved, replacing any queued one.
func (p *persister) submit(version string, payload []byte) {
	p.submitFunc(version, func() ([]byte, error) { return payload, nil })
}

// submitFunc queues the payload that encode returns to be saved, replacing any queued
// one; encode runs only if the payload is still the newest when its turn comes.
func (p *persister) submitFunc(version string, encode func() ([]byte, error)) {
	if p.path == "" {
		return
	}
	p.mu.Lock()
	p.pending = &persistJob{version: version, payload: encode}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// minSaveInterval spaces saves out. Under churn the file then trails the serving
// snapshot by at most this long, while a replica writes (and fsyncs, and for delta-built
// snapshots re-compresses) a couple of times a second instead of on every change; on a
// node with many replicas that disk and CPU time is what the next change waits for.
const minSaveInterval = 500 * time.Millisecond

// run saves queued snapshots until ctx ends, then saves the last queued one, if any.
func (p *persister) run(ctx context.Context) {
	for {
		select {
		case <-p.wake:
			p.flush()
		case <-ctx.Done():
			p.flush()
			return
		}
		pause := time.NewTimer(minSaveInterval)
		select {
		case <-pause.C:
		case <-ctx.Done():
			pause.Stop()
			p.flush()
			return
		}
	}
}

func (p *persister) flush() {
	p.mu.Lock()
	job := p.pending
	p.pending = nil
	p.mu.Unlock()
	if job == nil {
		return
	}
	payload, err := job.payload()
	if err == nil {
		err = writeAtomic(p.path, payload)
	}
	p.done(job.version, err)
}
