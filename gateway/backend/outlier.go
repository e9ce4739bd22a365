package backend

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// maxEjectionMultiplier caps how many times the base ejection time an ejection lasts.
const maxEjectionMultiplier = 10

// endpointHealth is what an Endpoint records for outlier detection and health checks.
// All of it outlives configuration versions with the Endpoint.
type endpointHealth struct {
	// ejectedUntil is when an ejection ends, in Unix nanoseconds; 0 when never.
	ejectedUntil atomic.Int64
	// ejections is the multiplier of the next ejection's length.
	ejections atomic.Int32
	// consecutive5xx and consecutiveGateway count failures in a row.
	consecutive5xx     atomic.Int32
	consecutiveGateway atomic.Int32
	// unhealthy is the health check's verdict; passes and fails are the current
	// streaks of probe results.
	unhealthy atomic.Bool
	passes    atomic.Int32
	fails     atomic.Int32
}

// available reports whether the endpoint may take traffic at now (Unix nanoseconds).
func (h *endpointHealth) available(now int64) bool {
	return !h.unhealthy.Load() && h.ejectedUntil.Load() <= now
}

// Ejected reports whether outlier detection holds the endpoint out of service now.
func (e *Endpoint) Ejected() bool { return e.health.ejectedUntil.Load() > time.Now().UnixNano() }

// Unhealthy reports whether health checks hold the endpoint out of service.
func (e *Endpoint) Unhealthy() bool { return e.health.unhealthy.Load() }

// Outcome is the result of one request to an endpoint, for outlier detection.
type Outcome int

const (
	// OutcomeSuccess is any answer below 500.
	OutcomeSuccess Outcome = iota
	// Outcome5xx is a 5xx answer other than a gateway error.
	Outcome5xx
	// OutcomeGatewayError is a 502, 503 or 504 answer, a connection failure or a
	// timeout.
	OutcomeGatewayError
)

// OutcomeOf classifies an answer's status code.
func OutcomeOf(status int) Outcome {
	switch {
	case status == 502 || status == 503 || status == 504:
		return OutcomeGatewayError
	case status >= 500:
		return Outcome5xx
	}
	return OutcomeSuccess
}

// outlierState is a pool's outlier detection settings and the lock that makes
// counting ejected endpoints and ejecting one atomic.
type outlierState struct {
	settings atomic.Pointer[config.OutlierDetection]
	mu       sync.Mutex
}

// Report records the outcome of a request to ep, ejecting the endpoint when it has
// failed too often in a row. Without outlier detection it does nothing.
func (p *Pool) Report(ep *Endpoint, outcome Outcome) {
	od := p.outlier.settings.Load()
	if od == nil || ep == nil {
		return
	}
	h := &ep.health
	if outcome == OutcomeSuccess {
		h.consecutive5xx.Store(0)
		h.consecutiveGateway.Store(0)
		return
	}
	n5xx := h.consecutive5xx.Add(1)
	var nGateway int32
	if outcome == OutcomeGatewayError {
		nGateway = h.consecutiveGateway.Add(1)
	} else {
		h.consecutiveGateway.Store(0)
	}
	if (od.Consecutive5xx > 0 && int(n5xx) >= od.Consecutive5xx) ||
		(od.ConsecutiveGatewayErrors > 0 && int(nGateway) >= od.ConsecutiveGatewayErrors) {
		p.eject(ep, od, time.Now())
	}
}

// eject takes ep out of service unless that would put more than MaxEjectionPercent
// of the endpoints out at once. The ejection lasts the base time times the number of
// recent ejections: an endpoint that keeps failing stays out longer.
func (p *Pool) eject(ep *Endpoint, od *config.OutlierDetection, now time.Time) {
	p.outlier.mu.Lock()
	defer p.outlier.mu.Unlock()
	h := &ep.health
	nowNanos := now.UnixNano()
	if h.ejectedUntil.Load() > nowNanos {
		return
	}
	all := p.state.Load().all
	ejected := 0
	for _, es := range all {
		if es.Endpoint.health.ejectedUntil.Load() > nowNanos {
			ejected++
		}
	}
	if (ejected+1)*100 > od.MaxEjectionPercent*len(all) {
		return
	}
	multiplier := h.ejections.Load()
	if last := h.ejectedUntil.Load(); last > 0 && od.Interval > 0 {
		// Time in service since the last ejection earns the multiplier back down.
		multiplier -= int32(time.Duration(nowNanos-last) / od.Interval.D())
	}
	multiplier = min(max(multiplier, 0)+1, maxEjectionMultiplier)
	h.ejections.Store(multiplier)
	h.ejectedUntil.Store(nowNanos + int64(od.BaseEjectionTime.D())*int64(multiplier))
	h.consecutive5xx.Store(0)
	h.consecutiveGateway.Store(0)
	p.ejections.Add(1)
}
