package backend

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// maxConcurrentProbes bounds the probes one pool has in flight.
const maxConcurrentProbes = 16

// healthChecker probes a pool's endpoints until stopped.
type healthChecker struct {
	settings config.HealthCheck
	// scheme is http, or https for a backend spoken to over TLS.
	scheme string
	client *http.Client
	stop   chan struct{}
	done   chan struct{}
}

// syncHealth starts, restarts or stops the pool's health checker to match hc. Held
// under the Manager's update lock.
func (p *Pool) syncHealth(hc *config.HealthCheck, client *http.Client, scheme string) {
	if p.checker != nil && hc != nil && p.checker.settings == *hc && p.checker.scheme == scheme &&
		p.checker.client.Transport == client.Transport {
		return
	}
	p.stopHealth()
	if hc == nil {
		// Without checks no endpoint is held out for a past verdict.
		for _, es := range p.state.Load().all {
			es.Endpoint.health.unhealthy.Store(false)
		}
		return
	}
	c := &healthChecker{settings: *hc, scheme: scheme, client: client, stop: make(chan struct{}), done: make(chan struct{})}
	p.checker = c
	go c.run(p)
}

// stopHealth stops the pool's checker and waits for it.
func (p *Pool) stopHealth() {
	if p.checker == nil {
		return
	}
	close(p.checker.stop)
	<-p.checker.done
	p.checker = nil
}

func (c *healthChecker) run(p *Pool) {
	defer close(c.done)
	ticker := time.NewTicker(c.settings.Interval.D())
	defer ticker.Stop()
	for {
		c.probeAll(p)
		select {
		case <-c.stop:
			return
		case <-ticker.C:
		}
	}
}

// probeAll probes every endpoint of the pool's current configuration once.
func (c *healthChecker) probeAll(p *Pool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	slots := make(chan struct{}, maxConcurrentProbes)
	var wg sync.WaitGroup
	for _, es := range p.state.Load().all {
		slots <- struct{}{}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(ep *Endpoint) {
			defer func() { <-slots; wg.Done() }()
			passed := c.probe(ctx, ep.Address)
			// A probe cut short by the checker stopping says nothing about the
			// endpoint.
			if ctx.Err() == nil {
				c.record(ep, passed)
			}
		}(es.Endpoint)
	}
	wg.Wait()
}

// probe sends one GET and reports whether it passed.
func (c *healthChecker) probe(ctx context.Context, address string) bool {
	ctx, cancel := context.WithTimeout(ctx, c.settings.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.scheme+"://"+address+c.settings.Path, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "switchyard-health-check")
	res, err := c.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	return res.StatusCode >= 200 && res.StatusCode < 300
}

// record applies one probe result to the endpoint's streaks and verdict.
func (c *healthChecker) record(ep *Endpoint, passed bool) {
	h := &ep.health
	if passed {
		h.fails.Store(0)
		if int(h.passes.Add(1)) >= c.settings.HealthyThreshold {
			h.unhealthy.Store(false)
		}
		return
	}
	h.passes.Store(0)
	if int(h.fails.Add(1)) >= c.settings.UnhealthyThreshold {
		h.unhealthy.Store(true)
	}
}
