package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// loadSpec is one bounded run of the load generator: it stops after Requests
// requests or MaxDuration, whichever comes first.
type loadSpec struct {
	// Targets are loopback URLs; request i goes to Targets[i % len(Targets)].
	Targets []string
	// Requests caps the number of requests sent.
	Requests int
	// Rate is the number of requests started per second; zero sends as fast as
	// Concurrency allows.
	Rate float64
	// Concurrency is the number of requests in flight at most.
	Concurrency int
	// MaxDuration caps the run's length.
	MaxDuration time.Duration
}

// result is what one request came to.
type result struct {
	// Sent is when the request started.
	Sent time.Time
	// Latency is the time to the end of the response body.
	Latency time.Duration
	// Status is the response status, or zero when no response arrived.
	Status int
	// Backend is the benchmark backend that answered, if one said so.
	Backend string
}

// requestTimeout bounds each request, so a run cannot hang on one.
const requestTimeout = 5 * time.Second

// runLoad sends the requests of spec and returns their results in the order they
// were started. It refuses targets that are not on a loopback address.
func runLoad(ctx context.Context, spec loadSpec) ([]result, error) {
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	transport := &http.Transport{
		MaxIdleConnsPerHost: spec.Concurrency,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	ctx, cancel := context.WithTimeout(ctx, spec.MaxDuration)
	defer cancel()
	results := make([]result, spec.Requests)
	next := make(chan int)
	var wg sync.WaitGroup
	for range spec.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = doRequest(ctx, client, spec.Targets[i%len(spec.Targets)])
			}
		}()
	}
	sent := dispatch(ctx, spec, next)
	close(next)
	wg.Wait()
	return results[:sent], nil
}

// dispatch hands out request indexes, paced to spec.Rate when it is set, until the
// count or the context runs out. It returns how many it handed out.
func dispatch(ctx context.Context, spec loadSpec, next chan<- int) int {
	start := time.Now()
	for i := range spec.Requests {
		if spec.Rate > 0 {
			due := start.Add(time.Duration(float64(i) / spec.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return i
				}
			}
		}
		select {
		case next <- i:
		case <-ctx.Done():
			return i
		}
	}
	return spec.Requests
}

func doRequest(ctx context.Context, client *http.Client, target string) result {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return result{Sent: start}
	}
	resp, err := client.Do(req)
	if err != nil {
		return result{Sent: start, Latency: time.Since(start)}
	}
	_, copyErr := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	r := result{Sent: start, Latency: time.Since(start), Status: resp.StatusCode, Backend: resp.Header.Get(backendHeader)}
	if copyErr != nil {
		r.Status = 0
	}
	return r
}

func checkSpec(spec loadSpec) error {
	if spec.Requests <= 0 || spec.Concurrency <= 0 || spec.MaxDuration <= 0 || len(spec.Targets) == 0 {
		return fmt.Errorf("load: requests, concurrency, max duration and targets are all required: %+v", spec)
	}
	for _, t := range spec.Targets {
		u, err := url.Parse(t)
		if err != nil {
			return fmt.Errorf("load: target %q: %w", t, err)
		}
		ip := net.ParseIP(u.Hostname())
		if ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("load: target %q is not a loopback address", t)
		}
	}
	return nil
}

// statusCounts counts results by status class: "2xx", "4xx", "5xx", and "error"
// for requests without a response. 429s are also counted on their own.
type statusCounts struct {
	total, ok, tooMany, client4xx, server5xx, failed int
}

func countStatuses(results []result) statusCounts {
	var c statusCounts
	for _, r := range results {
		c.total++
		switch {
		case r.Status == 0:
			c.failed++
		case r.Status >= 200 && r.Status < 300:
			c.ok++
		case r.Status == http.StatusTooManyRequests:
			c.tooMany++
		case r.Status >= 400 && r.Status < 500:
			c.client4xx++
		case r.Status >= 500:
			c.server5xx++
		}
	}
	return c
}

// successRate is the share of results with a 2xx answer.
func (c statusCounts) successRate() float64 {
	if c.total == 0 {
		return 0
	}
	return float64(c.ok) / float64(c.total)
}

// percentile returns the q-th quantile (0..1) of the latencies of the results that
// got an answer, by nearest rank.
func percentile(results []result, q float64) time.Duration {
	lat := make([]time.Duration, 0, len(results))
	for _, r := range results {
		if r.Status != 0 {
			lat = append(lat, r.Latency)
		}
	}
	return quantile(lat, q)
}

// quantile returns the q-th quantile (0..1) of values by nearest rank, zero when
// there are none.
func quantile[T int64 | float64 | time.Duration](values []T, q float64) T {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

// span is the time from the first request's start to the last one's end.
func span(results []result) time.Duration {
	if len(results) == 0 {
		return 0
	}
	first, last := results[0].Sent, results[0].Sent
	for _, r := range results {
		if r.Sent.Before(first) {
			first = r.Sent
		}
		if end := r.Sent.Add(r.Latency); end.After(last) {
			last = end
		}
	}
	return last.Sub(first)
}
