// Package respwriter wraps a ResponseWriter so that a filter can edit the response
// headers at the moment they are sent, whoever writes the response.
package respwriter

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// Writer calls Edit on the response headers once, just before the final (or 101)
// status line is written. It keeps streaming (Flush), protocol upgrades (Hijack) and
// http.ResponseController (Unwrap) working through it.
type Writer struct {
	http.ResponseWriter
	// Edit changes the headers about to be sent.
	Edit func(http.Header)
	// done is set once the headers were edited and sent, or the connection was taken
	// over; from then on the headers are no longer this writer's to change.
	done bool
}

// WriteHeader edits the headers before the first non-informational status.
func (w *Writer) WriteHeader(code int) {
	// Informational responses other than 101 precede the real one, which is the one
	// the edit is meant for.
	if !w.done && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.done = true
		w.Edit(w.ResponseWriter.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write sends a 200 first when no status was written, as net/http does.
func (w *Writer) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// WriteString keeps io.WriteString from converting to a byte slice.
func (w *Writer) WriteString(s string) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return io.WriteString(w.ResponseWriter, s)
}

// Flush keeps server-sent events flowing through the wrapper. Flushing before any
// write sends the headers, so they are edited first.
func (w *Writer) Flush() {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// FlushError is the form of Flush that http.ResponseController prefers.
func (w *Writer) FlushError() error {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack lets protocol upgrades (WebSocket) pass through the wrapper. After a hijack
// the connection belongs to the caller, so no headers are edited any more.
func (w *Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.done = true
	}
	return conn, rw, err
}

// Unwrap gives http.ResponseController access to the underlying writer.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Finish edits the headers of a handler that returned without writing anything,
// which the server would otherwise send unedited as an empty 200. It leaves the
// writing to the server, as a handler that writes nothing does, so that what
// happened stays the server's to tell: the empty 200, or nothing at all for a
// client that went away (which the access log and metrics count as such). Call it
// after the wrapped handler returns.
func (w *Writer) Finish() {
	if !w.done {
		w.done = true
		w.Edit(w.ResponseWriter.Header())
	}
}
