package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"

	"github.com/switchyard-dev/switchyard/gateway/internal/deadline"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
)

// errorHeader names the response header that tells an operator which part of the
// gateway produced an error response. Its values are stable.
const errorHeader = "X-Switchyard-Error"

// proxyError is a response the gateway gives in place of a backend's.
type proxyError struct {
	status int
	reason string
	body   string
	// flag tells access logs and metrics about the answer; its name is reason.
	flag reqctx.Flags
}

// The responses the forwarding engine gives. Bodies are short plain text; the reason
// goes in errorHeader.
var (
	errNoBackends      = &proxyError{http.StatusInternalServerError, "no-backends", "no backend is configured for this route\n", reqctx.FlagNoBackends}
	errBackendNotFound = &proxyError{http.StatusServiceUnavailable, "backend-not-found", "backend is not available\n", reqctx.FlagBackendNotFound}
	errNoEndpoints     = &proxyError{http.StatusServiceUnavailable, "no-endpoints", "no healthy upstream\n", reqctx.FlagNoEndpoints}
	errOverflow        = &proxyError{http.StatusServiceUnavailable, "circuit-open", "upstream overflow: circuit breaker open\n", reqctx.FlagCircuitOpen}
	errUpstreamConnect = &proxyError{http.StatusBadGateway, "upstream-connect-failed", "upstream connect error\n", reqctx.FlagUpstreamConnectFailed}
	errUpstreamFailed  = &proxyError{http.StatusBadGateway, "upstream-error", "upstream error\n", reqctx.FlagUpstreamError}
	errUpstreamTimeout = &proxyError{http.StatusGatewayTimeout, "upstream-timeout", "upstream request timeout\n", reqctx.FlagUpstreamTimeout}
	errRouteTimeout    = &proxyError{http.StatusGatewayTimeout, "request-timeout", "request timeout\n", reqctx.FlagRequestTimeout}
	errDeadline        = &proxyError{http.StatusGatewayTimeout, "deadline-exceeded", "deadline exceeded\n", reqctx.FlagDeadlineExceeded}
	errUnreadableBody  = &proxyError{http.StatusBadRequest, "request-body-error", "request body could not be read\n", reqctx.FlagRequestBodyError}
)

// invalidBackendError is the response for the traffic share of a backend reference
// that could not be resolved.
func invalidBackendError(status int) *proxyError {
	if status < 100 || status > 999 {
		status = http.StatusInternalServerError
	}
	return &proxyError{status, "invalid-backend", strconv.Itoa(status) + " " + http.StatusText(status) + ": backend reference is invalid\n",
		reqctx.FlagInvalidBackend}
}

// write sends the error response.
func (e *proxyError) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(errorHeader, e.reason)
	h.Del("Content-Length")
	w.WriteHeader(e.status)
	_, _ = w.Write([]byte(e.body))
}

// answer sends the error response and flags the request's Info, if it has one.
func (e *proxyError) answer(w http.ResponseWriter, info *reqctx.Info) {
	if info != nil {
		info.Flags |= e.flag
	}
	e.write(w)
}

// ServeHTTP answers every request with the error, for routes and backend references
// that cannot forward.
func (e *proxyError) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.answer(w, reqctx.From(r.Context()))
}

// Causes recorded on the contexts that bound a request, so that an error can be told
// apart as the route's timeout, the attempt's timeout, or the client going away.
var (
	causeRequestTimeout = errors.New("route request timeout")
	causeDeadline       = errors.New("caller's deadline exceeded")
	causeBackendTimeout = errors.New("backend request timeout")
)

// classify maps a forwarding failure to the response to give. A nil result means the
// client is gone (or the server is shutting down) and nothing should be written.
func classify(ctx context.Context, err error) *proxyError {
	switch cause := deadline.Cause(ctx); {
	case errors.Is(cause, causeRequestTimeout):
		return errRouteTimeout
	case errors.Is(cause, causeDeadline):
		return errDeadline
	case errors.Is(cause, causeBackendTimeout):
		return errUpstreamTimeout
	case cause != nil:
		return nil
	}
	if isConnectError(err) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return errUpstreamTimeout
		}
		return errUpstreamConnect
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errUpstreamTimeout
	}
	return errUpstreamFailed
}

// isConnectError reports whether err happened while connecting, so that nothing of
// the request reached the backend and trying another endpoint is safe.
func isConnectError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
