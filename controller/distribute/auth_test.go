package distribute

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestSharedToken(t *testing.T) {
	ctx := context.Background()
	a := SharedToken("right")
	if id, err := a.Authenticate(ctx, "right"); err != nil || id.Name != SharedTokenIdentity {
		t.Errorf("right token: %+v %v", id, err)
	}
	for _, bad := range []string{"wrong", "righ", "right2", ""} {
		if _, err := a.Authenticate(ctx, bad); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
	if _, err := SharedToken("").Authenticate(ctx, ""); err == nil {
		t.Error("an empty shared token accepted the empty token")
	}
}

func TestBearerToken(t *testing.T) {
	cases := map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc", "Basic abc": "", "Bearer": "", "": ""}
	for header, want := range cases {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", header)
		got, ok := bearerToken(r)
		if got != want || ok != (want != "") {
			t.Errorf("%q: got %q %v, want %q", header, got, ok, want)
		}
	}
}

const gatewaySA = "system:serviceaccount:switchyard-system:switchyard-gateway"

// reviewer is a fake clientset whose TokenReviews answer from a table of tokens and
// count the reviews made.
func reviewer(t *testing.T, users map[string]string, audiences []string, apiErr error) (*tokenReviewer, *atomic.Int32) {
	t.Helper()
	cs := fake.NewClientset()
	var calls atomic.Int32
	cs.PrependReactor("create", "tokenreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		calls.Add(1)
		if apiErr != nil {
			return true, nil, apiErr
		}
		tr := action.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview)
		out := tr.DeepCopy()
		if user, ok := users[tr.Spec.Token]; ok {
			out.Status = authenticationv1.TokenReviewStatus{
				Authenticated: true,
				User:          authenticationv1.UserInfo{Username: user, Groups: []string{"system:serviceaccounts"}},
				Audiences:     audiences,
			}
		} else {
			out.Status = authenticationv1.TokenReviewStatus{Error: "token expired"}
		}
		return true, out, nil
	})
	a := TokenReview(cs.AuthenticationV1().TokenReviews(), []string{gatewaySA}, []string{"switchyard"})
	return a.(*tokenReviewer), &calls
}

func TestTokenReviewAcceptsOnlyAllowedUsers(t *testing.T) {
	ctx := context.Background()
	a, _ := reviewer(t, map[string]string{
		"gw":    gatewaySA,
		"other": "system:serviceaccount:default:default",
	}, []string{"switchyard"}, nil)

	id, err := a.Authenticate(ctx, "gw")
	if err != nil || id.Name != gatewaySA || len(id.Groups) != 1 {
		t.Errorf("allowed user: %+v %v", id, err)
	}
	if _, err := a.Authenticate(ctx, "other"); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("other user: %v, want not allowed", err)
	}
	_, err = a.Authenticate(ctx, "unknown")
	if err == nil || !strings.Contains(err.Error(), "token expired") || errors.Is(err, ErrAuthUnavailable) {
		t.Errorf("invalid token: %v, want a rejection naming the reason", err)
	}
	if _, err := a.Authenticate(ctx, ""); err == nil {
		t.Error("empty token accepted")
	}
}

func TestTokenReviewChecksAudiences(t *testing.T) {
	a, _ := reviewer(t, map[string]string{"gw": gatewaySA}, []string{"kubernetes"}, nil)
	if _, err := a.Authenticate(context.Background(), "gw"); err == nil || !strings.Contains(err.Error(), "audiences") {
		t.Errorf("token for another audience: %v, want an audience error", err)
	}
}

func TestTokenReviewAPIErrorIsUnavailable(t *testing.T) {
	a, _ := reviewer(t, nil, nil, fmt.Errorf("connection refused"))
	_, err := a.Authenticate(context.Background(), "gw")
	if !errors.Is(err, ErrAuthUnavailable) {
		t.Errorf("API error: %v, want ErrAuthUnavailable", err)
	}
}

func TestTokenReviewCachesAcceptedTokensBriefly(t *testing.T) {
	ctx := context.Background()
	a, calls := reviewer(t, map[string]string{"gw": gatewaySA}, []string{"switchyard"}, nil)
	now := time.Unix(1000, 0)
	a.now = func() time.Time { return now }

	for range 5 {
		if _, err := a.Authenticate(ctx, "gw"); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d reviews for 5 authentications of one token, want 1", n)
	}
	for range 2 {
		_, _ = a.Authenticate(ctx, "bad")
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("rejected tokens are cached: %d reviews, want 3", n)
	}
	now = now.Add(tokenCacheTTL)
	if _, err := a.Authenticate(ctx, "gw"); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 4 {
		t.Errorf("expired entry was used: %d reviews, want 4", n)
	}
}

func TestTokenReviewCacheIsBounded(t *testing.T) {
	a, _ := reviewer(t, nil, nil, nil)
	now := time.Unix(1000, 0)
	a.now = func() time.Time { return now }
	for i := range tokenCacheSize + 100 {
		var key [32]byte
		key[0], key[1] = byte(i), byte(i>>8)
		a.remember(key, Identity{Name: gatewaySA})
	}
	if n := len(a.cache); n > tokenCacheSize {
		t.Errorf("cache holds %d entries, limit %d", n, tokenCacheSize)
	}
}
