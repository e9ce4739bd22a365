//go:build unix

package backend

import (
	"io"
	"net"
	"os"
	"syscall"

	"github.com/switchyard-dev/switchyard/gateway/internal/rawio"
)

// rawReader reads a backend connection with its own system calls, so that the watch
// on the request's context (a registration in the context tree, which costs more
// than the read itself) is set up only when a read has to wait, which the yield
// before reading a response makes rare.
type rawReader struct {
	raw syscall.RawConn
	// attempt is the read callback, made once per connection.
	attempt func(fd uintptr) bool
	cc      *clientConn
	buf     []byte
	n       int
	err     error
}

// initReader sets up raw reads when the connection offers them.
func (cc *clientConn) initReader() {
	sc, ok := cc.conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	r := &rawReader{raw: raw, cc: cc}
	r.attempt = r.try
	cc.raw = r
}

// try reads once; when nothing is there, the wait that follows is watched.
func (r *rawReader) try(fd uintptr) bool {
	for {
		n, err := rawio.ReadFD(fd, r.buf)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			r.cc.watch(false)
			return false
		}
		r.n, r.err = n, err
		return true
	}
}

// read reads into p as net.Conn.Read does, with the same kinds of errors.
func (cc *clientConn) read(p []byte) (int, error) {
	r := cc.raw
	if r == nil {
		cc.watch(false)
		return cc.conn.Read(p)
	}
	r.buf = p
	err := r.raw.Read(r.attempt)
	r.buf = nil
	switch {
	case err != nil:
		return 0, err
	case r.err != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: cc.conn.LocalAddr(), Addr: cc.conn.RemoteAddr(), Err: os.NewSyscallError("read", r.err)}
	case r.n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return r.n, nil
}
