package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Errors a Rollouts implementation wraps so that the API answers with the right
// status: ErrNotFound 404, ErrConflict 409 (an action the rollout's phase does not
// allow), ErrInvalid 400. Any other error is a 500.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid request")
)

// RolloutActions are the actions POST /api/v1/rollouts/{namespace}/{name}/{action}
// takes.
var RolloutActions = []string{"promote", "pause", "resume", "abort"}

// maxActionBody bounds the body of an action request, which is ignored.
const maxActionBody = 4 << 10

// Rollouts is what the rollout endpoints report on and act through. A State that
// implements it gets the endpoints (see Options.Rollouts). Its methods are called
// concurrently.
type Rollouts interface {
	// ListRollouts returns every Rollout, ordered by namespace and name.
	ListRollouts() []RolloutView
	// ActRollout applies an operator's action (one of RolloutActions); full asks a
	// promote to go straight to 100%. It returns the rollout as it stands afterwards.
	ActRollout(ctx context.Context, namespace, name, action string, full bool) (RolloutView, error)
}

// RolloutView is what the admin API shows of one Rollout.
type RolloutView struct {
	// Namespace and Name identify the Rollout.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Accepted says that its target and backends resolve; only accepted rollouts
	// move.
	Accepted bool `json:"accepted"`
	// Phase is Progressing, Paused, Promoted or Aborted; empty before it starts.
	Phase string `json:"phase,omitempty"`
	// CurrentStep is the index of the step in force, from 0, as in the status.
	CurrentStep int32 `json:"currentStep"`
	// Steps is how many steps the plan has.
	Steps int `json:"steps"`
	// CanaryWeight is the canary's percentage in force.
	CanaryWeight int32 `json:"canaryWeight"`
	// StableBackend and CanaryBackend are the backends' names in the configuration.
	StableBackend string `json:"stableBackend,omitempty"`
	CanaryBackend string `json:"canaryBackend,omitempty"`
	// Message says why the rollout is where it is.
	Message string `json:"message,omitempty"`
	// Waiting says what a progressing rollout waits for before its next step:
	// "analysis" (a passing window), "pause" (until NextStepAt) or "promote" (an
	// operator).
	Waiting string `json:"waiting,omitempty"`
	// StepStartedAt is when the current step began.
	StepStartedAt time.Time `json:"stepStartedAt,omitzero"`
	// NextStepAt is when the current step's pause ends.
	NextStepAt time.Time `json:"nextStepAt,omitzero"`
	// LastWindow is the canary's traffic in the last analysis window that ended.
	LastWindow *RolloutWindow `json:"lastWindow,omitempty"`
}

// RolloutWindow is the canary's traffic over one analysis window.
type RolloutWindow struct {
	// Start and End bound the window.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Requests and Errors count the canary's requests and failures (5xx answers,
	// connection failures and timeouts).
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// P99Millis is the 99th percentile latency in milliseconds, rounded up to a
	// histogram bucket's bound.
	P99Millis float64 `json:"p99Millis"`
	// Verdict is "passed", "breached" or "too few requests".
	Verdict string `json:"verdict"`
}

// addRolloutRoutes adds GET /api/v1/rollouts and the action endpoint.
func addRolloutRoutes(api *gin.RouterGroup, rollouts Rollouts, tokenRequired bool) {
	api.GET("/rollouts", func(c *gin.Context) {
		renderJSON(c, http.StatusOK, map[string][]RolloutView{"rollouts": rollouts.ListRollouts()})
	})
	api.POST("/rollouts/:namespace/:name/:action", guardAction(tokenRequired), func(c *gin.Context) {
		action := c.Param("action")
		full, err := fullParam(c.Query("full"), action)
		if err != nil {
			abortWithProblem(c, http.StatusBadRequest, err.Error())
			return
		}
		if !knownAction(action) {
			abortWithProblem(c, http.StatusBadRequest,
				fmt.Sprintf("unknown action %q; the actions are %s", action, strings.Join(RolloutActions, ", ")))
			return
		}
		if _, err := io.Copy(io.Discard, http.MaxBytesReader(c.Writer, c.Request.Body, maxActionBody)); err != nil {
			abortWithProblem(c, http.StatusRequestEntityTooLarge, "an action takes no body")
			return
		}
		view, err := rollouts.ActRollout(c.Request.Context(), c.Param("namespace"), c.Param("name"), action, full)
		if err != nil {
			abortWithProblem(c, statusOf(err), err.Error())
			return
		}
		renderJSON(c, http.StatusOK, view)
	})
}

// fullParam reads the full query parameter, which only a promote takes.
func fullParam(value, action string) (bool, error) {
	if value == "" {
		return false, nil
	}
	full, err := strconv.ParseBool(value)
	if err != nil {
		return false, fmt.Errorf("full=%q is not true or false", value)
	}
	if full && action != "promote" {
		return false, fmt.Errorf("full applies to promote only, not to %s", action)
	}
	return full, nil
}

func knownAction(action string) bool {
	for _, a := range RolloutActions {
		if a == action {
			return true
		}
	}
	return false
}

// statusOf maps an ActRollout error to an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// guardAction refuses action requests a browser sent on behalf of another site. A
// POST without a body needs no CORS preflight, so without this check any web page
// could promote or abort rollouts, or drain endpoints, through an admin API on
// loopback that has no token.
// Browsers name the requesting page's origin (Origin, Sec-Fetch-Site); command-line
// clients send neither. Without a token the Host must also be a loopback name, so
// that a DNS name rebound to 127.0.0.1 cannot pass as same-origin.
func guardAction(tokenRequired bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		req := c.Request
		if site := req.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			abortWithProblem(c, http.StatusForbidden, "cross-site requests may not take actions")
			return
		}
		if origin := req.Header.Get("Origin"); origin != "" {
			u, err := url.Parse(origin)
			if err != nil || !strings.EqualFold(u.Host, req.Host) {
				abortWithProblem(c, http.StatusForbidden, "requests from another origin may not take actions")
				return
			}
		}
		if !tokenRequired && !loopbackHost(req.Host) {
			abortWithProblem(c, http.StatusForbidden,
				"without an admin token, actions must be addressed to a loopback host such as 127.0.0.1")
		}
	}
}

// loopbackHost reports whether a Host header names this host by a loopback address
// or localhost.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
