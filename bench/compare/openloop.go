package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// openLoop describes a run of the open-loop generator: requests are due at a fixed
// rate whatever the answers do, and each one's latency counts from when the
// schedule released it, not from when a connection was free to send it, so that a
// stalled proxy shows its stall in the figures instead of slowing the load down
// (coordinated omission).
type openLoop struct {
	// Addr is host:port to connect to.
	Addr string
	// Host is the Host header ("" sends Addr).
	Host string
	// Path is the request path.
	Path string
	// Rate is requests per second.
	Rate int
	// Duration is how long requests are sent; the run waits a little longer for
	// the last answers.
	Duration time.Duration
	// Conns is how many keep-alive connections carry the requests; a request due
	// while all are busy waits for the first free one, and that wait counts in its
	// latency.
	Conns int
}

// openLoopTimeout bounds each request, so that a run ends even against a peer
// that stopped answering.
const openLoopTimeout = 5 * time.Second

// run sends the requests and returns the outcome: Requests answered 2xx, Errors
// for the rest, and the latency percentiles of the answered requests. Sleeping has
// up to a millisecond of granularity, so requests are released in small bursts of
// those that fell due meanwhile; each is timed from its release, which keeps the
// generator's own timer lateness out of the figures while a wait for a free
// connection (the proxy's doing) stays in.
func (o openLoop) run(ctx context.Context) (loadResult, error) {
	if o.Rate <= 0 || o.Duration <= 0 || o.Conns <= 0 {
		return loadResult{}, errors.New("open loop: rate, duration and connections must be positive")
	}
	total := int(float64(o.Rate) * o.Duration.Seconds())
	// Release times; buffered for the whole run, so that the schedule never waits
	// for the proxy.
	due := make(chan time.Time, total)
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, total)
		failed    int64
		wg        sync.WaitGroup
	)
	request := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: bench-compare\r\n\r\n", o.Path, cmp.Or(o.Host, o.Addr))
	for range o.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &loopConn{addr: o.Addr, request: []byte(request)}
			defer c.close()
			for at := range due {
				err := c.roundTrip(at.Add(openLoopTimeout))
				mu.Lock()
				if err != nil {
					failed++
				} else {
					latencies = append(latencies, time.Since(at))
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	interval := time.Duration(float64(time.Second) / float64(o.Rate))
	sent := 0
	for ; sent < total && ctx.Err() == nil; sent++ {
		if wait := time.Until(start.Add(time.Duration(sent) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		due <- time.Now()
	}
	close(due)
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	r := loadResult{Requests: int64(len(latencies)), Elapsed: elapsed, Errors: failed + int64(total-sent),
		Latency: map[string]float64{}}
	r.RPS = float64(r.Requests) / elapsed.Seconds()
	for label, q := range map[string]float64{"p50": 0.5, "p90": 0.9, "p99": 0.99, "p99.9": 0.999, "max": 1} {
		r.Latency[label] = millis(percentile(latencies, q))
	}
	return r, ctx.Err()
}

// loopConn is one keep-alive HTTP/1.1 connection of the open-loop generator,
// dialled again after an error.
type loopConn struct {
	addr    string
	request []byte
	conn    net.Conn
	reader  *bufio.Reader
}

// roundTrip sends the request and reads the whole answer; anything but a 2xx with
// its body read in full is an error.
func (c *loopConn) roundTrip(deadline time.Time) error {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, time.Until(deadline))
		if err != nil {
			return err
		}
		c.conn, c.reader = conn, bufio.NewReaderSize(conn, 64<<10)
	}
	_ = c.conn.SetDeadline(deadline)
	err := c.exchange()
	if err != nil {
		c.close()
	}
	return err
}

func (c *loopConn) exchange() error {
	if _, err := c.conn.Write(c.request); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.reader, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if resp.Close {
		c.close()
	}
	return nil
}

func (c *loopConn) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn, c.reader = nil, nil
	}
}
