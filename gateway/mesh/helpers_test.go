package mesh

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeResolver answers from a fixed table and counts lookups.
type fakeResolver struct {
	addrs   map[string][]string
	lookups atomic.Int64
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	f.lookups.Add(1)
	texts, ok := f.addrs[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]netip.Addr, len(texts))
	for i, t := range texts {
		out[i] = netip.MustParseAddr(t)
	}
	return out, nil
}

// echoBackend is an HTTP backend that answers with its name, the Host it was asked
// for and the X-Forwarded-For it got.
func echoBackend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s host=%s xff=%s", name, r.Host, r.Header.Get("X-Forwarded-For"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// deadAddr returns an address on host where nothing listens.
func deadAddr(t *testing.T, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// connect opens a CONNECT tunnel to target through the proxy at proxyAddr and
// returns the connection with the proxy's status code. On a status other than 200
// the connection is closed and nil.
func connect(t *testing.T, proxyAddr, target string) (*net.TCPConn, *bufio.Reader, int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		_ = c.Close()
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	if res.StatusCode != http.StatusOK {
		_ = c.Close()
		return nil, nil, res.StatusCode
	}
	return c.(*net.TCPConn), br, res.StatusCode
}

// halfCloseExchange sends msg through a tunnel to a testtcp.ReplyAfterEOF server, half-closes
// and returns everything read back.
func halfCloseExchange(t *testing.T, c *net.TCPConn, br *bufio.Reader, msg string) string {
	t.Helper()
	defer c.Close()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("reading the tunnel: %v", err)
	}
	return string(got)
}

// proxyClient sends requests through the proxy at proxyURL in absolute form.
func proxyClient(t *testing.T, proxyURL string) *http.Client {
	t.Helper()
	u, err := url.Parse(proxyURL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{Proxy: http.ProxyURL(u)}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get sends a GET and returns its status, X-Switchyard-Error and body.
func get(t *testing.T, c *http.Client, url string) (int, string, string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("X-Switchyard-Error"), strings.TrimSpace(string(b))
}
