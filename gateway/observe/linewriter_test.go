package observe

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// blockRecorder records each Write as one block.
type blockRecorder struct {
	mu     sync.Mutex
	blocks []string
}

func (r *blockRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blocks = append(r.blocks, string(p))
	return len(p), nil
}

// TestLineWriterKeepsLinesWholeAndInOrder has several goroutines log lines through a
// small buffer, so that buffers fill and are written out while others log: every
// block written out holds whole lines, every line arrives once, each goroutine's
// lines in the order it wrote them, and Close writes out the rest.
func TestLineWriterKeepsLinesWholeAndInOrder(t *testing.T) {
	out := &blockRecorder{}
	w := newLineWriter(out, nil, 256)
	const writers, lines = 4, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				// Lengths vary, one line in fifty longer than a whole buffer.
				line := fmt.Sprintf("g%d %05d %s\n", g, i, strings.Repeat("x", (i%50)*7))
				if _, err := w.Write([]byte(line)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("late\n")); err == nil {
		t.Fatal("a line written after Close was accepted")
	}
	next := make([]int, writers)
	for _, block := range out.blocks {
		if !strings.HasSuffix(block, "\n") {
			t.Fatalf("a block ends inside a line: %q", block[max(0, len(block)-40):])
		}
		for line := range strings.SplitSeq(strings.TrimSuffix(block, "\n"), "\n") {
			var g, i int
			if _, err := fmt.Sscanf(line, "g%d %d", &g, &i); err != nil || g < 0 || g >= writers {
				t.Fatalf("malformed line %q", line)
			}
			if i != next[g] {
				t.Fatalf("writer %d: line %d after line %d", g, i, next[g]-1)
			}
			next[g]++
		}
	}
	for g, n := range next {
		if n != lines {
			t.Fatalf("writer %d: %d lines written out, want %d", g, n, lines)
		}
	}
}

// TestLineWriterFlush checks that Flush writes out what is buffered, and nothing
// when nothing is.
func TestLineWriterFlush(t *testing.T) {
	var out bytes.Buffer
	w := newLineWriter(&out, nil, 1024)
	defer w.Close()
	_, _ = w.Write([]byte("one\n"))
	if out.Len() != 0 {
		t.Fatal("a line was written out before the buffer filled or was flushed")
	}
	if err := w.flush(); err != nil || out.String() != "one\n" {
		t.Fatalf("after flush: %q, %v", out.String(), err)
	}
	if err := w.flush(); err != nil || out.String() != "one\n" {
		t.Fatalf("after an empty flush: %q, %v", out.String(), err)
	}
}
