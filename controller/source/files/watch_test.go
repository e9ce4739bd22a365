package files

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

const watchInterval = 20 * time.Millisecond

// loadResult is one onChange call.
type loadResult struct {
	in  *translate.Input
	err error
}

// startWatch runs Watch on path and returns a channel of its onChange calls.
func startWatch(t *testing.T, path string) <-chan loadResult {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	results := make(chan loadResult, 16)
	// The baseline is taken here, before the test edits anything.
	w := NewWatcher(path)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.Run(ctx, watchInterval, func(in *translate.Input, err error) {
			results <- loadResult{in, err}
		})
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return results
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes content to a hidden file beside path and renames it into place,
// so that a poll sees either the old file or the whole new one. The tests that run the
// polling loop on its own clock write this way: a write in place truncates the file
// first, and a test goroutine held off the CPU for two intervals on a loaded machine
// would leave the truncated file there long enough to be loaded, as the watcher's
// documentation says. TestPollWaitsForStableContent covers writes in place.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestWatchPicksUpAnEdit(t *testing.T) {
	dir := writeFiles(t, map[string]string{"gw.yaml": gatewayDocs})
	results := startWatch(t, dir)
	replaceFile(t, filepath.Join(dir, "core.yaml"), coreDocs)
	select {
	case r := <-results:
		if r.err != nil {
			t.Fatalf("load after edit: %v", r.err)
		}
		if len(r.in.Gateways) != 1 || len(r.in.Services) != 1 || !r.in.Options.Standalone {
			t.Fatalf("loaded %d gateways and %d services, want 1 and 1", len(r.in.Gateways), len(r.in.Services))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reload within 5s of an edit")
	}

	replaceFile(t, filepath.Join(dir, "core.yaml"), "apiVersion: v1\nkind: Nope\n")
	select {
	case r := <-results:
		if r.err == nil || !strings.Contains(r.err.Error(), "core.yaml") {
			t.Fatalf("load of an invalid edit: error %v, want one naming core.yaml", r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reload within 5s of an invalid edit")
	}
}

func TestWatchIgnoresTouchWithEqualContent(t *testing.T) {
	dir := writeFiles(t, map[string]string{"gw.yaml": gatewayDocs})
	path := filepath.Join(dir, "gw.yaml")
	results := startWatch(t, dir)
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	replaceFile(t, path, gatewayDocs)
	select {
	case r := <-results:
		t.Fatalf("onChange called for equal content: %+v", r)
	case <-time.After(20 * watchInterval):
	}
	// The watcher is still alive: a real edit afterwards is reported.
	replaceFile(t, path, gatewayDocs+coreDocs)
	select {
	case r := <-results:
		if r.err != nil || len(r.in.Services) != 1 {
			t.Fatalf("after a real edit: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reload within 5s of an edit")
	}
}

// TestWatchExported runs the exported entry point, whose baseline is taken in its own
// goroutine: the edit is repeated until it is seen, to not depend on when that is.
func TestWatchExported(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	results := make(chan loadResult, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, dir, watchInterval, func(in *translate.Input, err error) { results <- loadResult{in, err} })
	}()
	defer func() {
		cancel()
		<-done
	}()
	for attempt := 0; attempt < 25; attempt++ {
		replaceFile(t, filepath.Join(dir, "gw.yaml"), gatewayDocs+"# edit "+strings.Repeat("x", attempt)+"\n")
		select {
		case r := <-results:
			if r.err != nil || len(r.in.Gateways) != 1 {
				t.Fatalf("load after edit: %+v", r)
			}
			return
		case <-time.After(10 * watchInterval):
		}
	}
	t.Fatal("Watch reported no edit within 25 attempts")
}

func TestWatchReturnsWhenContextIsDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Watch(ctx, t.TempDir(), watchInterval, func(*translate.Input, error) {})
		close(done)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after its context was cancelled")
	}
}

// TestPollWaitsForStableContent drives the watcher one poll at a time, so that the
// half-written state is observed deterministically.
func TestPollWaitsForStableContent(t *testing.T) {
	dir := writeFiles(t, map[string]string{"gw.yaml": gatewayDocs})
	path := filepath.Join(dir, "routes.yaml")
	w := NewWatcher(dir)
	if _, changed, _ := w.poll(); changed {
		t.Fatal("the baseline content was reported as a change")
	}

	half := routeDocs[:len(routeDocs)/2]
	writeFile(t, path, half)
	if _, changed, _ := w.poll(); changed {
		t.Fatal("a file seen once, possibly half-written, was loaded")
	}
	writeFile(t, path, routeDocs)
	if _, changed, _ := w.poll(); changed {
		t.Fatal("content that changed since the previous poll was loaded")
	}
	in, changed, err := w.poll()
	if !changed || err != nil {
		t.Fatalf("stable content: changed %v err %v, want a successful load", changed, err)
	}
	if len(in.HTTPRoutes) != 1 || len(in.ReferenceGrants) != 2 {
		t.Fatalf("loaded %d routes and %d grants, want the complete file", len(in.HTTPRoutes), len(in.ReferenceGrants))
	}
	if _, changed, _ := w.poll(); changed {
		t.Fatal("unchanged content was reported again")
	}
}

func TestPollReportsRemovalAndReturn(t *testing.T) {
	dir := writeFiles(t, map[string]string{"gw.yaml": gatewayDocs})
	path := filepath.Join(dir, "gw.yaml")
	w := NewWatcher(path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	w.poll()
	if _, changed, err := w.poll(); !changed || err == nil {
		t.Fatalf("removed file: changed %v err %v, want a reported load error", changed, err)
	}
	writeFile(t, path, gatewayDocs)
	w.poll()
	if in, changed, err := w.poll(); !changed || err != nil || len(in.Gateways) != 1 {
		t.Fatalf("restored file: changed %v err %v", changed, err)
	}
}

func TestWatcherDoesNotReadUnchangedFilesAgain(t *testing.T) {
	// A comment of a megabyte makes a read of the file show in the allocations.
	big := gatewayDocs + "# " + strings.Repeat("x", 1<<20) + "\n"
	dir := writeFiles(t, map[string]string{"gw.yaml": big})
	w := NewWatcher(dir)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, changed, _ := w.poll(); changed {
			t.Fatal("an unchanged file was reported as changed")
		}
	}
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 256<<10 {
		t.Errorf("10 polls of an unchanged 1 MiB file allocated %d bytes: the file was read again", grown)
	}
}

func TestWatcherSeesAnEditThatKeptSizeAndTime(t *testing.T) {
	dir := writeFiles(t, map[string]string{"gw.yaml": gatewayDocs})
	path := filepath.Join(dir, "gw.yaml")
	w := NewWatcher(dir)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// The same number of bytes, and the old modification time put back.
	writeFile(t, path, strings.Replace(gatewayDocs, "gw", "gx", 1))
	if err := os.Chtimes(path, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	for range fullReadEvery + 3 {
		if _, changed, err := w.poll(); changed {
			if err != nil {
				t.Fatalf("loading the edit: %v", err)
			}
			return
		}
	}
	t.Fatalf("an edit that kept the file's size and time was not seen in %d polls", fullReadEvery+3)
}
