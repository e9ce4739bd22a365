//go:build unix

package backend

import (
	"net"
	"syscall"
)

// peerOpen reports whether an idle connection is still open at the other end: a
// backend that closed it has left an end of stream (or a reset) to read. It reads
// without blocking and without consuming anything.
func peerOpen(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := true
	err = raw.Read(func(fd uintptr) bool {
		var buf [1]byte
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
		case err != nil || n == 0:
			open = false
		default:
			// Bytes nobody asked for: the connection is out of step.
			open = false
		}
		return true
	})
	return open && err == nil
}
