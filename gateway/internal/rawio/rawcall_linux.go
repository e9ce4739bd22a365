//go:build linux && !race && !msan && !asan

package rawio

import (
	"syscall"
	"unsafe"
)

// rawCall makes a read or write system call on p without the scheduler's system
// call bookkeeping.
func rawCall(trap, fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), errno
}
