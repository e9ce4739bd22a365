package main

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// maxHead bounds a request or response head; a longer one ends the connection.
const maxHead = 16 << 10

var (
	errHeadTooLong  = errors.New("head longer than 16 KiB")
	errUnframed     = errors.New("message framed by Transfer-Encoding, which the floor does not forward")
	errBadLength    = errors.New("malformed Content-Length")
	errMalformed    = errors.New("malformed status line")
	errUnexpectedUp = errors.New("backend sent bytes beyond its response")
	errSwitching    = errors.New("backend switched protocols, which the floor does not forward")
)

// quiet reports whether err is a connection simply ending.
func quiet(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// link is one client connection and its backend connection, with a buffer for
// each direction, made once.
type link struct {
	client, backend *reader
}

func newLink(client, backend net.Conn) *link {
	return &link{
		client:  &reader{conn: client, buf: make([]byte, maxHead)},
		backend: &reader{conn: backend, buf: make([]byte, maxHead)},
	}
}

// run forwards one exchange after another.
func (l *link) run() error {
	for {
		if err := l.exchange(); err != nil {
			return err
		}
	}
}

// exchange forwards one request and its response, with any 1xx responses
// before it.
func (l *link) exchange() error {
	head, err := l.client.head()
	if err != nil {
		return err
	}
	length, err := contentLength(head)
	if err != nil {
		return err
	}
	if length < 0 {
		length = 0 // A request without a length has no body.
	}
	noBody := isHead(head)
	if err := l.client.forward(l.backend.conn, len(head), length); err != nil {
		return err
	}
	for {
		head, err := l.backend.head()
		if err != nil {
			return err
		}
		status, err := statusCode(head)
		if err != nil {
			return err
		}
		if status == 101 {
			return errSwitching
		}
		length, err := contentLength(head)
		if err != nil {
			return err
		}
		if noBody || status < 200 || status == 204 || status == 304 {
			length = 0
		}
		if length < 0 {
			// Framed by the end of the connection: forward until it comes.
			return l.backend.forwardToEOF(l.client.conn, len(head))
		}
		if err := l.backend.forward(l.client.conn, len(head), length); err != nil {
			return err
		}
		if status >= 200 {
			if l.backend.buffered() > 0 {
				return errUnexpectedUp
			}
			return nil
		}
	}
}

// reader reads heads and bodies from one connection into its buffer; the bytes
// from r to w are read and not yet forwarded.
type reader struct {
	conn net.Conn
	buf  []byte
	r, w int
}

func (rd *reader) buffered() int { return rd.w - rd.r }

// head reads until the buffer, from r, holds a whole head, and returns it. The
// head stays in the buffer until forward takes it.
func (rd *reader) head() ([]byte, error) {
	scanned := 0
	for {
		if end := headEnd(rd.buf[rd.r:rd.w], scanned); end > 0 {
			return rd.buf[rd.r : rd.r+end], nil
		}
		if scanned = rd.buffered() - 3; scanned < 0 {
			scanned = 0
		}
		if rd.r > 0 {
			rd.w = copy(rd.buf, rd.buf[rd.r:rd.w])
			rd.r = 0
		}
		if rd.w == len(rd.buf) {
			return nil, errHeadTooLong
		}
		n, err := rd.conn.Read(rd.buf[rd.w:])
		rd.w += n
		if err != nil && n == 0 {
			if err == io.EOF && rd.w > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// forward writes the head of headLen bytes and a body of bodyLen bytes to dst:
// what the buffer holds in one write, then the rest of the body as it is read.
func (rd *reader) forward(dst net.Conn, headLen int, bodyLen int64) error {
	n := int64(headLen) + bodyLen
	if have := int64(rd.buffered()); have < n {
		n = have
	}
	if _, err := dst.Write(rd.buf[rd.r : rd.r+int(n)]); err != nil {
		return err
	}
	rd.r += int(n)
	left := int64(headLen) + bodyLen - n
	if rd.r == rd.w {
		rd.r, rd.w = 0, 0
	}
	for left > 0 {
		chunk := rd.buf[rd.w:]
		if int64(len(chunk)) > left {
			chunk = chunk[:left]
		}
		got, err := rd.conn.Read(chunk)
		if got > 0 {
			if _, werr := dst.Write(chunk[:got]); werr != nil {
				return werr
			}
			left -= int64(got)
		}
		if err != nil && left > 0 {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// forwardToEOF writes the head of headLen bytes and then everything read until
// the connection ends, and reports io.EOF: the exchange ended its connection.
func (rd *reader) forwardToEOF(dst net.Conn, headLen int) error {
	if _, err := dst.Write(rd.buf[rd.r:rd.w]); err != nil {
		return err
	}
	rd.r, rd.w = 0, 0
	if _, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{rd.conn}, rd.buf); err != nil {
		return err
	}
	return io.EOF
}
