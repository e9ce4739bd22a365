package echo

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// maxRetryKeys bounds the number of request keys the retry endpoint remembers, so a
// long run cannot grow the echo server without limit. The oldest key is forgotten first.
const maxRetryKeys = 4096

// retrySimulator serves /retry/...: a request with the query
// ?responseCode=NNN&succeedAfter=N&uuid=KEY fails with responseCode for the first N
// requests carrying KEY and is echoed from then on. It lets a test tell whether a
// gateway retried, and how often, without any state in the gateway itself.
type retrySimulator struct {
	mu sync.Mutex
	// seen counts the requests per key.
	seen map[string]int
	// order holds the keys in arrival order, for eviction.
	order []string
}

func newRetrySimulator() *retrySimulator {
	return &retrySimulator{seen: make(map[string]int)}
}

// isRetryPath reports whether the retry simulator serves path.
func isRetryPath(path string) bool {
	return path == "/retry" || strings.HasPrefix(path, "/retry/")
}

// serve answers r: with the configured failure while the key has seen at most
// succeedAfter requests, else with the normal echo reply.
func (s *retrySimulator) serve(w http.ResponseWriter, r *http.Request, opts Options) {
	q := r.URL.Query()
	code, err := strconv.Atoi(q.Get("responseCode"))
	if err != nil || code < 100 || code > 599 {
		writeError(w, http.StatusBadRequest, "retry: responseCode must be an HTTP status code")
		return
	}
	succeedAfter, err := strconv.Atoi(q.Get("succeedAfter"))
	if err != nil || succeedAfter < 0 {
		writeError(w, http.StatusBadRequest, "retry: succeedAfter must be a count of failures")
		return
	}
	key := q.Get("uuid")
	if key == "" {
		writeError(w, http.StatusBadRequest, "retry: uuid must name the request being retried")
		return
	}
	if n := s.count(key); n <= succeedAfter {
		setEchoHeaders(w, r.Header)
		writeError(w, code, fmt.Sprintf("retry: failing request %d of %d for %s", n, succeedAfter, key))
		return
	}
	echo(w, r, opts)
}

// count records one more request for key and returns how many it has seen.
func (s *retrySimulator) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[key]; !ok {
		if len(s.order) >= maxRetryKeys {
			delete(s.seen, s.order[0])
			s.order = s.order[1:]
		}
		s.order = append(s.order, key)
	}
	s.seen[key]++
	return s.seen[key]
}
