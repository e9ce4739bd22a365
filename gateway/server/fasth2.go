package server

import (
	"errors"
	"net"
	"os"

	"github.com/switchyard-dev/switchyard/gateway/server/h2"
)

// HTTP2Mode chooses what serves HTTP/2 on a socket whose HTTP/1.x goes to package
// h1 (HTTP1Fast). With HTTP1Std, net/http serves every protocol.
type HTTP2Mode string

const (
	// HTTP2Fast serves HTTP/2 (ALPN h2 over TLS, and h2c with prior knowledge) with
	// package h2, a server built for the data path: handlers run on reused
	// goroutines and write their frames straight into the connection's buffer, which
	// goes out in one write for all the streams that finished together.
	HTTP2Fast HTTP2Mode = "fast"
	// HTTP2Std serves HTTP/2 with net/http's server.
	HTTP2Std HTTP2Mode = "std"
)

// HTTP2ModeEnv names the environment variable that chooses the HTTP/2 server when
// Limits.HTTP2 (or a command's flag) leaves it open: "fast" or "std".
const HTTP2ModeEnv = "SWITCHYARD_HTTP2"

// DefaultHTTP2Mode is the HTTP/2 server when neither the limits nor the
// environment choose one.
const DefaultHTTP2Mode = HTTP2Fast

// ParseHTTP2Mode reads "fast" or "std"; "" means the environment's choice (see
// HTTP2ModeEnv), else the default.
func ParseHTTP2Mode(v string) (HTTP2Mode, error) {
	if v == "" {
		v = os.Getenv(HTTP2ModeEnv)
	}
	switch HTTP2Mode(v) {
	case "":
		return DefaultHTTP2Mode, nil
	case HTTP2Fast, HTTP2Std:
		return HTTP2Mode(v), nil
	}
	return "", errors.New(`HTTP/2 server must be "fast" or "std", not "` + v + `"`)
}

// newFastHTTP2Server configures package h2 for one socket with the socket's
// handler and limits.
func (m *Manager) newFastHTTP2Server(s *socket) *h2.Server {
	l := m.limits
	return h2.New(h2.Config{
		Handler:                       http1Handler(s),
		MaxConcurrentStreams:          l.MaxConcurrentStreams,
		MaxReceiveBufferPerConnection: l.HTTP2MaxReceiveBufferPerConnection,
		MaxReceiveBufferPerStream:     l.HTTP2MaxReceiveBufferPerStream,
		MaxHeaderBytes:                l.MaxHeaderBytes,
		ReadHeaderTimeout:             l.ReadHeaderTimeout,
		IdleTimeout:                   l.IdleTimeout,
		WriteByteTimeout:              l.HTTP2WriteByteTimeout,
		Logger:                        m.logger.With("listener", s.name),
		HTTPServer:                    s.srv,
	})
}

// serveHTTP2 serves an HTTP/2 connection: with package h2 when the socket has one,
// else with net/http.
func (s *socket) serveHTTP2(c net.Conn) {
	if s.h2 != nil {
		s.h2.ServeConn(c)
		return
	}
	s.handoff.give(c)
}
