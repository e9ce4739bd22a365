package h2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

func TestFlushSendsBeforeHandlerReturns(t *testing.T) {
	proceed := make(chan struct{})
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		<-proceed
		io.WriteString(w, "second")
	}), nil)
	c := h2cClient(t)
	res, err := c.Get("http://" + ts.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("before handler returned: %q %v", buf, err)
	}
	if res.ContentLength != -1 {
		t.Errorf("flushed response has Content-Length %d", res.ContentLength)
	}
	close(proceed)
	rest, _ := io.ReadAll(res.Body)
	if string(rest) != "second" {
		t.Fatalf("rest %q", rest)
	}
}

func TestInformationalResponses(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusCreated)
		w.WriteHeader(http.StatusAccepted) // superfluous, ignored
		io.WriteString(w, "x")
	}), nil)
	c := h2cClient(t)
	var early atomic.Int32
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		if code == 103 && h.Get("Link") != "" {
			early.Add(1)
		}
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "http://"+ts.addr+"/", nil)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 || early.Load() != 2 {
		t.Fatalf("status %d, %d early hints; want 201 after 2", res.StatusCode, early.Load())
	}
}

func TestHeadAndNoContentHaveNoBody(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/204" {
			w.WriteHeader(204)
			if _, err := io.WriteString(w, "x"); err != http.ErrBodyNotAllowed {
				w.Header().Set("X-Err", "missing")
			}
			return
		}
		io.WriteString(w, "hello")
	}), nil)
	rc := dialRaw(t, ts.addr)
	for i, tc := range []struct{ method, path, cl string }{{"HEAD", "/", "5"}, {"GET", "/204", ""}} {
		id := uint32(2*i + 1)
		rc.request(id, true, tc.method, tc.path)
		f := rc.readUntil("response", func(f http2.Frame) bool {
			if d, ok := f.(*http2.DataFrame); ok && d.StreamID == id {
				t.Fatalf("%s %s: DATA frame sent", tc.method, tc.path)
			}
			h, ok := f.(*http2.MetaHeadersFrame)
			return ok && h.StreamID == id
		}).(*http2.MetaHeadersFrame)
		if !f.StreamEnded() {
			t.Fatalf("%s %s: HEADERS without END_STREAM", tc.method, tc.path)
		}
		var cl string
		for _, hf := range f.Fields {
			if hf.Name == "content-length" {
				cl = hf.Value
			}
			if hf.Name == "x-err" {
				t.Errorf("Write after 204 did not return ErrBodyNotAllowed")
			}
		}
		if cl != tc.cl {
			t.Errorf("%s %s: content-length %q, want %q", tc.method, tc.path, cl, tc.cl)
		}
	}
}

func TestResponseController(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.EnableFullDuplex(); err != nil {
			io.WriteString(w, "EnableFullDuplex: "+err.Error())
			return
		}
		if err := rc.SetReadDeadline(time.Now()); err != nil {
			io.WriteString(w, fmt.Sprintf("SetReadDeadline: %v", err))
			return
		}
		io.WriteString(w, "ok")
		if err := rc.Flush(); err != nil {
			io.WriteString(w, "Flush: "+err.Error())
		}
	}), nil)
	res, err := h2cClient(t).Get("http://" + ts.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("%q", b)
	}
}

func TestBodyReadFailsWhenStreamReset(t *testing.T) {
	readErr := make(chan error, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
		if _, werr := io.WriteString(w, strings.Repeat("x", 100000)); werr == nil {
			readErr <- errors.New("write after reset succeeded")
		} else {
			readErr <- nil
		}
	}), nil)
	rc := dialRaw(t, ts.addr)
	rc.request(1, false, "POST", "/")
	rc.fr.WriteData(1, false, []byte("partial"))
	rc.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	if err := <-readErr; err == nil {
		t.Fatal("body read ended cleanly after the client reset the stream")
	}
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
}

func TestConnectAndAsteriskRequests(t *testing.T) {
	got := make(chan string, 2)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Method + " uri=" + r.RequestURI + " host=" + r.Host + " urlhost=" + r.URL.Host + " path=" + r.URL.Path
	}), nil)
	rc := dialRaw(t, ts.addr)
	rc.rawHeaders(1, true, ":method", "CONNECT", ":authority", "backend:443")
	if s := <-got; s != "CONNECT uri=backend:443 host=backend:443 urlhost=backend:443 path=" {
		t.Errorf("CONNECT: %s", s)
	}
	rc.request(3, true, "OPTIONS", "*")
	if s := <-got; s != "OPTIONS uri=* host=example.com urlhost= path=*" {
		t.Errorf("OPTIONS *: %s", s)
	}
	// GET with "*" is malformed.
	rc.request(5, true, "GET", "*")
	if f := rc.readUntil("RST_STREAM", isRST(5)).(*http2.RSTStreamFrame); f.ErrCode != http2.ErrCodeProtocol {
		t.Errorf("GET *: %v", f.ErrCode)
	}
}

func TestHeaderChangesAfterWriteHeaderAreIgnored(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Early", "1")
		w.WriteHeader(202)
		w.Header().Set("X-Late", "1")
		io.WriteString(w, "x")
	}), nil)
	res, err := h2cClient(t).Get("http://" + ts.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 202 || res.Header.Get("X-Early") != "1" || res.Header.Get("X-Late") != "" {
		t.Fatalf("status %d header %v", res.StatusCode, res.Header)
	}
}

func TestExpectContinue(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	}), nil)
	// net/http's own Transport speaking unencrypted HTTP/2, which supports
	// Expect: 100-continue.
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos, ExpectContinueTimeout: ioBound}
	defer tr.CloseIdleConnections()
	var got100 atomic.Bool
	trace := &httptrace.ClientTrace{Got100Continue: func() { got100.Store(true) }}
	ctx := httptrace.WithClientTrace(context.Background(), trace)
	req, _ := http.NewRequestWithContext(ctx, "PUT", "http://"+ts.addr+"/", strings.NewReader("payload"))
	req.Header.Set("Expect", "100-continue")
	res, err := (&http.Client{Transport: tr, Timeout: 2 * ioBound}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "payload" || res.ProtoMajor != 2 {
		t.Fatalf("%s body %q", res.Proto, b)
	}
	if !got100.Load() {
		t.Fatal("client got no 100 Continue")
	}
}
