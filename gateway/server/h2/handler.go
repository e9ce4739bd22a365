package h2

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"
)

// runHandler runs st's handler on a worker goroutine and finishes the
// stream. A panic, or runtime.Goexit, resets only this stream; the
// connection carries on.
func (c *conn) runHandler(st *stream) {
	finished := false
	defer func() {
		if finished {
			return
		}
		// recover returns nil when the handler called runtime.Goexit; the
		// stream must end all the same, or it stays counted forever.
		if e := recover(); e != nil && e != http.ErrAbortHandler && c.srv.logger != nil {
			c.srv.logger.Error("h2: handler panic", "remote", c.remoteAddr,
				"method", st.req.Method, "uri", st.req.RequestURI,
				"panic", e, "stack", string(debug.Stack()))
		}
		c.abortFromHandler(st)
	}()
	if to := c.srv.writeTO; to > 0 {
		st.setWriteDeadline(time.Now().Add(to))
	}
	c.srv.handler.ServeHTTP(&st.rw, st.req)
	if st.rw.short() {
		// Ending the stream would make a truncated body look complete.
		c.abortFromHandler(st)
	} else {
		c.finishStream(st)
	}
	finished = true
}

// finishStream completes the response after the handler returned: it sends
// the headers if not yet sent (with a Content-Length when the whole body is
// still buffered), the rest of the body, and trailers, ending the stream.
func (c *conn) finishStream(st *stream) {
	rw := &st.rw
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	trailers := rw.trailerFields()
	var body []byte
	if rw.bufp != nil {
		body = *rw.bufp
	}
	c.lockWrite()
	if c.writableLocked(st) == nil {
		if !rw.sentHeader {
			rw.sentHeader = true
			end := len(body) == 0 && len(trailers) == 0
			rw.addSniffedType(body)
			c.writeHeaderBlockLocked(st.id, rw.status, rw.fields, rw.contentLength(len(body)), !rw.hasDate, end)
			if !end {
				c.writeDataLocked(st, body, len(trailers) == 0)
			}
		} else {
			c.writeDataLocked(st, body, len(trailers) == 0)
		}
		if len(trailers) > 0 && c.writableLocked(st) == nil {
			c.writeHeaderBlockLocked(st.id, 0, trailers, "", false, true)
		}
		if c.writableLocked(st) == nil && !st.remoteClosed.Load() {
			// The response is complete but the client is still sending;
			// ask it to stop without error (RFC 9113 §8.1).
			c.wfr.WriteRSTStream(st.id, errCodeNo)
		}
		st.wclosed = true
		c.queuedEndLocked(st)
	}
	// Leave the stream table before the batch is flushed, so that a client
	// that sees the end of this stream and opens another is not refused
	// for a stream we still counted. The lock is dropped, but this
	// goroutine stays announced as a writer, so the flush waits for it.
	c.wmu.Unlock()
	others := c.endStream(st)
	c.leftTable(st)
	if others > 0 {
		// Other handlers of this connection are running; those that are
		// runnable now get to append their responses before this flush,
		// which then carries them all (they see this writer announced and
		// leave the flush to it). Handlers blocked elsewhere are not
		// waited for: yielding costs only a pass through the run queue.
		runtime.Gosched()
	}
	c.wmu.Lock()
	c.unlockWrite()
	rw.release()
}

// contentLength returns the Content-Length to add when the handler finished
// with its whole body (n bytes) buffered and set none itself.
func (rw *responseWriter) contentLength(n int) string {
	if rw.noBody || len(rw.trailers) > 0 {
		return ""
	}
	for _, hf := range rw.fields {
		if hf.Name == "content-length" {
			return ""
		}
	}
	if rw.st.req.Method == http.MethodHead {
		if rw.headLen == 0 {
			return ""
		}
		return strconv.FormatInt(rw.headLen, 10)
	}
	return strconv.Itoa(n)
}

// release returns the body buffer to its pool.
func (rw *responseWriter) release() {
	if rw.bufp != nil {
		*rw.bufp = (*rw.bufp)[:0]
		bodyBufPool.Put(rw.bufp)
		rw.bufp = nil
	}
}

// abortFromHandler resets a stream whose handler panicked.
func (c *conn) abortFromHandler(st *stream) {
	c.lockWrite()
	if c.writableLocked(st) == nil {
		c.wfr.WriteRSTStream(st.id, errCodeInternal)
		st.wclosed = true
		c.queuedEndLocked(st)
	}
	// As in finishStream, the stream leaves the table before the reset is
	// flushed, so that a client that sees the reset and opens another stream
	// is not refused for this one; this goroutine stays announced as a
	// writer meanwhile, so the flush waits for it.
	c.wmu.Unlock()
	st.abort(errStreamClosed)
	c.endStream(st)
	c.leftTable(st)
	c.wmu.Lock()
	c.unlockWrite()
	st.rw.release()
}

// endStream accounts for a finished handler: the stream leaves the table
// (but stays counted as open while its last frames wait to be written), its
// context is cancelled and its unread body given back.
// It returns how many other handlers of the connection are still running.
func (c *conn) endStream(st *stream) int {
	if st.ended {
		return 0
	}
	st.ended = true
	st.stopTimers()
	st.ctx.Cancel()
	st.body.Close()
	c.smu.Lock()
	// A stream whose client is still sending was reset with NO_ERROR by
	// finishStream (RFC 9113 §8.1); what it sends meanwhile is ignored.
	resetHere := !st.remoteClosed.Load()
	if c.streams[st.id] == st && c.holdOpen(st) {
		// Still counted as open until its last frames are written.
		delete(c.streams, st.id)
		c.closed.add(st.id, resetHere)
	} else {
		c.closeStreamLocked(st, resetHere)
	}
	c.running--
	c.handlers.Add(-1)
	others := c.running
	c.smu.Unlock()
	c.maybeFinish()
	return others
}
