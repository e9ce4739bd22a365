package dataplane

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/observe"
)

// Memory figures. These benchmarks report what the data plane holds rather than how
// fast it is: run them with -benchtime 1x (each iteration is a whole measurement).

// memoryInUse is the live heap and the goroutine stacks in use, after a collection.
func memoryInUse() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.StackInuse
}

// grewBy is after-before, or zero when memory shrank.
func grewBy(before, after uint64) uint64 {
	if after > before {
		return after - before
	}
	return 0
}

// BenchmarkRouteHeap reports the live heap the compiled routes of a snapshot hold
// (route tables, rule handlers, filter chains and, observed, their metric series),
// per 1,000 routes of benchSnapshotOf: an engine serving the snapshot's backends
// without routes, then with 1,000 or 10,000 routes, each of one to three rules.
// The snapshot itself, which the engine keeps, is not counted.
func BenchmarkRouteHeap(b *testing.B) {
	for _, routes := range []int{1000, 10000} {
		for _, observed := range []bool{false, true} {
			b.Run(fmt.Sprintf("routes=%d/observed=%v", routes, observed), func(b *testing.B) {
				withRoutes := benchSnapshotOf("routes", "routes", routes)
				backendsOnly := *withRoutes
				backendsOnly.Version, backendsOnly.RoutesVersion, backendsOnly.Listeners = "backends", "backends", nil
				var total uint64
				runs := 0
				for b.Loop() {
					total += routeHeap(b, &backendsOnly, withRoutes, observed)
					runs++
				}
				b.ReportMetric(float64(total)/float64(runs)*1000/float64(routes), "heap-B/1k-routes")
			})
		}
	}
}

// routeHeap applies backendsOnly and then withRoutes to a new engine and returns
// how much the live heap grew with the second.
func routeHeap(b *testing.B, backendsOnly, withRoutes *config.Snapshot, observed bool) uint64 {
	opts := Options{Logger: slog.New(slog.DiscardHandler)}
	if observed {
		obs, err := observe.New(observe.Options{Registerer: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		opts.Observer = obs
	}
	e := New(opts)
	defer shutdownEngine(e)
	if err := e.Apply(backendsOnly); err != nil {
		b.Fatal(err)
	}
	before, _ := memoryInUse()
	if err := e.Apply(withRoutes); err != nil {
		b.Fatal(err)
	}
	after, _ := memoryInUse()
	runtime.KeepAlive(e)
	return grewBy(before, after)
}

func shutdownEngine(e *Engine) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.Shutdown(ctx)
}

// idleConnections is how many client connections BenchmarkIdleConnectionMemory holds.
const idleConnections = 1000

// BenchmarkIdleConnectionMemory reports what 1,000 idle keep-alive client
// connections cost the gateway: each connects to an engine's loopback listener,
// sends one request (answered by a redirect filter, so no backend is involved) and
// then stays open. The figures are the growth of the live heap and of the goroutine
// stacks, per 1,000 connections, less half of what as many raw connections to a
// listener that only holds them cost, which is the client's side of the loopback
// connections (this process holds both ends).
func BenchmarkIdleConnectionMemory(b *testing.B) {
	idleConnectionMemory(b, answerOf)
}

// idleConnectionMemory reports the heap and stacks that idleConnections client
// connections hold in the gateway after one exchange each (made by exchange on a
// route that redirects), less what the loopback sockets themselves cost.
func idleConnectionMemory(b *testing.B, exchange func(*testing.B, net.Conn)) {
	snap := snapshotFor("idle", "127.0.0.1:1")
	rule := &snap.Listeners[0].VirtualHosts[0].Routes[0].Rules[0]
	rule.Filters = []config.Filter{{Type: config.FilterRequestRedirect, RequestRedirect: &config.Redirect{Hostname: "elsewhere.example.com"}}}
	e := New(Options{Logger: slog.New(slog.DiscardHandler)})
	defer shutdownEngine(e)
	if err := e.Apply(snap); err != nil {
		b.Fatal(err)
	}
	gatewayAddr := e.Addr(snap.Listeners[0].Name)
	var heap, stack float64
	runs := 0
	for b.Loop() {
		rawHeap, rawStack := rawConnectionMemory(b)
		gwHeap, gwStack := heldConnectionMemory(b, gatewayAddr, exchange)
		heap += float64(gwHeap) - float64(rawHeap)/2
		stack += float64(gwStack) - float64(rawStack)/2
		runs++
	}
	per := 1000 / float64(idleConnections*runs)
	b.ReportMetric(heap*per, "heap-B/1k-conns")
	b.ReportMetric(stack*per, "stack-B/1k-conns")
}

// rawConnectionMemory returns the memory that idleConnections loopback connections
// to a listener that accepts and holds them cost, both ends counted.
func rawConnectionMemory(b *testing.B) (heap, stack uint64) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, idleConnections)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		for range len(accepted) {
			(<-accepted).Close()
		}
	}()
	return heldConnectionMemory(b, l.Addr().String(), nil)
}

// heldConnectionMemory opens idleConnections connections to addr, making one
// exchange on each with exchange unless it is nil, and returns how much the live
// heap and the goroutine stacks grew while they are open. It closes them before
// returning.
func heldConnectionMemory(b *testing.B, addr string, exchange func(*testing.B, net.Conn)) (heap, stack uint64) {
	heapBefore, stackBefore := memoryInUse()
	conns := make([]net.Conn, 0, idleConnections)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range idleConnections {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		if exchange != nil {
			exchange(b, c)
		}
	}
	heapAfter, stackAfter := memoryInUse()
	runtime.KeepAlive(conns)
	return grewBy(heapBefore, heapAfter), grewBy(stackBefore, stackAfter)
}

// answerOf sends a keep-alive GET on c and reads the answer.
func answerOf(b *testing.B, c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n"); err != nil {
		b.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		b.Fatalf("status %d, want 302", res.StatusCode)
	}
	_ = c.SetDeadline(time.Time{})
}
