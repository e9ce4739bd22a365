package main

import (
	"context"
	"fmt"
	"time"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// failingEndpointRequests is the number of requests of each variant of scenario 1.
const failingEndpointRequests = 3000

// runFailingEndpoint is scenario 1: three endpoints, one answering 503 to
// everything, without a policy, with a retry, with outlier detection, and with both.
func runFailingEndpoint(ctx context.Context, e *env, r *report) error {
	const scenario = "1 one of three endpoints 503"
	probe, err := e.newBackend("probe", modeOK)
	if err != nil {
		return err
	}
	var endpoints []*backend
	for i, m := range []mode{modeOK, modeOK, modeFail} {
		b, err := e.newBackend(fmt.Sprintf("ep%d", i), m)
		if err != nil {
			return err
		}
		endpoints = append(endpoints, b)
	}
	failing := endpoints[2]
	outlier := &v1alpha1.OutlierDetectionPolicy{
		ConsecutiveGatewayErrors: ptr(int32(3)), Interval: ptr(gwv1.Duration("1s")),
		BaseEjectionTime: ptr(gwv1.Duration("30s")), MaxEjectionPercent: ptr(int32(50)),
	}
	// A third of the requests fail, more than the default retry budget (20% plus 10
	// per second) lets retries cover, so the retry is measured both with the default
	// budget and with one that allows a retry for every request.
	lifted := &v1alpha1.RetryBudgetPolicy{Percent: ptr(int32(100))}
	variants := []struct {
		name string
		// minRate is the success rate below which the policy clearly does nothing.
		minRate float64
		policy  *v1alpha1.TrafficPolicySpec
	}{
		{"no policy", 0, nil},
		{"retry attempts 2, retryOn gateway-error, default budget", 0.75, &v1alpha1.TrafficPolicySpec{Retry: retryPolicy(2, nil)}},
		{"retry attempts 2, retryOn gateway-error, budget percent 100", 0.9, &v1alpha1.TrafficPolicySpec{Retry: retryPolicy(2, lifted)}},
		{"outlier detection (consecutiveGatewayErrors 3)", 0.9, &v1alpha1.TrafficPolicySpec{OutlierDetection: outlier}},
		{"retry (default budget) + outlier detection", 0.9, &v1alpha1.TrafficPolicySpec{Retry: retryPolicy(2, nil), OutlierDetection: outlier}},
	}
	for i, v := range variants {
		port, err := freePort()
		if err != nil {
			return err
		}
		m := baseManifests(port, probe, endpoints...)
		if v.policy != nil {
			m.add(trafficPolicy("resilience", "main", *v.policy))
		}
		gw, err := e.startSwitchyard(ctx, fmt.Sprintf("s1-%d", i), port, m, "")
		if err != nil {
			return err
		}
		for _, b := range endpoints {
			b.resetCount()
		}
		results, err := runLoad(ctx, loadSpec{Targets: []string{gw.gatewayURL + "/"}, Requests: failingEndpointRequests,
			Concurrency: 8, MaxDuration: 30 * time.Second})
		if err != nil {
			return err
		}
		gw.stop()
		c := countStatuses(results)
		rate := c.successRate()
		var received int64
		for _, b := range endpoints {
			received += b.requests()
		}
		r.add(scenario, "success rate, "+v.name, percent(rate),
			fmt.Sprintf("%d/%d 2xx, %d 5xx, %d without answer; failing endpoint got %d of %d backend requests",
				c.ok, c.total, c.server5xx, c.failed, failing.requests(), received))
		r.check(c.total == failingEndpointRequests, scenario, "%s: only %d of %d requests were sent", v.name, c.total, failingEndpointRequests)
		r.check(failing.requests() > 0, scenario, "%s: the failing endpoint received no request; it is not in the pool", v.name)
		// A policy that does anything at all lifts the success rate well above the
		// two thirds that balancing gives without one.
		r.check(rate >= v.minRate, scenario, "%s: success rate %s; the policy has no effect", v.name, percent(rate))
	}
	return nil
}

// Scenario 2's load: a rate at which the budget's fixed allowance is small next to
// its percentage, for a time inside one budget window.
const (
	budgetRate        = 1000
	budgetDuration    = 4 * time.Second
	budgetPercent     = 20
	budgetMinPerSec   = 10
	budgetWindow      = 10 * time.Second
	budgetConcurrency = 64
)

// runRetryBudget is scenario 2: every request to a fully failing backend is retried
// (attempts 2) under a budget of 20% plus 10 retries per second; the backend's
// requests over the clients' requests show how far retries amplify the load.
func runRetryBudget(ctx context.Context, e *env, r *report) error {
	const scenario = "2 retry budget, backend down"
	probe, err := e.newBackend("probe", modeOK)
	if err != nil {
		return err
	}
	down, err := e.newBackend("down", modeFail)
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	m := baseManifests(port, probe, down)
	budget := &v1alpha1.RetryBudgetPolicy{Percent: ptr(int32(budgetPercent)), MinRetriesPerSecond: ptr(int32(budgetMinPerSec))}
	m.add(trafficPolicy("budget", "main", v1alpha1.TrafficPolicySpec{Retry: retryPolicy(2, budget)}))
	gw, err := e.startSwitchyard(ctx, "s2", port, m, "")
	if err != nil {
		return err
	}
	down.resetCount()
	requests := int(budgetRate * budgetDuration.Seconds())
	results, err := runLoad(ctx, loadSpec{Targets: []string{gw.gatewayURL + "/"}, Requests: requests,
		Rate: budgetRate, Concurrency: budgetConcurrency, MaxDuration: budgetDuration + 5*time.Second})
	if err != nil {
		return err
	}
	c := countStatuses(results)
	received := down.requests()
	amplification := share(received, int64(c.total))
	bound := amplificationBound(c.total, span(results))
	r.add(scenario, "backend requests / client requests", fmt.Sprintf("%.3f", amplification),
		fmt.Sprintf("%d / %d at %d req/s for %s; bound %.3f = 1 + %d%% + (%d/s x window %s + %d in flight) / requests; without a budget up to 3",
			received, c.total, budgetRate, budgetDuration, bound, budgetPercent, budgetMinPerSec,
			budgetWindow, budgetConcurrency))
	r.check(c.total > 0 && c.failed == 0, scenario, "%d requests got no answer", c.failed)
	r.check(amplification <= bound, scenario, "amplification %.3f exceeds the budget's bound %.3f", amplification, bound)
	r.check(amplification > 1.05, scenario, "amplification %.3f: no retries happened; the retry policy has no effect", amplification)
	return nil
}

// amplificationBound is the most backend requests per client request the budget
// allows: each request's first try, retries up to the percentage of the requests,
// the fixed allowance over the part of the window the run covered (all of it at
// most once per window), and one retry per request in flight, since a retry is
// checked against the budget before it is counted in it.
func amplificationBound(requests int, runLength time.Duration) float64 {
	if requests == 0 {
		return 0
	}
	windows := int((runLength + budgetWindow - 1) / budgetWindow)
	allowance := float64(budgetMinPerSec) * budgetWindow.Seconds() * float64(max(1, windows))
	retries := float64(requests)*budgetPercent/100 + allowance + budgetConcurrency
	return (float64(requests) + retries) / float64(requests)
}
