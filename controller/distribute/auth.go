package distribute

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
)

// Identity is who a replica's token says it is.
type Identity struct {
	// Name is the authenticated user, for example
	// "system:serviceaccount:switchyard-system:switchyard-gateway".
	Name string
	// Groups are the user's groups, when the authenticator knows them.
	Groups []string
}

// Authenticator checks a replica's bearer token.
type Authenticator interface {
	// Authenticate returns the identity token belongs to, or an error if the token is
	// not accepted. Errors that wrap ErrAuthUnavailable mean the token could not be
	// checked at all (the server answers 503 so the replica retries); any other error
	// rejects the token (401).
	Authenticate(ctx context.Context, token string) (Identity, error)
}

// ErrAuthUnavailable marks an authentication error that says nothing about the token:
// the service that checks tokens could not be reached.
var ErrAuthUnavailable = errors.New("token check unavailable")

// SharedTokenIdentity is the Identity SharedToken gives every replica.
const SharedTokenIdentity = "shared-token"

// SharedToken returns an Authenticator that accepts exactly token, comparing in
// constant time. An empty token accepts nothing.
func SharedToken(token string) Authenticator {
	return &sharedToken{set: token != "", digest: sha256.Sum256([]byte(token))}
}

type sharedToken struct {
	set    bool
	digest [32]byte
}

func (s *sharedToken) Authenticate(_ context.Context, token string) (Identity, error) {
	// Comparing digests keeps the comparison constant-time whatever the lengths.
	got := sha256.Sum256([]byte(token))
	if !s.set || subtle.ConstantTimeCompare(got[:], s.digest[:]) != 1 {
		return Identity{}, errors.New("token does not match the shared token")
	}
	return Identity{Name: SharedTokenIdentity}, nil
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// authenticate checks the request's token and answers the request itself when the
// token is missing, rejected or cannot be checked.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (Identity, bool) {
	token, ok := bearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchyard"`)
		httpError(w, http.StatusUnauthorized, "missing bearer token: send \"Authorization: Bearer <token>\"")
		return Identity{}, false
	}
	id, err := s.opts.Authenticator.Authenticate(r.Context(), token)
	switch {
	case errors.Is(err, ErrAuthUnavailable):
		s.logger.Warn("could not check a replica's token", "remote", r.RemoteAddr, "error", err)
		httpError(w, http.StatusServiceUnavailable, "cannot check tokens right now: "+err.Error())
		return Identity{}, false
	case err != nil:
		s.logger.Warn("rejected a replica's token", "remote", r.RemoteAddr, "error", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchyard", error="invalid_token"`)
		httpError(w, http.StatusUnauthorized, "token rejected: "+err.Error())
		return Identity{}, false
	}
	return id, true
}

// httpError answers with a one-line plain-text message.
func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}
