package observe

import (
	"errors"
	"io"
	"sync"
	"time"
)

// lineWriter buffers the lines of an access log. Each line is written in one Write,
// so lines never interleave, and each block written out holds whole lines, in the
// order they were written.
//
// Every request's line passes through it, so its lock guards only the copy of a
// line into the buffer: a full buffer is swapped for an empty one and written out
// after the lock is released, under a second lock that keeps the blocks in order.
// Requests that log meanwhile fill the next buffer rather than wait for the disk.
type lineWriter struct {
	// mu guards buf and closed.
	mu     sync.Mutex
	buf    []byte
	closed bool
	// size is the capacity of a buffer; spares holds empty buffers (*[]byte).
	size   int
	spares sync.Pool
	// outMu serialises the writes to out. It is taken before mu is released, so
	// that buffers are written out in the order they were filled.
	outMu  sync.Mutex
	out    io.Writer
	closer io.Closer
	stop   chan struct{}
	done   chan struct{}
}

// newLineWriter returns a lineWriter that writes to w in blocks of up to size bytes
// and at least every accessLogFlushInterval; Close closes closer, if not nil.
func newLineWriter(w io.Writer, closer io.Closer, size int) *lineWriter {
	lw := &lineWriter{buf: make([]byte, 0, size), size: size, out: w, closer: closer,
		stop: make(chan struct{}), done: make(chan struct{})}
	go lw.flushLoop(accessLogFlushInterval)
	return lw
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return 0, errAccessLogClosed
	}
	if len(w.buf)+len(p) <= cap(w.buf) || len(w.buf) == 0 {
		// A line longer than a whole buffer goes out on its own, with the next.
		w.buf = append(w.buf, p...)
		w.mu.Unlock()
		return len(p), nil
	}
	full := w.buf
	w.buf = append(w.spare(), p...)
	return len(p), w.writeOut(full)
}

// writeOut writes a buffer taken from w.buf out and recycles it. w.mu is held on
// entry and released once the buffer's turn to be written is secured.
func (w *lineWriter) writeOut(full []byte) error {
	w.outMu.Lock()
	w.mu.Unlock()
	_, err := w.out.Write(full)
	w.outMu.Unlock()
	if cap(full) == w.size {
		full = full[:0]
		w.spares.Put(&full)
	}
	return err
}

// spare returns an empty buffer.
func (w *lineWriter) spare() []byte {
	if b, ok := w.spares.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 0, w.size)
}

var errAccessLogClosed = errors.New("access log is closed")

// flush writes out the buffered lines.
func (w *lineWriter) flush() error {
	w.mu.Lock()
	if w.closed || len(w.buf) == 0 {
		w.mu.Unlock()
		return nil
	}
	full := w.buf
	w.buf = w.spare()
	return w.writeOut(full)
}

func (w *lineWriter) flushLoop(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			_ = w.flush()
		}
	}
}

// Close flushes and closes; it may be called more than once.
func (w *lineWriter) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	full := w.buf
	w.buf, w.closed = nil, true
	var err error
	if len(full) > 0 {
		err = w.writeOut(full)
	} else {
		w.mu.Unlock()
	}
	close(w.stop)
	<-w.done
	if w.closer != nil {
		err = errors.Join(err, w.closer.Close())
	}
	return err
}
