package observe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"
)

// accessLogFlushInterval bounds how long a line waits in the buffer before it is
// written out.
const accessLogFlushInterval = time.Second

// accessLogBuffer is the size of the buffer lines are gathered in, so that a busy
// gateway writes to the file in large blocks rather than once per request.
const accessLogBuffer = 64 << 10

// AccessLog writes one JSON line per request (log/slog's JSON handler). Lines are
// buffered and written out at least every second and on Close.
//
// Fields: time, msg ("request"), listener, route, rule (its name, or its index),
// backend, endpoint, method, host, path (as received, without the query, which may
// hold secrets), status, bytes (of the response body), attempts, duration_ms (to
// the end of the response), upstream_ms (of the attempt whose answer the client
// got, to its response headers), flags (see reqctx.Flags), trace_id and client
// (the TCP peer).
//
// Sampling: a share of the requests answered below 500 is logged; every request
// answered 500 or above (the gateway's own failures included) is.
type AccessLog struct {
	sample  float64
	out     *lineWriter
	handler slog.Handler
}

// OpenAccessLog opens an access log: dest is "off" (or empty) for none, "stdout", or
// a file path, appended to. sample is the share of requests logged, from 0 to 1.
func OpenAccessLog(dest string, sample float64) (*AccessLog, error) {
	if sample < 0 || sample > 1 {
		return nil, fmt.Errorf("access log sample %v: want 0 to 1", sample)
	}
	switch dest {
	case "", "off":
		return nil, nil
	case "stdout":
		return NewAccessLog(os.Stdout, nil, sample), nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	return NewAccessLog(f, f, sample), nil
}

// NewAccessLog returns an access log writing to w; Close closes closer, if not nil.
func NewAccessLog(w io.Writer, closer io.Closer, sample float64) *AccessLog {
	out := &lineWriter{buf: bufio.NewWriterSize(w, accessLogBuffer), closer: closer,
		stop: make(chan struct{}), done: make(chan struct{})}
	go out.flushLoop(accessLogFlushInterval)
	return &AccessLog{
		sample: sample,
		out:    out,
		handler: slog.NewJSONHandler(out, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			// Every line is at one level; it says nothing.
			if len(groups) == 0 && a.Key == slog.LevelKey {
				return slog.Attr{}
			}
			return a
		}}),
	}
}

// Flush writes out the buffered lines.
func (a *AccessLog) Flush() error { return a.out.flush() }

// Close writes out the buffered lines, stops the periodic flush and closes the
// destination file. Lines logged afterwards are dropped.
func (a *AccessLog) Close() error { return a.out.Close() }

// sampled decides whether a request is logged.
func (a *AccessLog) sampled(status int) bool {
	return status >= 500 || a.sample >= 1 || (a.sample > 0 && rand.Float64() < a.sample)
}

func (a *AccessLog) log(x *Exchange, status int, elapsed time.Duration) {
	r := x.req
	var route, rule string
	if x.rule != nil {
		route, rule = x.rule.route, x.rule.name
	}
	rec := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	rec.AddAttrs(
		slog.String("listener", x.listener.name),
		slog.String("route", route),
		slog.String("rule", rule),
		slog.String("backend", x.Info.Backend),
		slog.String("endpoint", x.Info.Endpoint),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", x.path),
		slog.Int("status", status),
		slog.Int64("bytes", x.writer.bytes),
		slog.Int("attempts", x.Info.Attempts),
		slog.Float64("duration_ms", milliseconds(elapsed)),
		slog.Float64("upstream_ms", milliseconds(x.Info.UpstreamTime)),
		slog.String("flags", x.Info.Flags.String()),
		slog.String("trace_id", traceIDOf(x.span, r)),
		slog.String("client", r.RemoteAddr),
	)
	_ = a.handler.Handle(context.Background(), rec)
}

func milliseconds(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// lineWriter buffers the lines of an access log. The slog handler writes each line
// in one Write, so lines never interleave.
type lineWriter struct {
	mu     sync.Mutex
	buf    *bufio.Writer
	closer io.Closer
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, errAccessLogClosed
	}
	return w.buf.Write(p)
}

var errAccessLogClosed = errors.New("access log is closed")

func (w *lineWriter) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	return w.buf.Flush()
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
	err := w.buf.Flush()
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	if w.closer != nil {
		err = errors.Join(err, w.closer.Close())
	}
	return err
}
