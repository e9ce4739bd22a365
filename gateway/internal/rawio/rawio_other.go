//go:build !linux

package rawio

import "net"

// Conn is not used where raw system calls are not.
type Conn struct{}

// New returns nil: connections are read and written as net.Conn.
func New(net.Conn) *Conn { return nil }

// Read is never called on a nil Conn.
func (*Conn) Read([]byte) (int, error) { panic("rawio: unsupported platform") }

// Write is never called on a nil Conn.
func (*Conn) Write([]byte) (int, error) { panic("rawio: unsupported platform") }

// WriteBuffers is never called on a nil Conn.
func (*Conn) WriteBuffers(*net.Buffers) (int64, error) { panic("rawio: unsupported platform") }

// ReadIdle is never called on a nil Conn.
func (*Conn) ReadIdle([]byte, func([]byte), func() []byte) ([]byte, int, error) {
	panic("rawio: unsupported platform")
}
