//go:build linux && (race || msan || asan)

package rawio

import (
	"syscall"
	"unsafe"
)

// rawCall reads or writes through the syscall package under the race detector and
// the memory and address sanitizers, whose read and write functions tell them what
// a call read and that data written to a socket happens before it is read at the
// other end; raw system calls would hide that and make correct programs look wrong.
func rawCall(trap, fd uintptr, p []byte) (int, syscall.Errno) {
	var n int
	var err error
	if trap == syscall.SYS_READ {
		n, err = syscall.Read(int(fd), p)
	} else {
		n, err = syscall.Write(int(fd), p)
	}
	if errno, ok := err.(syscall.Errno); ok {
		return n, errno
	}
	return n, 0
}

// rawWritev writes the buffers one by one through the syscall package, for the same
// reason as rawCall.
func rawWritev(fd uintptr, vecs []syscall.Iovec) (int, syscall.Errno) {
	total := 0
	for _, v := range vecs {
		n, errno := rawCall(syscall.SYS_WRITE, fd, unsafe.Slice(v.Base, v.Len))
		if errno != 0 {
			if total > 0 {
				return total, 0
			}
			return n, errno
		}
		total += n
		if uint64(n) < uint64(v.Len) {
			return total, 0
		}
	}
	return total, 0
}
