//go:build unix

package h2

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"
)

// serveEnv names the server a re-executed test binary runs instead of the
// tests: "own" or "nethttp". The child prints its address, then answers each
// "cpu" line on stdin with the CPU time it has used, and exits at EOF.
const serveEnv = "H2_BENCH_SERVE"

func TestMain(m *testing.M) {
	if kind := os.Getenv(serveEnv); kind != "" {
		os.Exit(benchServerChild(kind))
	}
	os.Exit(m.Run())
}

// benchServerChild runs one server on loopback for a benchmark in the
// parent process, so that the server's CPU time can be measured apart from
// the client's.
func benchServerChild(kind string) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	switch kind {
	case "own", "own-readidle":
		srv := New(Config{Handler: tinyHandler})
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if kind == "own-readidle" && readIdleConn != nil {
					c = readIdleConn(c)
				}
				go srv.ServeConn(c)
			}
		}()
	case "nethttp":
		var protos http.Protocols
		protos.SetUnencryptedHTTP2(true)
		go (&http.Server{Handler: tinyHandler, Protocols: &protos}).Serve(ln)
	default:
		return 2
	}
	// H2_BENCH_CPUPROFILE names a file for the child's CPU profile, for
	// looking into where the server's time goes.
	if path := os.Getenv("H2_BENCH_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	fmt.Println(ln.Addr().String())
	in := bufio.NewScanner(os.Stdin)
	for i := 0; i < 1000 && in.Scan(); i++ {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Println(ru.Utime.Nano()+ru.Stime.Nano(), ms.Mallocs)
	}
	return 0
}

// readIdleConn, where the platform has it, wraps a connection so that it can
// wait without a buffer, as package server's connections can.
var readIdleConn func(net.Conn) net.Conn

// BenchmarkServeH2ServerCPU is BenchmarkServeH2 with each server in a child
// process, reporting the server's own CPU time (server-ns/op) and heap
// allocations (server-allocs/op) per request, which the in-process benchmark
// cannot separate from the client's. "own-readidle" serves connections that
// can wait without their buffers (see readIdleConn).
func BenchmarkServeH2ServerCPU(b *testing.B) {
	kinds := []string{"own", "nethttp"}
	if readIdleConn != nil {
		kinds = append(kinds, "own-readidle")
	}
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), serveEnv+"="+kind)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				b.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				b.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			defer cmd.Wait()
			defer stdin.Close()
			out := bufio.NewScanner(stdout)
			if !out.Scan() {
				b.Fatal("child server printed no address")
			}
			addr := out.Text()
			// sample returns the child's CPU time and heap allocation count.
			sample := func() (time.Duration, uint64) {
				fmt.Fprintln(stdin, "cpu")
				if !out.Scan() {
					b.Fatal("child server did not report its CPU time")
				}
				var cpu int64
				var mallocs uint64
				if _, err := fmt.Sscan(out.Text(), &cpu, &mallocs); err != nil {
					b.Fatal(err)
				}
				return time.Duration(cpu), mallocs
			}
			var cpu0 time.Duration
			var mallocs0 uint64
			benchGetsHook(b, addr, func() { cpu0, mallocs0 = sample() }, func() {
				cpu1, mallocs1 := sample()
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "server-ns/op")
				b.ReportMetric(float64(mallocs1-mallocs0)/float64(b.N), "server-allocs/op")
			})
		})
	}
}
