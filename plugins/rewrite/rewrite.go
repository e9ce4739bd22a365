// Package rewrite implements the URLRewrite filter: it changes the host and path the
// backend sees.
package rewrite

import (
	"errors"
	"fmt"
	"net/http"

	"golang.org/x/net/http/httpguts"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
	"github.com/switchyard-dev/switchyard/plugins"
	"github.com/switchyard-dev/switchyard/plugins/internal/pathmod"
)

func init() { plugins.Register(config.FilterURLRewrite, plugin{}) }

type plugin struct{}

// Validate checks the URLRewrite settings.
func (plugin) Validate(spec *config.Filter) error {
	rw := spec.URLRewrite
	if rw == nil {
		return errors.New("settings are missing")
	}
	if rw.Hostname != "" && !httpguts.ValidHostHeader(rw.Hostname) {
		return fmt.Errorf("hostname %q is not a valid Host header value", rw.Hostname)
	}
	return pathmod.Validate(rw.Path)
}

// Provision builds middleware that rewrites the request's Host and path in place
// before passing it on. The query string is kept as it is.
func (p plugin) Provision(_ plugins.Context, spec *config.Filter) (plugins.Middleware, error) {
	if err := p.Validate(spec); err != nil {
		return nil, err
	}
	rw := *spec.URLRewrite
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if rw.Hostname != "" {
				r.Host = rw.Hostname
			}
			if rw.Path != nil {
				prefix := ""
				if info := reqctx.From(r.Context()); info != nil {
					prefix = info.MatchedPrefix
				}
				pathmod.Rewrite(rw.Path, r.URL, prefix)
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}
