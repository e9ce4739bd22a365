//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package server

import "golang.org/x/sys/unix"

// setReuseOptions sets SO_REUSEADDR (rebinding a port with connections in TIME_WAIT)
// and SO_REUSEPORT (two processes listening on one port during hand-over).
func setReuseOptions(fd uintptr) error {
	if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return err
	}
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
}
