package h1

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/httpsyntax"
)

// maxChunkLine is the longest chunk-size line accepted, as net/http and the framing
// guard of package server accept.
const maxChunkLine = 4096

// maxDiscard is how much of a request body the handler left unread is read and
// dropped to keep the connection; beyond it the connection is closed instead, as
// net/http does.
const maxDiscard = 256 << 10

var (
	errBodyAfterClose = http.ErrBodyReadAfterClose
	errChunkLine      = errors.New("malformed chunked request body")
	errTrailerTooBig  = errors.New("request trailer section too large")
)

// body reads one request body from its connection's buffer and socket. A handler may
// hand the body to another goroutine (http.Transport writes request bodies from its
// own), which may still read after the handler returned, so every access takes mu,
// and finish closes the body before the connection reads the next request.
type body struct {
	mu sync.Mutex
	c  *conn
	// remaining is what is left of a Content-Length body, or of the current chunk.
	remaining int64
	chunked   bool
	// chunkState is where a chunked body stands; see the chunk* constants.
	chunkState uint8
	done       bool
	closed     bool
	// err is the first read error; the connection is not reused after one.
	err error
	// trailer is the request's Trailer map, filled at the end of a chunked body.
	trailer *http.Header
	// continueFor, when set, answers "100 Continue" before the first read.
	continueFor *response
	// onEOF runs once the whole body has been read.
	onEOF func()
}

const (
	chunkSize uint8 = iota
	chunkData
	chunkCRLF
)

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return 0, errBodyAfterClose
	case b.err != nil:
		return 0, b.err
	case b.done:
		return 0, io.EOF
	}
	if b.continueFor != nil {
		b.continueFor.writeContinue()
		b.continueFor = nil
	}
	n, err := b.read(p)
	if err != nil && err != io.EOF {
		b.err = err
		b.c.broken = true
	}
	if err == io.EOF {
		b.done = true
		if b.onEOF != nil {
			b.onEOF()
		}
	}
	return n, err
}

// read reads body bytes, framed as the request says.
func (b *body) read(p []byte) (int, error) {
	if len(p) == 0 {
		// io.Reader allows empty reads; the chunked loop below would never end.
		return 0, nil
	}
	if !b.chunked {
		if b.remaining == 0 {
			return 0, io.EOF
		}
		n, err := b.c.readBody(p, b.remaining)
		b.remaining -= int64(n)
		if b.remaining == 0 && err == nil {
			err = io.EOF
		}
		return n, err
	}
	for {
		switch b.chunkState {
		case chunkSize:
			last, err := b.readChunkSize()
			if err != nil || last {
				return 0, err
			}
		case chunkData:
			n, err := b.c.readBody(p, b.remaining)
			b.remaining -= int64(n)
			if b.remaining == 0 {
				b.chunkState = chunkCRLF
			}
			if n > 0 || err != nil {
				return n, err
			}
		case chunkCRLF:
			line, err := b.c.readLine(2)
			if err != nil {
				return 0, err
			}
			if len(line) != 2 || line[0] != '\r' {
				return 0, errChunkLine
			}
			b.chunkState = chunkSize
		}
	}
}

// readChunkSize reads a chunk-size line: CRLF-terminated, extensions ignored, 1 to
// 16 hexadecimal digits. At the last chunk it reads the trailer section and reports
// io.EOF.
func (b *body) readChunkSize() (last bool, err error) {
	line, err := b.c.readLine(maxChunkLine)
	if err != nil {
		return false, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' || bytes.IndexByte(line[:len(line)-2], '\r') >= 0 {
		return false, errChunkLine
	}
	line = line[:len(line)-2]
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	size, _, _ := httpsyntax.CutByte(line, ';')
	n, ok := httpsyntax.ParseHex(size)
	if !ok || n > 1<<62 {
		return false, errChunkLine
	}
	if n > 0 {
		b.remaining, b.chunkState = int64(n), chunkData
		return false, nil
	}
	return true, b.readTrailers()
}

// readTrailers reads the trailer section into the request's Trailer map and ends the
// body.
func (b *body) readTrailers() error {
	limit := b.c.srv.maxHead
	for {
		line, err := b.c.readLine(limit)
		if err != nil {
			if err == errLineTooLong {
				return errTrailerTooBig
			}
			return err
		}
		limit -= len(line)
		line = trimCR(line[:len(line)-1])
		if len(line) == 0 {
			return io.EOF
		}
		span, perr := headerLine(line, 0)
		if perr != nil {
			return errors.New("malformed request trailer: " + perr.reason)
		}
		httpsyntax.Canonicalize(line[:span.nameEnd])
		name, value := string(line[:span.nameEnd]), string(line[span.valueStart:span.valueEnd])
		if *b.trailer == nil {
			*b.trailer = http.Header{}
		}
		(*b.trailer)[name] = append((*b.trailer)[name], value)
	}
}

// Close stops further reads; the connection discards what is left.
func (b *body) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// finish is called by the connection after the handler: it reads and drops what the
// handler left of the body, up to maxDiscard, and reports whether the connection can
// carry another request.
func (b *body) finish() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	reusable := b.done
	if !b.done && b.err == nil && b.continueFor == nil {
		// A client still waiting for 100 Continue has sent no body; the connection
		// cannot be reused, since it may yet send it. The rest of the body must
		// arrive as promptly as a head would, or the connection is given up.
		if d := b.c.srv.readHeaderTimeout; d > 0 {
			b.c.setReadDeadline(time.Now().Add(d))
		}
		reusable = b.discard()
	}
	b.closed = true
	return reusable && b.err == nil
}

// discard reads the rest of the body into the void, up to maxDiscard bytes.
func (b *body) discard() bool {
	var scratch [512]byte
	for budget := maxDiscard; budget > 0; {
		n, err := b.read(scratch[:min(len(scratch), budget)])
		budget -= n
		if err == io.EOF {
			b.done = true
			return true
		}
		if err != nil {
			b.err = err
			return false
		}
	}
	return false
}
