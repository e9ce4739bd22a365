package h2

import (
	"net"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
)

// wrappedConn hides what it wraps but names it with NetConn, as the HTTP/1
// server's hand-over of a connection that began with the HTTP/2 preface does.
type wrappedConn struct{ net.Conn }

func (w *wrappedConn) NetConn() net.Conn { return w.Conn }

// TestTLSStateThroughWrappedConn: a TLS connection handed over inside a
// wrapper still counts as TLS: its requests carry the TLS state, and (what
// the second response shows) its writes are not given the short deadline of
// plain connections, which would break a TLS connection for good.
func TestTLSStateThroughWrappedConn(t *testing.T) {
	serverTLS, clientTLS := selfSignedTLS(t)
	sawTLS := make(chan bool, 2)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawTLS <- r.TLS != nil
		w.Write([]byte("ok"))
	})
	handshake := tlsHandshake(serverTLS)
	ts := startServerWrapped(t, h, nil, func(c net.Conn) net.Conn {
		if tc := handshake(c); tc != nil {
			return &wrappedConn{Conn: tc}
		}
		return nil
	})
	tr := &http2.Transport{TLSClientConfig: clientTLS}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: ioBound}
	for range 2 {
		res, err := client.Get("https://" + ts.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if !<-sawTLS {
			t.Fatal("a request on a wrapped TLS connection has no TLS state")
		}
	}
	if got := connTLSState(&wrappedConn{Conn: &wrappedConn{}}); got != nil {
		t.Errorf("connTLSState of a plain wrapped connection = %v, want nil", got)
	}
}
