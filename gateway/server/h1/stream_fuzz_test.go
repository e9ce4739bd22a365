package h1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// sentinel ends every fuzzed stream, so that the test knows when the server has
// served all it would.
const sentinel = "GET /__end HTTP/1.1\r\nHost: end\r\n\r\n"

// serveStream runs a connection over an in-memory pipe and returns what the handler
// saw of each request, in order, until the stream ended or was refused. With
// forward, a forwarder is offered the requests first and takes every other one,
// reading its body from Exchange.Body, so that the requests it takes, those it
// declines and those never offered to it must all split the stream alike.
func serveStream(t *testing.T, stream []byte, forward bool) []string {
	t.Helper()
	var (
		mu     sync.Mutex
		seen   []string
		end    = make(chan struct{})
		offers int
	)
	cfg := Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if r.URL.Path == "/__end" {
			close(end)
			return
		}
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s body=%q err=%v", r.Method, r.RequestURI, body, err != nil))
		mu.Unlock()
	}), ReadHeaderTimeout: time.Second, IdleTimeout: time.Second}
	if forward {
		cfg.Forwarder = forwarderFunc(func(x *Exchange) bool {
			offers++
			if offers%2 == 1 && x.Target() != "/__end" {
				return false
			}
			if x.Target() == "/__end" {
				close(end)
			} else {
				mu.Lock()
				seen = append(seen, fmt.Sprintf("%s %s body=%q err=false", x.Method(), x.Target(), x.Body()))
				mu.Unlock()
			}
			rawAnswer(x, "")
			return true
		})
	}
	srv := New(cfg)
	client, server := net.Pipe()
	served := make(chan struct{})
	go func() {
		srv.ServeConn(server)
		close(served)
	}()
	go func() { _, _ = io.Copy(io.Discard, client) }()
	go func() {
		_, _ = client.Write(stream)
		_, _ = client.Write([]byte(sentinel))
	}()
	select {
	case <-end:
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatalf("the server neither finished nor gave up on %q", stream)
	}
	_ = client.Close()
	<-served
	mu.Lock()
	defer mu.Unlock()
	return seen
}

// netHTTPRequests reads the stream with net/http's request reader, bodies included,
// and describes the requests as serveStream does, up to the first error.
func netHTTPRequests(stream []byte) []string {
	br := bufio.NewReader(bytes.NewReader(stream))
	var out []string
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return out
		}
		body, err := io.ReadAll(req.Body)
		out = append(out, fmt.Sprintf("%s %s body=%q err=%v", req.Method, req.RequestURI, body, err != nil))
		if err != nil {
			return out
		}
	}
}

// FuzzServeStream feeds whole pipelined streams, bodies included, to a connection:
// every request the server hands a handler must be the request net/http reads at the
// same position, with the same body, so no stream splits into requests differently
// for the two parsers (request smuggling).
func FuzzServeStream(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\nGET /n HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab\r\n0\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
		"POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nabPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\ncdePUT /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nf",
		"POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcdGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nxGET /c HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		theirs := netHTTPRequests(append(bytes.Clone(stream), sentinel...))
		plain := serveStream(t, stream, false)
		for i, got := range plain {
			if i >= len(theirs) || theirs[i] != got {
				t.Fatalf("request %d: served %q, net/http reads %q\nstream %q", i, got, theirs, stream)
			}
		}
		// Requests the forwarder takes or declines split the stream exactly as the
		// handler alone does: the same requests, and no more or fewer of them.
		if forwarded := serveStream(t, stream, true); !slices.Equal(forwarded, plain) {
			t.Fatalf("with a forwarder, served %q; without, %q\nstream %q", forwarded, plain, stream)
		}
	})
}
