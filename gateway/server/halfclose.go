package server

import "errors"

// errNoHalfClose is returned by CloseWrite when the connection underneath cannot be
// closed for writing only.
var errNoHalfClose = errors.New("connection cannot be half-closed")

// closeWriter is a connection that can be closed for writing only: TCP's half-close,
// or TLS's close_notify.
type closeWriter interface{ CloseWrite() error }

// CloseWrite half-closes the connection, so that a handler that took it over (a
// CONNECT tunnel) can pass on the end of one direction while the other carries on.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return errNoHalfClose
}

// CloseWrite half-closes the guarded connection; see trackedConn.CloseWrite.
func (c *guardConn) CloseWrite() error {
	if cw, ok := c.Conn.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return errNoHalfClose
}

// CloseWrite sends TLS close_notify rather than half-closing the TCP connection under
// the TLS session, which would cut the session short.
func (c *guardTLSConn) CloseWrite() error { return c.tls.CloseWrite() }
