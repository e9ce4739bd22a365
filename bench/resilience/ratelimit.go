package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
	"github.com/switchyard-dev/switchyard/gateway/ratelimit"
)

// Scenario 3's limit and load: three replicas share 100 requests per second without
// burst, and clients send six times that for five seconds.
const (
	accuracyReplicas = 3
	accuracyRequests = 100
	accuracyBurst    = 0
	accuracyRate     = 600
	accuracyDuration = 5 * time.Second
)

// runGlobalAccuracy is scenario 3: three gateways sharing one redis-server enforce
// one Global limit; the requests they admit are compared with what the token
// bucket allows over the same time.
func runGlobalAccuracy(ctx context.Context, e *env, r *report) error {
	const scenario = "3 global limit, 3 replicas"
	probe, err := e.newBackend("probe", modeOK)
	if err != nil {
		return err
	}
	upstream, err := e.newBackend("upstream", modeOK)
	if err != nil {
		return err
	}
	redis, err := e.startRedis()
	if err != nil {
		return err
	}
	policy := trafficPolicy("limit", "main", v1alpha1.TrafficPolicySpec{
		RateLimit: globalRateLimit(accuracyRequests, "1s", accuracyBurst, "LocalFallback")})
	var targets []string
	for i := range accuracyReplicas {
		port, err := freePort()
		if err != nil {
			return err
		}
		m := baseManifests(port, probe, upstream)
		m.add(policy)
		gw, err := e.startSwitchyard(ctx, fmt.Sprintf("s3-%d", i), port, m, redis.url())
		if err != nil {
			return err
		}
		targets = append(targets, gw.gatewayURL+"/")
	}
	results, err := runLoad(ctx, loadSpec{Targets: targets, Requests: int(accuracyRate * accuracyDuration.Seconds()),
		Rate: accuracyRate, Concurrency: 32, MaxDuration: accuracyDuration + 5*time.Second})
	if err != nil {
		return err
	}
	c := countStatuses(results)
	limit := ratelimit.Limit{Requests: accuracyRequests, Per: time.Second, Burst: accuracyBurst}
	length := span(results)
	allowed := bucketAllows(limit, length)
	slack := 2 * accuracyReplicas * leaseSize(limit)
	r.add(scenario, "admitted / allowed", fmt.Sprintf("%d / %d = %.3f", c.ok, allowed, share(int64(c.ok), allowed)),
		fmt.Sprintf("%d req/s over %d replicas for %s (%d sent, %d answered 429); allowed = capacity %d + %d/s x %s; documented bound allowed + %d leased tokens",
			accuracyRate, accuracyReplicas, seconds(length), c.total, c.tooMany, limit.Capacity(), accuracyRequests, seconds(length), slack))
	r.check(c.server5xx == 0 && c.failed == 0, scenario, "%d 5xx and %d requests without an answer", c.server5xx, c.failed)
	r.check(c.tooMany > 0, scenario, "no request was refused at %d req/s against a limit of %d/s", accuracyRate, accuracyRequests)
	r.check(int64(c.ok) <= allowed+slack, scenario, "admitted %d, more than the bucket's %d plus %d leased", c.ok, allowed, slack)
	r.check(int64(c.ok) >= allowed/2, scenario, "admitted %d, under half of the %d allowed", c.ok, allowed)
	return nil
}

// bucketAllows is the most requests a token bucket of limit admits over length:
// it starts full (capacity tokens) and refills Requests per Per.
func bucketAllows(limit ratelimit.Limit, length time.Duration) int64 {
	return limit.Capacity() + int64(math.Floor(limit.Rate()*length.Seconds()))
}

// leaseSize is the most tokens a replica leases from Redis at once for limit, as the
// Global limiter sizes its leases.
func leaseSize(limit ratelimit.Limit) int64 {
	g := ratelimit.NewGlobal(ratelimit.GlobalOptions{Limit: limit})
	defer g.Close()
	return g.MaxBatch()
}

// Scenario 4's rounds: alternating through the limited and the plain route.
const (
	latencyRounds      = 7
	latencyRequests    = 4000
	latencyConcurrency = 4
)

// runGlobalLatency is scenario 4: the latency a Global limit (high enough to admit
// everything) adds, measured in alternating rounds through a limited and an
// unlimited route of the same gateway to the same backend.
func runGlobalLatency(ctx context.Context, e *env, r *report) error {
	const scenario = "4 global limiter latency"
	probe, err := e.newBackend("probe", modeOK)
	if err != nil {
		return err
	}
	upstream, err := e.newBackend("upstream", modeOK)
	if err != nil {
		return err
	}
	redis, err := e.startRedis()
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	m := baseManifests(port, probe, upstream)
	m.add(routeObject("limited", "/limited", "main"))
	m.add(trafficPolicy("limit", "limited", v1alpha1.TrafficPolicySpec{
		RateLimit: globalRateLimit(1_000_000, "1s", 0, "LocalFallback")}))
	gw, err := e.startSwitchyard(ctx, "s4", port, m, redis.url())
	if err != nil {
		return err
	}
	var p50 [2][]time.Duration
	var p99 [2][]time.Duration
	paths := [2]string{"/limited", "/plain"}
	// Round 0 warms both routes up (connections, the limiter's first lease) and is
	// not counted.
	for round := range latencyRounds + 1 {
		for i, path := range paths {
			results, err := runLoad(ctx, loadSpec{Targets: []string{gw.gatewayURL + path}, Requests: latencyRequests,
				Concurrency: latencyConcurrency, MaxDuration: 20 * time.Second})
			if err != nil {
				return err
			}
			c := countStatuses(results)
			r.check(c.ok == latencyRequests, scenario, "round %d %s: %d of %d requests answered 2xx (%d 429)",
				round, path, c.ok, latencyRequests, c.tooMany)
			if round > 0 {
				p50[i] = append(p50[i], percentile(results, 0.50))
				p99[i] = append(p99[i], percentile(results, 0.99))
			}
		}
	}
	limited50, plain50 := quantile(p50[0], 0.5), quantile(p50[1], 0.5)
	limited99, plain99 := quantile(p99[0], 0.5), quantile(p99[1], 0.5)
	note := fmt.Sprintf("%d alternating rounds of %d requests, %d in flight; medians of the rounds", latencyRounds, latencyRequests, latencyConcurrency)
	r.add(scenario, "p50 with / without limiter", fmt.Sprintf("%s / %s", ms(limited50), ms(plain50)),
		fmt.Sprintf("ratio %.3f, difference %s; rounds %s / %s; %s", ratio(limited50, plain50), ms(limited50-plain50),
			spread(p50[0]), spread(p50[1]), note))
	r.add(scenario, "p99 with / without limiter", fmt.Sprintf("%s / %s", ms(limited99), ms(plain99)),
		fmt.Sprintf("ratio %.3f, difference %s; rounds %s / %s", ratio(limited99, plain99), ms(limited99-plain99),
			spread(p99[0]), spread(p99[1])))
	return nil
}

// spread is the range of the rounds' values, to show how noisy a median is.
func spread(values []time.Duration) string {
	return fmt.Sprintf("%.3f-%.3f ms", float64(slices.Min(values))/1e6, float64(slices.Max(values))/1e6)
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Scenario 5's plan: load well over the limit; Redis is killed after outageAt and
// started again (empty, on the same port) outageFor later.
const (
	crashLimit    = 100
	crashRate     = 300
	crashDuration = 10 * time.Second
	outageAt      = 3 * time.Second
	outageFor     = 3 * time.Second
)

// runRedisCrash is scenario 5: a Global limit with failureMode LocalFallback while
// Redis is killed and restarted; no request may fail, and the limit must hold in
// every phase.
func runRedisCrash(ctx context.Context, e *env, r *report) error {
	const scenario = "5 Redis killed mid-run"
	probe, err := e.newBackend("probe", modeOK)
	if err != nil {
		return err
	}
	upstream, err := e.newBackend("upstream", modeOK)
	if err != nil {
		return err
	}
	redis, err := e.startRedis()
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	m := baseManifests(port, probe, upstream)
	m.add(trafficPolicy("limit", "main", v1alpha1.TrafficPolicySpec{
		RateLimit: globalRateLimit(crashLimit, "1s", 0, "LocalFallback")}))
	gw, err := e.startSwitchyard(ctx, "s5", port, m, redis.url())
	if err != nil {
		return err
	}
	limit := ratelimit.Limit{Requests: crashLimit, Per: time.Second}
	var killedAt, restartedAt time.Time
	outage := make(chan error, 1)
	go func() {
		time.Sleep(outageAt)
		killedAt = time.Now()
		redis.kill()
		time.Sleep(outageFor)
		restartedAt = time.Now()
		outage <- redis.start()
	}()
	results, err := runLoad(ctx, loadSpec{Targets: []string{gw.gatewayURL + "/"}, Requests: int(crashRate * crashDuration.Seconds()),
		Rate: crashRate, Concurrency: 16, MaxDuration: crashDuration + 5*time.Second})
	if err != nil {
		return err
	}
	if err := <-outage; err != nil {
		return fmt.Errorf("restarting redis-server: %w", err)
	}
	phases := []struct {
		name     string
		from, to time.Time
	}{
		{"before", time.Time{}, killedAt},
		{"during", killedAt, restartedAt},
		{"after", restartedAt, time.Now().Add(time.Hour)},
	}
	for _, p := range phases {
		var in []result
		for _, res := range results {
			if !res.Sent.Before(p.from) && res.Sent.Before(p.to) {
				in = append(in, res)
			}
		}
		c := countStatuses(in)
		length := span(in)
		// Each phase starts with a full bucket: the first in Redis, then the
		// replica's own while Redis is away, then a new one in the restarted, empty
		// Redis. What one bucket allows over the phase is a reference, not a bound.
		r.add(scenario, "responses "+p.name+" the outage", fmt.Sprintf("2xx %d, 429 %d, 5xx %d, no answer %d", c.ok, c.tooMany, c.server5xx, c.failed),
			fmt.Sprintf("%s at %d req/s against %d/s; one full bucket allows %d over the phase",
				seconds(length), crashRate, crashLimit, bucketAllows(limit, length)))
		r.check(c.server5xx == 0 && c.failed == 0, scenario, "%s: %d 5xx and %d requests without an answer", p.name, c.server5xx, c.failed)
		r.check(c.ok > 0 && c.tooMany > 0, scenario, "%s: %d admitted and %d refused; the limit is not enforced as set", p.name, c.ok, c.tooMany)
	}
	return nil
}
