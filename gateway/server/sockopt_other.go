//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package server

// setReuseOptions does nothing where SO_REUSEPORT is unavailable: hand-over to a
// replacement process then needs the old process to release the port first.
func setReuseOptions(fd uintptr) error { return nil }
