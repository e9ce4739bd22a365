package backend

import "net/http"

// stdTransport returns the http.Transport behind a Manager's HTTP/1.1 transport:
// itself, or the fallback of the fast client.
func stdTransport(rt http.RoundTripper) (*http.Transport, bool) {
	if f, ok := rt.(*fastTransport); ok {
		return f.std, true
	}
	t, ok := rt.(*http.Transport)
	return t, ok
}
