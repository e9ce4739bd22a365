//go:build unix && !linux

package rawio

import "syscall"

// ReadFD reads fd once into p, for callers that drive the poller themselves (a
// syscall.RawConn's Read callback).
func ReadFD(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }
