package h2

import (
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
)

// tinyHandler answers every request with a 2-byte body, like the proxied
// responses in the load test that motivated this package.
var tinyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte("ok"))
})

// BenchmarkServeH2 runs parallel tiny GETs over one h2c connection of Go's
// client against this server ("own") and against net/http's HTTP/2 server
// ("nethttp"), so that the two are compared in one run. Client costs are
// included in both and are the same.
func BenchmarkServeH2(b *testing.B) {
	b.Run("own", func(b *testing.B) {
		ln, writes := countingListener(b)
		srv := New(Config{Handler: tinyHandler})
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go srv.ServeConn(c)
			}
		}()
		defer srv.Close()
		defer ln.Close()
		benchGets(b, ln.Addr().String(), writes)
	})
	b.Run("nethttp", func(b *testing.B) {
		ln, writes := countingListener(b)
		var protos http.Protocols
		protos.SetUnencryptedHTTP2(true)
		hs := &http.Server{Handler: tinyHandler, Protocols: &protos}
		go hs.Serve(ln)
		defer hs.Close()
		benchGets(b, ln.Addr().String(), writes)
	})
}

// countingListener is a loopback listener whose conns count their writes.
func countingListener(b *testing.B) (net.Listener, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	writes := new(atomic.Int64)
	return countListener{ln, writes}, writes
}

type countListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.writes}, nil
}

// benchGets issues b.N GETs from parallel goroutines over one connection.
// It reports the server's socket writes per response as writes/op.
func benchGets(b *testing.B, addr string, writes *atomic.Int64) {
	var before int64
	benchGetsHook(b, addr, func() { before = writes.Load() }, func() {
		b.ReportMetric(float64(writes.Load()-before)/float64(b.N), "writes/op")
	})
}

// benchGetsHook issues b.N GETs from parallel goroutines over one
// connection, calling start just before the timed part and stop just after.
func benchGetsHook(b *testing.B, addr string, start, stop func()) {
	tr := h2cTransport()
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	url := "http://" + addr + "/"
	// Open the connection first, so that every stream shares it.
	if res, err := c.Get(url); err != nil {
		b.Fatal(err)
	} else {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	b.SetParallelism(4)
	b.ReportAllocs()
	start()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 64)
		for pb.Next() {
			res, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.ReadFull(res.Body, buf[:2])
			res.Body.Close()
			if n != 2 {
				b.Errorf("body %d bytes", n)
				return
			}
		}
	})
	b.StopTimer()
	stop()
}
