package h2

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// endOrReset reads stream id's frames until it ends, reporting whether it
// ended with RST_STREAM (and its code) rather than END_STREAM, and the body.
func (rc *rawConn) endOrReset(id uint32) (reset bool, code http2.ErrCode, body string) {
	rc.t.Helper()
	var b strings.Builder
	rc.readUntil("end of stream", func(f http2.Frame) bool {
		if f.Header().StreamID != id {
			return false
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			reset, code = true, f.ErrCode
			return true
		case *http2.DataFrame:
			b.Write(f.Data())
		}
		return f.Header().Flags.Has(http2.FlagDataEndStream) // same bit for HEADERS
	})
	return reset, code, b.String()
}

// responseHeaders reads until stream id's final response HEADERS.
func (rc *rawConn) responseHeaders(id uint32) *http2.MetaHeadersFrame {
	rc.t.Helper()
	return rc.readUntil("response headers", func(f http2.Frame) bool {
		mh, ok := f.(*http2.MetaHeadersFrame)
		return ok && mh.StreamID == id && !strings.HasPrefix(mh.PseudoValue("status"), "1")
	}).(*http2.MetaHeadersFrame)
}

// recvBounded receives from ch, failing the test if nothing comes within
// ioBound.
func recvBounded(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(ioBound):
		t.Fatal("handler did not report")
		return nil
	}
}

func TestWriteBeyondDeclaredContentLengthFails(t *testing.T) {
	errs := make(chan error, 2)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		_, err := io.WriteString(w, "hello")
		errs <- err
		_, err = io.WriteString(w, "!")
		errs <- err
	}), nil)
	res, err := h2cClient(t).Get("http://" + ts.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || string(b) != "hello" {
		t.Fatalf("body %q, %v", b, err)
	}
	if err := <-errs; err != nil {
		t.Fatalf("write within Content-Length: %v", err)
	}
	if err := <-errs; !errors.Is(err, http.ErrContentLength) {
		t.Fatalf("write past Content-Length: %v, want http.ErrContentLength", err)
	}
}

func TestShortBodyResetsStream(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		if r.URL.Path == "/304" {
			w.WriteHeader(304)
		}
		io.WriteString(w, strings.TrimPrefix(r.URL.Path, "/"))
	}), nil)
	rc := dialRaw(t, ts.addr)
	rc.request(1, true, "GET", "/abc")
	if reset, _, body := rc.endOrReset(1); !reset {
		t.Fatalf("a 4-byte body declared as 10 ended normally (%q); want RST_STREAM", body)
	}
	// HEAD, 304 and an exact body end normally.
	for i, h := range []struct{ method, path string }{
		{"HEAD", "/abc"}, {"GET", "/304"}, {"GET", "/0123456789"},
	} {
		id := uint32(3 + 2*i)
		rc.request(id, true, h.method, h.path)
		if reset, _, _ := rc.endOrReset(id); reset {
			t.Fatalf("%s %s was reset", h.method, h.path)
		}
	}
}

func TestContentTypeIsSniffed(t *testing.T) {
	for _, tc := range []struct {
		name, ce, want string
		size           int
	}{
		{"small", "", "text/html; charset=utf-8", 0},
		{"large", "", "text/html; charset=utf-8", 100000},
		{"encoded", "gzip", "", 0},
		{"head", "", "text/html; charset=utf-8", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.ce != "" {
					w.Header().Set("Content-Encoding", tc.ce)
				}
				io.WriteString(w, "<html><body>hi"+strings.Repeat(" ", tc.size))
			}), nil)
			rc := dialRaw(t, ts.addr)
			method := "GET"
			if tc.name == "head" {
				method = "HEAD"
			}
			rc.request(1, true, method, "/")
			got := ""
			for _, hf := range rc.responseHeaders(1).RegularFields() {
				if hf.Name == "content-type" {
					got = hf.Value
				}
			}
			if got != tc.want {
				t.Fatalf("content-type %q, want %q", got, tc.want)
			}
		})
	}
}

func TestInformationalOmitsContentLength(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1")
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "x")
	}), nil)
	var bad atomic.Value
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		if h.Get("Link") == "" || h.Get("Content-Length") != "" {
			bad.Store(h)
		}
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "http://"+ts.addr+"/", nil)
	res, err := h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if h := bad.Load(); h != nil {
		t.Fatalf("103 carried %v", h)
	}
}

func TestExpectAndTrailerHeadersAreHidden(t *testing.T) {
	type seen struct {
		expect, trailer []string
		declared        bool
	}
	got := make(chan seen, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		_, declared := r.Trailer["X-Sum"]
		got <- seen{r.Header["Expect"], r.Header["Trailer"], declared}
	}), nil)
	rc := dialRaw(t, ts.addr)
	rc.request(1, false, "POST", "/", "expect", "100-continue", "trailer", "X-Sum")
	rc.fr.WriteData(1, true, []byte("x"))
	s := <-got
	if s.expect != nil || s.trailer != nil || !s.declared {
		t.Fatalf("handler saw Expect %q, Trailer %q, r.Trailer declared %v; want neither header, declared", s.expect, s.trailer, s.declared)
	}
}

func TestUserinfoAndUnknownSchemeAreMalformed(t *testing.T) {
	var calls atomic.Int32
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }), nil)
	rc := dialRaw(t, ts.addr)
	rc.rawHeaders(1, true, ":method", "GET", ":scheme", "http", ":authority", "user@example.com", ":path", "/")
	rc.rawHeaders(3, true, ":method", "GET", ":scheme", "ftp", ":authority", "example.com", ":path", "/")
	for _, id := range []uint32{1, 3} {
		if reset, code, _ := rc.endOrReset(id); !reset || code != http2.ErrCodeProtocol {
			t.Fatalf("stream %d: reset %v code %v; want PROTOCOL_ERROR", id, reset, code)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("handler called %d times", n)
	}
}

func TestReadDeadlineFailsAndCanBeExtended(t *testing.T) {
	results := make(chan error, 2)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		var buf [8]byte
		_, err := r.Body.Read(buf[:])
		results <- err
		rc.SetReadDeadline(time.Time{})
		b, err := io.ReadAll(r.Body)
		if err == nil && string(b) != "late" {
			err = errors.New("read " + string(b))
		}
		results <- err
	}), nil)
	rc := dialRaw(t, ts.addr)
	rc.request(1, false, "POST", "/")
	if err := recvBounded(t, results); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	rc.fr.WriteData(1, true, []byte("late"))
	if err := recvBounded(t, results); err != nil {
		t.Fatalf("read after clearing the deadline: %v", err)
	}
}

func TestWriteDeadlineResetsStream(t *testing.T) {
	werr := make(chan error, 1)
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		// The client grants 64 KiB of window and no more, so this blocks.
		_, err := w.Write(make([]byte, 1<<20))
		<-r.Context().Done()
		werr <- err
	}), nil)
	rc := dialRaw(t, ts.addr)
	rc.request(1, true, "GET", "/")
	if reset, code, _ := rc.endOrReset(1); !reset || code != http2.ErrCodeInternal {
		t.Fatalf("reset %v code %v; want INTERNAL_ERROR", reset, code)
	}
	if err := recvBounded(t, werr); err == nil {
		t.Fatal("blocked write succeeded past its deadline")
	}
}

func TestHTTPServerWriteTimeoutResetsStream(t *testing.T) {
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * ioBound):
		}
	}), func(cfg *Config) { cfg.HTTPServer = &http.Server{WriteTimeout: 10 * time.Millisecond} })
	rc := dialRaw(t, ts.addr)
	rc.request(1, true, "GET", "/")
	if reset, code, _ := rc.endOrReset(1); !reset || code != http2.ErrCodeInternal {
		t.Fatalf("reset %v code %v; want INTERNAL_ERROR", reset, code)
	}
}

func TestOversizedHeadersGet431AndConnectionSurvives(t *testing.T) {
	var calls atomic.Int32
	ts := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.WriteString(w, "ok")
	}), func(c *Config) { c.MaxHeaderBytes = 4096 })
	rc := dialRaw(t, ts.addr)
	// Each field fits, together they do not. (A single field larger than
	// the whole limit is a COMPRESSION_ERROR in the Framer, as with net/http.)
	big := strings.Repeat("a", 2000)
	rc.request(1, false, "POST", "/", "x-a", big, "x-b", big, "x-c", big)
	if mh := rc.responseHeaders(1); mh.PseudoValue("status") != "431" || !mh.StreamEnded() {
		t.Fatalf("status %q, end %v; want 431 ending the stream", mh.PseudoValue("status"), mh.StreamEnded())
	}
	if calls.Load() != 0 {
		t.Fatal("oversized request reached the handler")
	}
	// The HPACK state stayed in step: the next request on the connection,
	// which the encoder may compress against the big one, is served.
	rc.request(3, true, "GET", "/")
	if reset, _, body := rc.endOrReset(3); reset || body != "ok" {
		t.Fatalf("next stream: reset %v body %q", reset, body)
	}
}
