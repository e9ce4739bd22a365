package distribute

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
)

// Bounds of the TokenReview cache. A minute keeps a reconnect storm of a whole fleet to
// one review per replica, and is short enough that a deleted ServiceAccount loses
// access soon after; the size bound keeps memory flat whatever tokens arrive.
const (
	tokenCacheTTL      = time.Minute
	tokenCacheSize     = 4096
	tokenReviewTimeout = 10 * time.Second
)

// TokenReview returns an Authenticator that checks Kubernetes ServiceAccount tokens
// with the TokenReview API and accepts only the users in allowedUsers (for example
// "system:serviceaccount:switchyard-system:switchyard-gateway"). When audiences is not
// empty, the token must be valid for one of them and the API server must confirm it.
// Accepted tokens are remembered for a minute (at most a few thousand of them), so
// replicas that reconnect and ack often cost few reviews. The controller needs RBAC
// permission to create tokenreviews.
//
// client is typically clientset.AuthenticationV1().TokenReviews().
func TokenReview(client authenticationv1client.TokenReviewInterface, allowedUsers, audiences []string) Authenticator {
	allowed := make(map[string]bool, len(allowedUsers))
	for _, u := range allowedUsers {
		allowed[u] = true
	}
	return &tokenReviewer{
		client:    client,
		allowed:   allowed,
		audiences: slices.Clone(audiences),
		now:       time.Now,
		cache:     map[[32]byte]cachedIdentity{},
	}
}

type tokenReviewer struct {
	client    authenticationv1client.TokenReviewInterface
	allowed   map[string]bool
	audiences []string
	now       func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]cachedIdentity // by SHA-256 of the token, never the token itself
}

type cachedIdentity struct {
	id      Identity
	expires time.Time
}

func (t *tokenReviewer) Authenticate(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, errors.New("empty token")
	}
	key := sha256.Sum256([]byte(token))
	if id, ok := t.cached(key); ok {
		return id, nil
	}
	id, err := t.review(ctx, token)
	if err != nil {
		return Identity{}, err
	}
	t.remember(key, id)
	return id, nil
}

// review asks the API server about token and applies this authenticator's rules.
func (t *tokenReviewer) review(ctx context.Context, token string) (Identity, error) {
	ctx, cancel := context.WithTimeout(ctx, tokenReviewTimeout)
	defer cancel()
	req := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: t.audiences}}
	res, err := t.client.Create(ctx, req, metav1.CreateOptions{})
	if err != nil {
		return Identity{}, fmt.Errorf("%w: TokenReview: %v", ErrAuthUnavailable, err)
	}
	st := res.Status
	if !st.Authenticated {
		if st.Error != "" {
			return Identity{}, fmt.Errorf("token is not valid: %s", st.Error)
		}
		return Identity{}, errors.New("token is not valid")
	}
	if len(t.audiences) > 0 && !slices.ContainsFunc(st.Audiences, func(a string) bool { return slices.Contains(t.audiences, a) }) {
		return Identity{}, fmt.Errorf("token is not valid for audiences %v", t.audiences)
	}
	if !t.allowed[st.User.Username] {
		return Identity{}, fmt.Errorf("user %q is not allowed to receive configuration", st.User.Username)
	}
	return Identity{Name: st.User.Username, Groups: slices.Clone(st.User.Groups)}, nil
}

func (t *tokenReviewer) cached(key [32]byte) (Identity, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.cache[key]
	if !ok {
		return Identity{}, false
	}
	if !t.now().Before(e.expires) {
		delete(t.cache, key)
		return Identity{}, false
	}
	return e.id, true
}

func (t *tokenReviewer) remember(key [32]byte, id Identity) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.cache) >= tokenCacheSize {
		for k, e := range t.cache {
			if !now.Before(e.expires) {
				delete(t.cache, k)
			}
		}
	}
	// Still full of live entries: drop any one. Map order is unspecified, which is
	// as good as any choice for entries that all expire within the minute.
	for k := range t.cache {
		if len(t.cache) < tokenCacheSize {
			break
		}
		delete(t.cache, k)
	}
	t.cache[key] = cachedIdentity{id: id, expires: now.Add(tokenCacheTTL)}
}
