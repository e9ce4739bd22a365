package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/internal/deadline"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// DeadlineHeader carries the time a caller still allows for a request, in whole
// milliseconds counted from its receipt. Each hop takes the smaller of it and its own
// request timeout, and forwards what remains, so that a chain of services gives up
// together instead of working on answers nobody waits for.
const DeadlineHeader = "X-Switchyard-Deadline-Ms"

// maxDeadline bounds a caller's budget; longer values are treated as this.
const maxDeadline = 24 * time.Hour

// deadlineHandler bounds a whole request, retries included, by the rule's request
// timeout and the caller's deadline (DeadlineHeader, or grpc-timeout for gRPC).
// Requests that upgrade the connection are exempt from the timeout: it would cut the
// upgraded conversation short.
type deadlineHandler struct {
	next    http.Handler
	timeout time.Duration
}

func (h *deadlineHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	budget, hasBudget := callerBudget(r.Header)
	// The header describes this hop's deadline; the next hop gets its own. Its
	// name is canonical, so the map is used without canonicalising it again.
	delete(r.Header, DeadlineHeader)
	if hasBudget && budget <= 0 {
		errDeadline.answer(w, reqctx.From(r.Context()))
		return
	}
	if isUpgrade(r) || (h.timeout <= 0 && !hasBudget) {
		h.next.ServeHTTP(w, r)
		return
	}
	// A deadline.Context rather than context.WithTimeout: it arms no timer unless
	// something waits on it, and the backend client enforces it with socket deadlines.
	// Both count from the request's arrival, as the timeout's definition says,
	// which spares a reading of the clock.
	var arrived time.Time
	if info := reqctx.From(r.Context()); info != nil {
		arrived = info.Start
	}
	if arrived.IsZero() {
		arrived = time.Now()
	}
	var ctx *deadline.Context
	if h.timeout > 0 && (!hasBudget || h.timeout <= budget) {
		ctx = deadline.NewAt(r.Context(), arrived.Add(h.timeout), causeRequestTimeout)
	} else {
		ctx = deadline.NewAt(r.Context(), arrived.Add(budget), causeDeadline)
	}
	defer ctx.Release()
	h.next.ServeHTTP(w, r.WithContext(ctx))
}

// callerBudget reads the caller's remaining time from DeadlineHeader, or from
// grpc-timeout on a gRPC request, taking the smaller when both are present. A
// malformed value is ignored.
func callerBudget(h http.Header) (time.Duration, bool) {
	budget, ok := parseDeadlineMillis(first(h, DeadlineHeader))
	if isGRPC(h) {
		if g, gok := parseGRPCTimeout(first(h, "Grpc-Timeout")); gok && (!ok || g < budget) {
			budget, ok = g, true
		}
	}
	return budget, ok
}

func parseDeadlineMillis(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, false
	}
	if ms > maxDeadline.Milliseconds() {
		ms = maxDeadline.Milliseconds()
	}
	return time.Duration(ms) * time.Millisecond, true
}

// grpcTimeoutUnits are the units of the grpc-timeout header.
var grpcTimeoutUnits = map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second,
	'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}

// parseGRPCTimeout reads a grpc-timeout value: up to eight digits and a unit.
func parseGRPCTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	unit, ok := grpcTimeoutUnits[v[len(v)-1]]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	if d := time.Duration(n) * unit; d/unit == time.Duration(n) && d <= maxDeadline {
		return d, true
	}
	return maxDeadline, true
}

func isGRPC(h http.Header) bool {
	return strings.HasPrefix(first(h, "Content-Type"), "application/grpc")
}

// first is h.Get(name) for a name in canonical form, which Get would canonicalise
// again on every request: the first value, or "" when there is none.
func first(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// setDeadlineHeaders tells the backend how long it has: what remains of the
// outbound request's deadline, which includes the attempt's own timeout. For gRPC
// the grpc-timeout header says the same in the form gRPC servers read.
// The header values are kept in values; each header gets a capped slice of them, as
// Header.Set would give it a slice of its own.
func setDeadlineHeaders(out *http.Request, values *outboundValues) {
	deadline, ok := out.Context().Deadline()
	if !ok {
		return
	}
	ms := max(time.Until(deadline).Milliseconds(), 1)
	values.deadline[0] = strconv.FormatInt(ms, 10)
	out.Header[DeadlineHeader] = values.deadline[0:1:1]
	if isGRPC(out.Header) {
		values.deadline[1] = strconv.FormatInt(min(ms, 99_999_999), 10) + "m"
		out.Header["Grpc-Timeout"] = values.deadline[1:2:2]
	}
}
