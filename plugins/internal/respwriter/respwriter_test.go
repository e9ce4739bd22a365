package respwriter

import (
	"bufio"
	"net"
	"net/http"
	"testing"
)

// fakeWriter records calls; it stands in for the server's writer in these pure
// bookkeeping checks (the filters' tests use real servers).
type fakeWriter struct {
	header   http.Header
	statuses []int
	hijacked bool
}

func (f *fakeWriter) Header() http.Header         { return f.header }
func (f *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (f *fakeWriter) WriteHeader(code int)        { f.statuses = append(f.statuses, code) }
func (f *fakeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	f.hijacked = true
	return nil, nil, nil
}

func TestEditRunsOnceBeforeFinalStatus(t *testing.T) {
	f := &fakeWriter{header: http.Header{}}
	edits := 0
	w := &Writer{ResponseWriter: f, Edit: func(h http.Header) { edits++; h.Set("X-Edited", "1") }}
	w.WriteHeader(http.StatusEarlyHints)
	if edits != 0 {
		t.Fatal("an informational status must not use up the edit")
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte("x"))
	w.Finish()
	if edits != 1 || f.header.Get("X-Edited") != "1" {
		t.Errorf("edited %d times", edits)
	}
	if want := []int{103, 201}; len(f.statuses) != 2 || f.statuses[0] != want[0] || f.statuses[1] != want[1] {
		t.Errorf("statuses %v, want %v", f.statuses, want)
	}
}

func TestFinishAfterHijackWritesNothing(t *testing.T) {
	f := &fakeWriter{header: http.Header{}}
	w := &Writer{ResponseWriter: f, Edit: func(http.Header) { t.Error("edited a hijacked response") }}
	if _, _, err := http.NewResponseController(w).Hijack(); err != nil || !f.hijacked {
		t.Fatalf("hijack through the wrapper: %v", err)
	}
	w.Finish()
	if len(f.statuses) != 0 {
		t.Errorf("wrote statuses %v after a hijack", f.statuses)
	}
}

func TestFinishEditsTheHeadersWhenNothingWasWritten(t *testing.T) {
	f := &fakeWriter{header: http.Header{}}
	edits := 0
	w := &Writer{ResponseWriter: f, Edit: func(h http.Header) { edits++; h.Set("X-Edited", "1") }}
	w.Finish()
	// The server writes the implicit 200 with the edited headers, or nothing when
	// the client went away: Finish writes no status itself.
	if len(f.statuses) != 0 || f.header.Get("X-Edited") != "1" || edits != 1 {
		t.Errorf("statuses %v, headers %v, edits %d", f.statuses, f.header, edits)
	}
	w.WriteHeader(http.StatusOK)
	if edits != 1 {
		t.Errorf("the headers were edited %d times, want once", edits)
	}
	if w.Unwrap() != f {
		t.Error("Unwrap does not return the wrapped writer")
	}
}
