package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteAtomicReplacesTheFileWithMode0600(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	must(t, os.WriteFile(path, []byte("old"), 0o644))
	must(t, writeAtomic(path, []byte("new")))
	got, err := os.ReadFile(path)
	must(t, err)
	if string(got) != "new" {
		t.Errorf("content %q", got)
	}
	fi, err := os.Stat(path)
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 600", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	must(t, err)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the state file", len(entries))
	}
}

func TestWriteAtomicReportsAMissingDirectory(t *testing.T) {
	if err := writeAtomic(filepath.Join(t.TempDir(), "missing", "state"), []byte("x")); err == nil {
		t.Error("want an error")
	}
}

func TestPersisterWritesOnlyTheNewest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	var saved []string
	p := newPersister(path, func(v string, err error) {
		must(t, err)
		saved = append(saved, v)
	})
	p.submit("v1", []byte("one"))
	p.submit("v2", []byte("two"))
	p.flush()
	p.flush()
	got, err := os.ReadFile(path)
	must(t, err)
	if string(got) != "two" || len(saved) != 1 || saved[0] != "v2" {
		t.Errorf("file %q, saved %v; want only v2", got, saved)
	}
}

func TestBackoffGrowsWithJitterUpToTheCapAndResets(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	window := b.min
	for range 10 {
		d := b.next()
		if d < window/2 || d > window {
			t.Fatalf("wait %s outside [%s, %s]", d, window/2, window)
		}
		window = min(window*2, b.max)
	}
	b.reset()
	if d := b.next(); d > b.min {
		t.Errorf("after reset: %s, want at most %s", d, b.min)
	}
	// Jitter: a fleet does not retry in lockstep.
	seen := map[time.Duration]bool{}
	for range 20 {
		b.reset()
		seen[b.next()] = true
	}
	if len(seen) < 2 {
		t.Error("every first wait was the same")
	}
}
