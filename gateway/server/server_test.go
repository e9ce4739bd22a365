package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testport"
)

// textHandler answers 200 with a fixed body.
func textHandler(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, body) })
}

// blockingHandler answers "slow" once release is closed, signalling entered first.
func blockingHandler(entered chan<- struct{}, release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-time.After(testTimeout):
		}
		_, _ = io.WriteString(w, "slow")
	})
}

// get fetches url with a fresh connection and returns the body, or an error.
func get(url string) (string, error) {
	client := &http.Client{Timeout: testTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func mustGet(t *testing.T, url, want string) {
	t.Helper()
	got, err := get(url)
	if err != nil || got != want {
		t.Fatalf("GET %s = %q, %v; want %q", url, got, err, want)
	}
}

// startSlowGet issues a GET in the background and returns where its body will arrive.
func startSlowGet(url string) <-chan string {
	done := make(chan string, 1)
	go func() {
		body, err := get(url)
		if err != nil {
			body = "error: " + err.Error()
		}
		done <- body
	}()
	return done
}

func loopbackSpec(name string, h http.Handler) Spec {
	return Spec{Name: name, Address: "127.0.0.1", Port: 0, Handler: h}
}

func TestSyncAddKeepRemove(t *testing.T) {
	m := newTestManager(t, DefaultLimits())
	enteredA, releaseA := make(chan struct{}, 1), make(chan struct{})
	enteredB, releaseB := make(chan struct{}, 1), make(chan struct{})
	if errs := m.Sync([]Spec{
		loopbackSpec("a", blockingHandler(enteredA, releaseA)),
		loopbackSpec("b", blockingHandler(enteredB, releaseB)),
	}); errs != nil {
		t.Fatal(errs)
	}
	addrA, addrB := m.Addr("a"), m.Addr("b")
	slowA, slowB := startSlowGet("http://"+addrA+"/"), startSlowGet("http://"+addrB+"/")
	<-enteredA
	<-enteredB
	if got := m.InFlight(); got != 2 {
		t.Fatalf("InFlight = %d, want 2", got)
	}

	// Keep a with a new handler, remove b, add c.
	if errs := m.Sync([]Spec{loopbackSpec("a", textHandler("a2")), loopbackSpec("c", textHandler("c"))}); errs != nil {
		t.Fatal(errs)
	}
	if got := m.Bound(); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("Bound = %v", got)
	}
	if m.Addr("a") != addrA {
		t.Fatalf("kept listener moved from %s to %s", addrA, m.Addr("a"))
	}
	mustGet(t, "http://"+addrA+"/", "a2")
	mustGet(t, "http://"+m.Addr("c")+"/", "c")
	if _, err := get("http://" + addrB + "/"); err == nil {
		t.Fatal("removed listener still accepts requests")
	}

	// Both in-flight requests, on the kept and on the removed socket, complete.
	close(releaseA)
	close(releaseB)
	for name, ch := range map[string]<-chan string{"a": slowA, "b": slowB} {
		if got := <-ch; got != "slow" {
			t.Errorf("in-flight request on %s: %q", name, got)
		}
	}
	eventually(t, "no requests in flight", func() bool { return m.InFlight() == 0 })
}

func TestSyncBindConflictReported(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	m := newTestManager(t, DefaultLimits())
	errs := m.Sync([]Spec{
		{Name: "busy", Address: "127.0.0.1", Port: port, Handler: textHandler("busy")},
		loopbackSpec("free", textHandler("free")),
	})
	if len(errs) != 1 || errs["busy"] == nil {
		t.Fatalf("errors = %v, want one for busy", errs)
	}
	if got := m.Bound(); !slices.Equal(got, []string{"free"}) {
		t.Fatalf("Bound = %v", got)
	}
	mustGet(t, "http://"+m.Addr("free")+"/", "free")
}

// freePort returns a free loopback port (see testport for why not ":0").
func freePort(t *testing.T) int { return testport.Free(t) }

// TestSyncPortConflictWithinManager checks that two specs on one port are refused
// even though SO_REUSEPORT would let the kernel bind both.
func TestSyncPortConflictWithinManager(t *testing.T) {
	port := freePort(t)
	m := newTestManager(t, DefaultLimits())
	errs := m.Sync([]Spec{
		{Name: "first", Address: "127.0.0.1", Port: port, Handler: textHandler("first")},
		{Name: "second", Address: "127.0.0.1", Port: port, Handler: textHandler("second")},
	})
	if len(errs) != 1 || errs["second"] == nil {
		t.Fatalf("errors = %v, want one for second", errs)
	}
	for range 5 {
		mustGet(t, "http://127.0.0.1:"+strconv.Itoa(port)+"/", "first")
	}
}

func TestSyncInvalidSpecKeepsSocket(t *testing.T) {
	m := newTestManager(t, DefaultLimits())
	addr := serveOne(t, m, loopbackSpec("a", textHandler("old")))
	errs := m.Sync([]Spec{{Name: "a", Address: "127.0.0.1"}, loopbackSpec("dup", textHandler("x")), loopbackSpec("dup", textHandler("y"))})
	if errs["a"] == nil || errs["dup"] == nil || len(errs) != 2 {
		t.Fatalf("errors = %v", errs)
	}
	if got := m.Bound(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("Bound = %v", got)
	}
	mustGet(t, "http://"+addr+"/", "old")
}

// TestSyncTLSModeChangeRebinds moves one port from cleartext to TLS in one Sync: the
// old socket must release the port before the new one binds it.
func TestSyncTLSModeChangeRebinds(t *testing.T) {
	port := freePort(t)
	cert := newTestCert(t, "a.example.test")
	store, err := NewCertStore([]CertPair{{Name: "a", CertPEM: cert.certPEM, KeyPEM: cert.keyPEM}})
	if err != nil {
		t.Fatal(err)
	}
	m := newTestManager(t, DefaultLimits())
	spec := Spec{Name: "p", Address: "127.0.0.1", Port: port, Handler: textHandler("hi")}
	if errs := m.Sync([]Spec{spec}); errs != nil {
		t.Fatal(errs)
	}
	mustGet(t, "http://127.0.0.1:"+strconv.Itoa(port)+"/", "hi")
	spec.TLS, spec.GetCertificate = true, store.GetCertificate
	if errs := m.Sync([]Spec{spec}); errs != nil {
		t.Fatal(errs)
	}
	client := tlsClient("127.0.0.1:"+strconv.Itoa(port), false, cert)
	resp, err := client.Get("https://a.example.test/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestShutdownWaitsForInFlightRequest(t *testing.T) {
	m := NewManager(DefaultLimits(), nil)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	if errs := m.Sync([]Spec{loopbackSpec("a", blockingHandler(entered, release))}); errs != nil {
		t.Fatal(errs)
	}
	addr := m.Addr("a")
	slow := startSlowGet("http://" + addr + "/")
	<-entered

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		done <- m.Shutdown(ctx)
	}()
	eventually(t, "socket to stop accepting", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while a request was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if got := <-slow; got != "slow" {
		t.Fatalf("in-flight request: %q", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if errs := m.Sync([]Spec{loopbackSpec("b", textHandler("b"))}); errs["b"] == nil {
		t.Fatal("Sync after Shutdown succeeded")
	}
}

// TestShutdownClosesHijackedAtDeadline checks that an upgraded connection that
// outlives the shutdown deadline is closed.
func TestShutdownClosesHijackedAtDeadline(t *testing.T) {
	m := NewManager(DefaultLimits(), nil)
	hijacked := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		close(hijacked)
		_, _ = io.Copy(io.Discard, conn) // until the client or the shutdown closes it
	})
	addr := serveOne(t, m, loopbackSpec("ws", h))
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
	<-hijacked

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := m.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Fatalf("Shutdown returned after %v, before its deadline", waited)
	}
	_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := conn.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("hijacked connection still open after Shutdown: %v", err)
	}
	eventually(t, "handler to return", func() bool { return m.InFlight() == 0 })
}

func TestDefaultLimitsDocumentedValues(t *testing.T) {
	l := DefaultLimits()
	if l.WriteTimeout != 0 {
		t.Errorf("WriteTimeout = %v; a whole-response deadline would cut long streams", l.WriteTimeout)
	}
	if l.ReadHeaderTimeout <= 0 || l.IdleTimeout <= 0 || l.MaxHeaderBytes <= 0 || l.MaxConcurrentStreams == 0 {
		t.Errorf("a protective limit is disabled: %+v", l)
	}
	filled := Limits{}.withDefaults()
	if filled.MaxHeaderBytes != l.MaxHeaderBytes || filled.DrainTimeout != l.DrainTimeout || filled.ReadHeaderTimeout != 0 {
		t.Errorf("withDefaults = %+v", filled)
	}
}
