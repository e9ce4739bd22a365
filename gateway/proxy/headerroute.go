package proxy

import (
	"net/http"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// headerRouteHandler sends the requests that carry every header of a rule's
// HeaderRoute to one backend reference (a Rollout's header-matched canary) and every
// other request to the weighted split.
//
// Matching choices:
//   - Names compare case-insensitively (they are canonicalised once, as net/http
//     canonicalises the names of received headers) and values exactly.
//   - A header that a request repeats matches when any one of its values (field lines,
//     not comma-separated parts) equals the wanted value, so that a client or a proxy
//     in front adding a second field line does not lose the canary. This differs on
//     purpose from route matching, which compares only the first value.
//   - A header named "Host" compares the request's Host, which net/http keeps out of
//     r.Header, as route matching does.
//   - The headers are those of the request as the rule's own filters leave it, since
//     the rule's filters run before the rule's backends are chosen; a reference's own
//     filters run after.
type headerRouteHandler struct {
	conds    []headerCond
	pinned   http.Handler
	weighted http.Handler
}

// headerCond is one header a request must carry.
type headerCond struct {
	// name is canonical (http.CanonicalHeaderKey).
	name   string
	value  string
	isHost bool
}

func newHeaderConds(headers []config.Header) []headerCond {
	conds := make([]headerCond, len(headers))
	for i, h := range headers {
		name := http.CanonicalHeaderKey(h.Name)
		conds[i] = headerCond{name: name, value: h.Value, isHost: name == "Host"}
	}
	return conds
}

// matches reports whether r carries every header; it does not allocate.
func (h *headerRouteHandler) matches(r *http.Request) bool {
	for i := range h.conds {
		c := &h.conds[i]
		if c.isHost {
			if r.Host != c.value {
				return false
			}
			continue
		}
		found := false
		for _, v := range r.Header[c.name] {
			if v == c.value {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (h *headerRouteHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.matches(r) {
		h.pinned.ServeHTTP(w, r)
		return
	}
	h.weighted.ServeHTTP(w, r)
}
