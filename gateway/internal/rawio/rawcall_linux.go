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

// rawWritev makes a gathered write without the scheduler's system call bookkeeping.
func rawWritev(fd uintptr, vecs []syscall.Iovec) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(unsafe.SliceData(vecs))), uintptr(len(vecs)))
	return int(n), errno
}
