package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRollouts records the actions it is asked for and answers with err when set.
type fakeRollouts struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (f *fakeRollouts) ListRollouts() []RolloutView {
	return []RolloutView{{Namespace: "shop", Name: "reviews", Accepted: true, Phase: "Progressing", CurrentStep: 1,
		Steps: 4, CanaryWeight: 30, Waiting: "pause", NextStepAt: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
		LastWindow: &RolloutWindow{Requests: 120, Errors: 1, P99Millis: 25, Verdict: "passed"}}}
}

func (f *fakeRollouts) ActRollout(_ context.Context, namespace, name, action string, full bool) (RolloutView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("%s/%s %s full=%v", namespace, name, action, full))
	if f.err != nil {
		return RolloutView{}, f.err
	}
	return RolloutView{Namespace: namespace, Name: name, Phase: "Paused"}, nil
}

func (f *fakeRollouts) lastCall() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return ""
	}
	return f.calls[len(f.calls)-1]
}

// stateWithRollouts is a State that drives rollouts too.
type stateWithRollouts struct {
	fakeState
	fakeRollouts
}

func TestListRollouts(t *testing.T) {
	_, base := startServer(t, Options{State: &stateWithRollouts{}})
	resp, body := call(t, "GET", base+"/api/v1/rollouts", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	var list struct {
		Rollouts []RolloutView `json:"rollouts"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Rollouts) != 1 || list.Rollouts[0].Phase != "Progressing" || list.Rollouts[0].CurrentStep != 1 ||
		list.Rollouts[0].LastWindow.Requests != 120 {
		t.Fatalf("list %s", body)
	}
	for _, field := range []string{`"phase":"Progressing"`, `"currentStep":1`, `"steps":4`, `"canaryWeight":30`,
		`"nextStepAt":"2026-05-01T12:00:00Z"`, `"waiting":"pause"`} {
		if !strings.Contains(body, field) {
			t.Errorf("list %s lacks %s", body, field)
		}
	}
}

func TestRolloutActions(t *testing.T) {
	ro := &fakeRollouts{}
	_, base := startServer(t, Options{State: &fakeState{}, Rollouts: ro})
	url := base + "/api/v1/rollouts/shop/reviews/"
	resp, body := send(t, "POST", url+"promote?full=true", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"phase":"Paused"`) || ro.lastCall() != "shop/reviews promote full=true" {
		t.Fatalf("promote: %d %s, call %q", resp.StatusCode, body, ro.lastCall())
	}
	for _, action := range []string{"pause", "resume", "abort", "promote"} {
		if resp, body := send(t, "POST", url+action, `{"ignored": true}`, nil); resp.StatusCode != 200 ||
			ro.lastCall() != "shop/reviews "+action+" full=false" {
			t.Fatalf("%s: %d %s, call %q", action, resp.StatusCode, body, ro.lastCall())
		}
	}
	calls := len(ro.calls)
	bad := map[string]int{
		"rewind":            http.StatusBadRequest,
		"promote?full=yes!": http.StatusBadRequest,
		"pause?full=true":   http.StatusBadRequest,
	}
	for path, status := range bad {
		resp, body := send(t, "POST", url+path, "", nil)
		assertProblem(t, resp, body, status)
	}
	resp, body = send(t, "POST", url+"pause", strings.Repeat("x", maxActionBody+1), nil)
	assertProblem(t, resp, body, http.StatusRequestEntityTooLarge)
	if len(ro.calls) != calls {
		t.Errorf("refused requests reached the driver: %v", ro.calls[calls:])
	}
	resp, body = send(t, "GET", url+"pause", "", nil)
	assertProblem(t, resp, body, http.StatusMethodNotAllowed)
}

func TestRolloutActionErrors(t *testing.T) {
	ro := &fakeRollouts{}
	_, base := startServer(t, Options{State: &fakeState{}, Rollouts: ro})
	cases := map[error]int{
		fmt.Errorf("%w: there is no Rollout shop/x", ErrNotFound):         http.StatusNotFound,
		fmt.Errorf("%w: the rollout is Promoted", ErrConflict):            http.StatusConflict,
		fmt.Errorf("%w: nope", ErrInvalid):                                http.StatusBadRequest,
		errors.New("the status could not be stored"):                      http.StatusInternalServerError,
		fmt.Errorf("wrapped twice: %w", fmt.Errorf("%w: x", ErrConflict)): http.StatusConflict,
	}
	for err, status := range cases {
		ro.mu.Lock()
		ro.err = err
		ro.mu.Unlock()
		resp, body := send(t, "POST", base+"/api/v1/rollouts/shop/x/abort", "", nil)
		if p := assertProblem(t, resp, body, status); p.Detail != err.Error() {
			t.Errorf("detail %q, want %q", p.Detail, err)
		}
	}
}

func TestRolloutActionsRefuseOtherSites(t *testing.T) {
	ro := &fakeRollouts{}
	_, base := startServer(t, Options{State: &fakeState{}, Rollouts: ro})
	host := strings.TrimPrefix(base, "http://")
	refused := []http.Header{
		{"Origin": {"http://evil.example"}},
		{"Sec-Fetch-Site": {"cross-site"}},
		{"Sec-Fetch-Site": {"same-site"}},
		{"Host": {"rebound.example:9901"}},
	}
	for _, h := range refused {
		resp, body := send(t, "POST", base+"/api/v1/rollouts/shop/reviews/abort", "", h)
		assertProblem(t, resp, body, http.StatusForbidden)
	}
	if len(ro.calls) != 0 {
		t.Fatalf("a refused request reached the driver: %v", ro.calls)
	}
	allowed := []http.Header{
		{"Origin": {"http://" + host}, "Sec-Fetch-Site": {"same-origin"}},
		{"Host": {"localhost:9901"}},
		{},
	}
	for _, h := range allowed {
		if resp, body := send(t, "POST", base+"/api/v1/rollouts/shop/reviews/abort", "", h); resp.StatusCode != 200 {
			t.Errorf("headers %v: %d %s", h, resp.StatusCode, body)
		}
	}
}

func TestRolloutActionsNeedTheToken(t *testing.T) {
	ro := &fakeRollouts{}
	_, base := startServer(t, Options{State: &fakeState{}, Rollouts: ro, Token: "s3cret"})
	resp, body := send(t, "POST", base+"/api/v1/rollouts/shop/reviews/abort", "", nil)
	assertProblem(t, resp, body, http.StatusUnauthorized)
	resp, body = call(t, "GET", base+"/api/v1/rollouts", "")
	assertProblem(t, resp, body, http.StatusUnauthorized)
	// With a token, any Host may be used: the token is what a rebinding page lacks.
	auth := http.Header{"Authorization": {"Bearer s3cret"}, "Host": {"gateway.example:9901"}}
	if resp, body := send(t, "POST", base+"/api/v1/rollouts/shop/reviews/abort", "", auth); resp.StatusCode != 200 {
		t.Fatalf("with the token: %d %s", resp.StatusCode, body)
	}
}

func TestNoRolloutEndpointsWithoutRollouts(t *testing.T) {
	_, base := startServer(t, Options{State: &fakeState{}})
	resp, body := call(t, "GET", base+"/api/v1/rollouts", "")
	assertProblem(t, resp, body, http.StatusNotFound)
}
