package files

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"os"
	"time"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

// DefaultInterval is the polling interval Watch uses when given none.
const DefaultInterval = 250 * time.Millisecond

// Watch polls path every interval (DefaultInterval when not positive) and calls
// onChange with the newly loaded Input, or the error loading it, each time the content
// of the manifests changes. It returns when ctx is done.
//
// A change is a change of bytes: the files' names and contents are hashed, so touching
// a file (a new modification time, equal content) is not a change. An edit is loaded
// only once the content is equal across two consecutive polls, so that a file caught
// half-written is not read; an edit is therefore picked up between one and two
// intervals after it settles. The bytes decoded are those two polls agreed on, never
// a third read. A writer that stops for longer than an interval in the middle of a
// write (after truncating a file, say) can still be caught: write to a hidden or
// other-named file and rename it into place, as ConfigMap volumes and most editors
// do, so that every read sees a whole file. The content present when Watch starts is the baseline
// and is not reported: callers load it themselves first.
//
// Files whose size, modification time and identity are those of the previous poll
// are not read again, but for a full read every fullReadEvery polls: a gateway's
// manifests can run to megabytes, and reading and hashing them four times a second
// costs CPU time and garbage the data path then pays for.
func Watch(ctx context.Context, path string, interval time.Duration, onChange func(*translate.Input, error)) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	NewWatcher(path).Run(ctx, interval, onChange)
}

// Run is the polling loop of Watch, for a Watcher whose baseline was taken earlier.
func (w *Watcher) Run(ctx context.Context, interval time.Duration, onChange func(*translate.Input, error)) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if in, changed, err := w.poll(); changed {
				onChange(in, err)
			}
		}
	}
}

// fullReadEvery bounds how many polls in a row may skip reading files whose metadata
// did not change, so that an edit that kept a file's size and modification time
// (which a coarse clock or a restored time can give) is still seen.
const fullReadEvery = 40

// Watcher holds the state of the polling loop between ticks.
type Watcher struct {
	path string
	// applied is the digest of the content last reported (or the baseline).
	applied [sha256.Size]byte
	// previous is the digest seen at the previous poll.
	previous [sha256.Size]byte
	// stats are the files' metadata when they were last read, nil when that
	// failed; skipped counts the polls since.
	stats   []os.FileInfo
	skipped int
	// read is what the last full read found (the files, or the error reading
	// them), kept only while an edit waits to be reported: when two polls agree,
	// these bytes are the ones decoded.
	read    []source
	readErr error
}

// NewWatcher takes the baseline now. A caller that loads the files itself should call
// it before that load: an edit landing between the two is then read by the load and
// reported again by Run (a harmless repeat), rather than missed.
func NewWatcher(path string) *Watcher {
	w := &Watcher{path: path}
	digest := w.digest()
	w.applied, w.previous = digest, digest
	w.read, w.readErr = nil, nil
	return w
}

// digest returns the digest of the files' content: that of the previous poll when
// their metadata is unchanged since they were last read (within fullReadEvery
// polls) and no edit waits to be reported, else a new one from a full read, which it
// keeps in w.read. The metadata is taken before the read, so that an edit made during
// the read shows as a change of metadata at the next poll.
func (w *Watcher) digest() [sha256.Size]byte {
	stats, err := statFiles(w.path)
	// An edit not yet reported is read again at every poll, so that the content
	// it is reported with was read twice, the same, as a file caught half-written
	// would not be.
	pending := w.previous != w.applied
	if err == nil && !pending && w.stats != nil && w.skipped < fullReadEvery && sameFiles(stats, w.stats) {
		w.skipped++
		return w.previous
	}
	w.stats, w.skipped = stats, 0
	w.read, w.readErr = readSources(w.path)
	return contentDigest(w.read, w.readErr)
}

// statFiles returns the metadata of every manifest file at path, or an error (the
// path is missing, say).
func statFiles(path string) ([]os.FileInfo, error) {
	names, err := manifestFiles(path)
	if err != nil {
		return nil, err
	}
	stats := make([]os.FileInfo, 0, len(names))
	for _, name := range names {
		info, err := os.Stat(name)
		if err != nil {
			return nil, err
		}
		stats = append(stats, info)
	}
	return stats, nil
}

// sameFiles reports whether two sets of metadata describe the same files, unchanged:
// the same names, sizes, modification times and identities (a file replaced by
// another, as a ConfigMap volume swaps its files, has another).
func sameFiles(a, b []os.FileInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name() != b[i].Name() || a[i].Size() != b[i].Size() || !a[i].ModTime().Equal(b[i].ModTime()) ||
			a[i].Mode() != b[i].Mode() || !os.SameFile(a[i], b[i]) {
			return false
		}
	}
	return true
}

// poll takes one look at the files. It loads them, and reports changed, when their
// content differs from what was last reported and is equal to what the previous poll
// saw.
func (w *Watcher) poll() (in *translate.Input, changed bool, err error) {
	digest := w.digest()
	stable := digest == w.previous
	w.previous = digest
	read, readErr := w.read, w.readErr
	if stable || digest == w.applied {
		// Either read is about to be decoded or it is the content already
		// reported; a file of megabytes is not kept between polls in either case.
		w.read, w.readErr = nil, nil
	}
	if !stable || digest == w.applied {
		return nil, false, nil
	}
	w.applied = digest
	if readErr != nil {
		return nil, true, readErr
	}
	in, err = decodeSources(read)
	return in, true, err
}

// contentDigest hashes the names and bytes of the manifest files read, or the error
// reading them, so that a path appearing or disappearing is a change.
func contentDigest(sources []source, err error) [sha256.Size]byte {
	h := sha256.New()
	if err != nil {
		_, _ = io.WriteString(h, "error: "+err.Error())
	}
	for _, src := range sources {
		// Lengths delimit the fields, so that moving bytes between a name and a body,
		// or between two files, always changes the digest.
		writeField(h, []byte(src.name))
		writeField(h, src.data)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func writeField(w io.Writer, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	_, _ = w.Write(n[:])
	_, _ = w.Write(b)
}
