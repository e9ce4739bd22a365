//go:build !linux

package server

import (
	"context"
	"net"
)

// Steering a reuseport group's connections needs Linux's SO_ATTACH_REUSEPORT_CBPF.
// Elsewhere a hand-over does nothing, and closing a listener resets the connections
// in its accept queue, as it always did.

func (l *reusableListener) steer(index uint32) error { return errSteeringUnsupported }

func (l *reusableListener) clearSteering() {}

func (l *reusableListener) queueLen() (int, error) { return 0, errSteeringUnsupported }

func dialProbe(ctx context.Context, remote *net.TCPAddr, bound func(local *net.TCPAddr)) (net.Conn, error) {
	return nil, errSteeringUnsupported
}
