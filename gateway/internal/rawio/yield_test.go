package rawio

import (
	"runtime"
	"testing"
)

// TestYieldPaysOnlyOnOneProcessor holds YieldPays to its rule: a yield before a
// read is worth it with one processor and not with more, where it wakes an idle
// processor's thread.
func TestYieldPaysOnlyOnOneProcessor(t *testing.T) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	if !YieldPays() {
		t.Fatal("YieldPays() = false with GOMAXPROCS=1, want true")
	}
	runtime.GOMAXPROCS(2)
	if YieldPays() {
		t.Fatal("YieldPays() = true with GOMAXPROCS=2, want false")
	}
}
