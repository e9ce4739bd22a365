//go:build linux && (race || msan || asan)

package rawio

import "syscall"

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
