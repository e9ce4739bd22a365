package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// handOverLoad is a bounded closed loop of clients against one URL: half reuse
// keep-alive connections, half open a new connection per request. It counts the
// answers by body ("a" or "b", the serving Manager) and the failures.
type handOverLoad struct {
	url      string
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	sent     atomic.Int64
	failed   atomic.Int64
	byBody   sync.Map // body -> *atomic.Int64
	errMu    sync.Mutex
	errText  []string
}

const (
	handOverClients    = 8
	handOverMaxPerLoop = 20000
	handOverMaxTime    = 5 * time.Second
)

func startHandOverLoad(url string) *handOverLoad {
	l := &handOverLoad{url: url, stop: make(chan struct{})}
	for i := range handOverClients {
		client := &http.Client{Timeout: testTimeout, Transport: &http.Transport{
			DisableKeepAlives: i%2 == 1, MaxIdleConnsPerHost: 1}}
		l.wg.Go(func() { l.run(client) })
	}
	return l
}

func (l *handOverLoad) run(client *http.Client) {
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(handOverMaxTime)
	for range handOverMaxPerLoop {
		select {
		case <-l.stop:
			return
		default:
		}
		if time.Now().After(deadline) {
			return
		}
		l.sent.Add(1)
		body, err := l.once(client)
		if err != nil {
			l.failed.Add(1)
			l.errMu.Lock()
			if len(l.errText) < 5 {
				l.errText = append(l.errText, err.Error())
			}
			l.errMu.Unlock()
			continue
		}
		n, _ := l.byBody.LoadOrStore(body, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}
}

func (l *handOverLoad) once(client *http.Client) (string, error) {
	resp, err := client.Get(l.url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(body), nil
}

// served returns how many requests the Manager answering body served.
func (l *handOverLoad) served(body string) int64 {
	if n, ok := l.byBody.Load(body); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

func (l *handOverLoad) finish() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

func (l *handOverLoad) errors() []string {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return append([]string(nil), l.errText...)
}

// handOverResult is what one hand-over under load saw.
type handOverResult struct {
	sent, failed      int64
	servedA, servedB  int64
	servedAAfterDrain int64
	servedBAfterDrain int64
	errors            []string
}

// runHandOver serves "a" on a loopback port under load, binds a second Manager
// serving "b" on the same port, stops the first one with stopA while the load goes
// on, and lets the load run until the second has served a while alone.
func runHandOver(t testing.TB, stopA func(a *Manager)) handOverResult {
	t.Helper()
	a := newTestManager(t, Limits{})
	var handledByA atomic.Int64
	countingA := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handledByA.Add(1)
		_, _ = io.WriteString(w, "a")
	})
	addr := serveOne(t, a, Spec{Name: "a", Handler: countingA})
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	load := startHandOverLoad("http://" + addr + "/")
	defer load.finish()
	eventually(t, "the first server to take load", func() bool { return load.served("a") >= 200 })

	b := newTestManager(t, Limits{})
	if errs := b.Sync([]Spec{{Name: "b", Address: "127.0.0.1", Port: port, Handler: textHandler("b")}}); errs != nil {
		t.Fatalf("binding the shared port: %v", errs)
	}
	eventually(t, "the second server to share the load", func() bool { return load.served("b") >= 50 })

	stopA(a)
	// Shutdown returns once A's handlers are done; A's clients may read their last
	// answers a moment later, so what A did afterwards is counted where it serves.
	aAtStop, bAtStop := handledByA.Load(), load.served("b")
	eventually(t, "the second server to serve alone", func() bool { return load.served("b") >= bAtStop+500 })
	load.finish()
	return handOverResult{
		sent: load.sent.Load(), failed: load.failed.Load(),
		servedA: load.served("a"), servedB: load.served("b"),
		servedAAfterDrain: handledByA.Load() - aAtStop, servedBAfterDrain: load.served("b") - bAtStop,
		errors: load.errors(),
	}
}

// shutdownHandingOver stops a Manager the way a process stops on SIGTERM.
func shutdownHandingOver(t testing.TB) func(*Manager) {
	return func(m *Manager) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
}

// closeWithoutHandOver stops a Manager's socket the way Shutdown did before
// hand-overs: the listening socket closes at once, then in-flight requests drain.
func closeWithoutHandOver(t testing.TB) func(*Manager) {
	return func(m *Manager) {
		if errs := m.Sync(nil); errs != nil {
			t.Errorf("Sync: %v", errs)
		}
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		done := make(chan struct{})
		go func() { m.drains.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			t.Error("drain did not finish")
		}
	}
}

// TestHandOverLosesNoRequest shuts a Manager down while a replacement shares its port
// under load: no request may fail, and the replacement serves everything afterwards.
func TestHandOverLosesNoRequest(t *testing.T) {
	r := runHandOver(t, shutdownHandingOver(t))
	t.Logf("%d requests (%d by the first server, %d by the second), %d failed", r.sent, r.servedA, r.servedB, r.failed)
	if r.failed != 0 {
		t.Errorf("%d of %d requests failed during the hand-over; first errors: %q", r.failed, r.sent, r.errors)
	}
	if r.servedAAfterDrain != 0 {
		t.Errorf("the first server answered %d requests after its Shutdown returned", r.servedAAfterDrain)
	}
	if r.servedBAfterDrain < 500 {
		t.Errorf("the second server answered only %d requests after the hand-over", r.servedBAfterDrain)
	}
}

// TestHandOverAloneReturnsPromptly shuts down a Manager whose port nobody shares: the
// hand-over finds no other socket and must not hold the shutdown up.
func TestHandOverAloneReturnsPromptly(t *testing.T) {
	m := newTestManager(t, Limits{})
	addr := serveOne(t, m, Spec{Handler: textHandler("alone")})
	mustGet(t, "http://"+addr+"/", "alone")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	start := time.Now()
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took >= handOverSettle+probeWait {
		t.Errorf("Shutdown of a socket alone on its port took %v; the hand-over should have seen it is alone", took)
	}
	if _, err := get("http://" + addr + "/"); err == nil {
		t.Error("the port still answers after Shutdown")
	}
}

// TestHandOverSteersToTheOtherSocket checks the steering itself: after HandOver, every
// new connection to the shared port reaches the other listener, whichever index the
// handing-over listener has in the group.
func TestHandOverSteersToTheOtherSocket(t *testing.T) {
	for _, handingOver := range []string{"first", "second"} {
		t.Run(handingOver, func(t *testing.T) {
			first, err := Listen(context.Background(), "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			second, err := Listen(context.Background(), first.Addr().String())
			if err != nil {
				t.Fatalf("binding the shared port: %v", err)
			}
			defer second.Close()
			leaving, staying := first, second
			if handingOver == "second" {
				leaving, staying = second, first
			}
			leavingCount, stopLeaving := countAccepts(leaving)
			defer stopLeaving()
			stayingCount, stopStaying := countAccepts(staying)
			defer stopStaying()
			if err := HandOver(context.Background(), leaving); err != nil {
				t.Fatalf("HandOver: %v", err)
			}
			before := leavingCount.Load()
			for range 50 {
				c, err := net.DialTimeout("tcp", first.Addr().String(), testTimeout)
				if err != nil {
					t.Fatal(err)
				}
				_ = c.Close()
			}
			eventually(t, "the connections to be accepted", func() bool { return stayingCount.Load() >= 50 })
			if got := leavingCount.Load() - before; got != 0 {
				t.Errorf("%d of 50 new connections reached the listener that handed over", got)
			}
		})
	}
}

// countAccepts accepts and closes connections on ln in the background, counting them.
func countAccepts(ln net.Listener) (*atomic.Int64, func()) {
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			_ = c.Close()
		}
	}()
	return &n, func() { _ = ln.Close(); <-done }
}

// BenchmarkHandOver measures failed requests per hand-over under load, with the
// steering hand-over of Shutdown and with the listener closed at once as before. It
// reports counts, not timings: run it with -benchtime=10x or so.
func BenchmarkHandOver(b *testing.B) {
	for _, variant := range []struct {
		name string
		stop func(testing.TB) func(*Manager)
	}{{"steered", shutdownHandingOver}, {"closed-at-once", closeWithoutHandOver}} {
		b.Run(variant.name, func(b *testing.B) {
			var sent, failed int64
			for range b.N {
				r := runHandOver(b, variant.stop(b))
				sent += r.sent
				failed += r.failed
			}
			b.ReportMetric(float64(failed)/float64(b.N), "failed/handover")
			b.ReportMetric(float64(sent)/float64(b.N), "requests/handover")
		})
	}
}

// TestShutdownAnswersTheFirstRequestOfANewConnection sends the first request of a
// connection accepted before Shutdown only once Shutdown runs: net/http would drop it
// unanswered if its own Shutdown had begun, and a client does not retry a request
// sent on a new connection.
func TestShutdownAnswersTheFirstRequestOfANewConnection(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "cleartext", true: "TLS"}[useTLS], func(t *testing.T) {
			m := newTestManager(t, Limits{})
			spec := Spec{Name: "127.0.0.1:0", Handler: textHandler("answered")}
			var cert testCert
			if useTLS {
				cert = newTestCert(t, "a.example.test")
				store, err := NewCertStore([]CertPair{{Name: "a", CertPEM: cert.certPEM, KeyPEM: cert.keyPEM}})
				if err != nil {
					t.Fatal(err)
				}
				spec.TLS, spec.GetCertificate = true, store.GetCertificate
			}
			addr := serveOne(t, m, spec)
			late, err := net.DialTimeout("tcp", addr, testTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer late.Close()
			if useTLS {
				tc := tls.Client(late, clientTLS("a.example.test", []string{"http/1.1"}, cert))
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				late = tc
			}
			eventually(t, "the connection to be accepted", func() bool { return m.sockets[spec.Name].ln.conns.len() == 1 })

			done := shutdownInBackground(m)
			res := exchangeOn(t, late, "GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n", 1)
			if len(res.statuses) != 1 || res.statuses[0] != http.StatusOK || res.bodies[0] != "answered" {
				t.Fatalf("the first request of a connection accepted before Shutdown: %+v", res)
			}
			if err := <-done; err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
		})
	}
}

// TestShutdownWaitsForAHandshakeInProgress holds back the client's last handshake
// flight until Shutdown has begun. The server's own flight answers no request, so
// the hand-over waits for the handshake to complete and for the request that follows
// it, which is then answered.
func TestShutdownWaitsForAHandshakeInProgress(t *testing.T) {
	m := newTestManager(t, Limits{})
	cert := newTestCert(t, "a.example.test")
	store, err := NewCertStore([]CertPair{{Name: "a", CertPEM: cert.certPEM, KeyPEM: cert.keyPEM}})
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Name: "127.0.0.1:0", Handler: textHandler("answered"), TLS: true, GetCertificate: store.GetCertificate}
	addr := serveOne(t, m, spec)
	raw, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	held := &heldAfterFirstWrite{Conn: raw, release: make(chan struct{})}
	tc := tls.Client(held, clientTLS("a.example.test", []string{"http/1.1"}, cert))
	handshake := make(chan error, 1)
	go func() { handshake <- tc.Handshake() }()
	conns := m.sockets[spec.Name].ln.conns
	eventually(t, "the server's handshake flight", func() bool {
		conns.mu.Lock()
		defer conns.mu.Unlock()
		for c := range conns.conns {
			if c.answered.Load() {
				return true
			}
		}
		return false
	})

	done := shutdownInBackground(m)
	close(held.release)
	if err := <-handshake; err != nil {
		t.Fatalf("the handshake in progress when Shutdown began: %v", err)
	}
	res := exchangeOn(t, tc, "GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n", 1)
	if len(res.statuses) != 1 || res.statuses[0] != http.StatusOK || res.bodies[0] != "answered" {
		t.Fatalf("the first request after a handshake in progress when Shutdown began: %+v", res)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// shutdownInBackground starts m's Shutdown and returns once its hand-over has had
// time to begin; the channel gets Shutdown's result.
func shutdownInBackground(m *Manager) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		done <- m.Shutdown(ctx)
	}()
	time.Sleep(handOverSettle + 50*time.Millisecond)
	return done
}

// heldAfterFirstWrite passes its first write through and holds every later one until
// release is closed.
type heldAfterFirstWrite struct {
	net.Conn
	release chan struct{}
	writes  atomic.Int32
}

func (c *heldAfterFirstWrite) Write(p []byte) (int, error) {
	if c.writes.Add(1) > 1 {
		<-c.release
	}
	return c.Conn.Write(p)
}

// TestWaitAnsweredIsBounded keeps a connection that never sends anything open: the
// wait for it to be answered ends anyway.
func TestWaitAnsweredIsBounded(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	set := newConnSet()
	silent := set.track(server)
	defer silent.Close()
	done := make(chan struct{})
	go func() { set.waitAnswered(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("waitAnswered waits for a silent connection without end")
	}
	// A connection that has answered is not waited for.
	go func() { _, _ = io.Copy(io.Discard, client) }()
	if _, err := silent.Write([]byte("HTTP/1.1 200 OK\r\n")); err != nil {
		t.Fatal(err)
	}
	if !set.allAnswered(time.Now(), map[*trackedConn]time.Time{}) {
		t.Fatal("a connection that wrote is still waited for")
	}
}
