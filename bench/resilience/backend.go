package main

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// mode is how a backend answers.
type mode int32

const (
	// modeOK answers 200 with the backend's name.
	modeOK mode = iota
	// modeFail answers 503.
	modeFail
	// modeReset closes the connection without an answer (an RST, not a FIN).
	modeReset
	// modeSlow waits the backend's delay, then answers as modeOK.
	modeSlow
)

// backendHeader names the backend that answered, for the load generator to count.
const backendHeader = "X-Bench-Backend"

// backend is an HTTP server on a loopback port whose answers can be switched while it
// runs, and which counts the requests it received.
type backend struct {
	name     string
	listener net.Listener
	server   *http.Server
	current  atomic.Int32
	delay    atomic.Int64
	received atomic.Int64
}

// startBackend serves on a free 127.0.0.1 port in this process.
func startBackend(name string, m mode) (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &backend{name: name, listener: ln}
	b.setMode(m)
	b.setDelay(50 * time.Millisecond)
	b.server = &http.Server{Handler: http.HandlerFunc(b.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.server.Serve(ln) }()
	return b, nil
}

func (b *backend) port() int { return b.listener.Addr().(*net.TCPAddr).Port }

func (b *backend) url() string { return "http://" + b.listener.Addr().String() }

// setMode switches how the following requests are answered.
func (b *backend) setMode(m mode) { b.current.Store(int32(m)) }

// setDelay sets how long modeSlow waits.
func (b *backend) setDelay(d time.Duration) { b.delay.Store(int64(d)) }

// requests returns how many requests arrived since the last reset.
func (b *backend) requests() int64 { return b.received.Load() }

// resetCount forgets the requests counted so far (the readiness probes', say).
func (b *backend) resetCount() { b.received.Store(0) }

func (b *backend) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = b.server.Shutdown(ctx)
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	b.received.Add(1)
	switch mode(b.current.Load()) {
	case modeFail:
		w.Header().Set(backendHeader, b.name)
		http.Error(w, "failing on purpose", http.StatusServiceUnavailable)
		return
	case modeReset:
		resetConnection(w)
		return
	case modeSlow:
		select {
		case <-time.After(time.Duration(b.delay.Load())):
		case <-r.Context().Done():
			return
		}
	}
	body := b.name + "\n"
	w.Header().Set(backendHeader, b.name)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write([]byte(body))
}

// resetConnection takes the connection over and closes it with SO_LINGER 0, so the
// peer sees a reset rather than an orderly close.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}
