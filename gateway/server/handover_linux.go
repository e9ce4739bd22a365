package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// steer attaches to the listener's reuseport group a classic BPF program that gives
// every new connection to the socket at index, replacing any program the group had.
func (l *reusableListener) steer(index uint32) error {
	filter := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: index}}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	err := l.control(func(fd int) error {
		return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &prog)
	})
	if errors.Is(err, unix.ENOPROTOOPT) {
		return errSteeringUnsupported
	}
	if err != nil {
		return fmt.Errorf("steering the port's connections: %w", err)
	}
	return nil
}

// clearSteering removes the steering program of the listener's reuseport group, if it
// has one. Kernels without SO_DETACH_REUSEPORT_BPF (before 5.3) keep it, which only
// means that a new socket may get every connection at once instead of its share.
func (l *reusableListener) clearSteering() {
	_ = l.control(func(fd int) error {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_REUSEPORT_BPF, 0)
	})
}

// queueLen returns the number of connections waiting in the listener's accept queue:
// for a listening socket, TCP_INFO's unacked field is the accept backlog.
func (l *reusableListener) queueLen() (int, error) {
	var queued int
	err := l.control(func(fd int) error {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return err
		}
		queued = int(info.Unacked)
		return nil
	})
	return queued, err
}

// control runs fn on the listener's file descriptor.
func (l *reusableListener) control(fn func(fd int) error) error {
	raw, err := l.TCPListener.SyscallConn()
	if err != nil {
		return err
	}
	var fnErr error
	if err := raw.Control(func(fd uintptr) { fnErr = fn(int(fd)) }); err != nil {
		return err
	}
	return fnErr
}

// dialProbe connects to remote from a port of the same address, telling bound that
// local address before the connection is attempted, so that the listener can
// recognise the probe however soon it arrives.
func dialProbe(ctx context.Context, remote *net.TCPAddr, bound func(local *net.TCPAddr)) (net.Conn, error) {
	d := net.Dialer{Control: func(network, address string, raw syscall.RawConn) error {
		var local *net.TCPAddr
		var bindErr error
		err := raw.Control(func(fd uintptr) { local, bindErr = bindEphemeral(int(fd), remote.IP) })
		if err != nil {
			return err
		}
		if bindErr != nil {
			return fmt.Errorf("binding the hand-over probe: %w", bindErr)
		}
		bound(local)
		return nil
	}}
	return d.DialContext(ctx, "tcp", remote.String())
}

// bindEphemeral binds fd to a free port of ip and returns the address it got.
func bindEphemeral(fd int, ip net.IP) (*net.TCPAddr, error) {
	var sa unix.Sockaddr
	if ip4 := ip.To4(); ip4 != nil {
		sa = &unix.SockaddrInet4{Addr: [4]byte(ip4)}
	} else {
		sa = &unix.SockaddrInet6{Addr: [16]byte(ip.To16())}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, err
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		return nil, err
	}
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}, nil
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}, nil
	}
	return nil, fmt.Errorf("unexpected socket address %T", got)
}
