// Package pathmod implements the Gateway API path modifiers shared by the redirect and
// rewrite filters, so that both change paths by exactly the same rules.
package pathmod

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// Validate checks a path modifier's settings. A nil modifier is valid (no change).
func Validate(m *config.PathModifier) error {
	if m == nil {
		return nil
	}
	switch m.Type {
	case config.ReplaceFullPath:
		if m.ReplacePrefixMatch != "" {
			return errors.New("path: replacePrefixMatch must not be set when type is ReplaceFullPath")
		}
		return checkPath("replaceFullPath", m.ReplaceFullPath)
	case config.ReplacePrefixMatch:
		if m.ReplaceFullPath != "" {
			return errors.New("path: replaceFullPath must not be set when type is ReplacePrefixMatch")
		}
		return checkPath("replacePrefixMatch", m.ReplacePrefixMatch)
	case "":
		return errors.New("path: type is missing; use ReplaceFullPath or ReplacePrefixMatch")
	default:
		return fmt.Errorf("path: type %q is not supported; use ReplaceFullPath or ReplacePrefixMatch", m.Type)
	}
}

// checkPath accepts "" (which means "/") or an absolute path with no query, fragment,
// or control characters, since the value is placed into a request line or a Location.
func checkPath(field, p string) error {
	if p == "" {
		return nil
	}
	if p[0] != '/' {
		return fmt.Errorf("path: %s %q must start with /", field, p)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x21 || c == 0x7f || c == '?' || c == '#' {
			return fmt.Errorf("path: %s %q must not contain spaces, control characters, ? or #", field, p)
		}
	}
	return nil
}

// Apply returns the path after the modifier. matchedPrefix is the PathPrefix value
// that selected the rule ("" for "/"). The result always starts with "/".
func Apply(m *config.PathModifier, path, matchedPrefix string) string {
	switch m.Type {
	case config.ReplaceFullPath:
		if m.ReplaceFullPath == "" {
			return "/"
		}
		return m.ReplaceFullPath
	case config.ReplacePrefixMatch:
		return ReplacePrefix(path, matchedPrefix, m.ReplacePrefixMatch)
	}
	return path
}

// ReplacePrefix swaps the matched prefix of path for replacement, segment-wise, as the
// Gateway API's HTTPPathModifier describes: trailing slashes on the prefix or the
// replacement do not double up, and an empty result becomes "/". With prefix "/foo":
// "/foo/bar" becomes "/xyz/bar" (replacement "/xyz" or "/xyz/"), "/foo/" becomes
// "/xyz/", and "/foo" becomes "/" (replacement "" or "/").
//
// A path that does not start with the prefix at a segment boundary cannot have been
// selected by it, so it is returned unchanged rather than mangled.
func ReplacePrefix(path, matchedPrefix, replacement string) string {
	prefix := strings.TrimSuffix(matchedPrefix, "/")
	if !HasSegmentPrefix(path, prefix) {
		return path
	}
	rest := path[len(prefix):]
	base := strings.TrimSuffix(replacement, "/")
	if base == "" {
		if rest == "" {
			return "/"
		}
		if rest[0] != '/' {
			return "/" + rest
		}
		return rest
	}
	if rest == "" {
		return base
	}
	if rest[0] != '/' {
		// Only reachable with the root prefix "", where rest is the whole path, which
		// a server request always starts with "/"; kept so the result stays a path.
		return base + "/" + rest
	}
	return base + rest
}

// HasSegmentPrefix reports whether path starts with prefix (given without a trailing
// slash) followed by the end of the path or a "/". The empty prefix matches any path.
func HasSegmentPrefix(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || prefix == "" || path[len(prefix)] == '/'
}

// Rewrite applies the modifier to u in place, keeping u.Path and u.RawPath consistent:
// when the request came with an escaped form that differs from the decoded one (an
// encoded "/" for example), that form is carried over to the new path where the
// matched prefix can be found in it, and dropped otherwise, so net/url re-encodes.
func Rewrite(m *config.PathModifier, u *url.URL, matchedPrefix string) {
	newPath := Apply(m, u.Path, matchedPrefix)
	newRaw := ""
	if u.RawPath != "" && m.Type == config.ReplacePrefixMatch {
		// The prefix matched the decoded path. When it is spelled the same way in
		// the escaped path, the same replacement there keeps the client's encoding;
		// the result is used only if it still decodes to the new path.
		prefix := strings.TrimSuffix(matchedPrefix, "/")
		if HasSegmentPrefix(u.RawPath, prefix) {
			candidate := ReplacePrefix(u.RawPath, prefix, m.ReplacePrefixMatch)
			if decoded, err := url.PathUnescape(candidate); err == nil && decoded == newPath {
				newRaw = candidate
			}
		}
	}
	u.Path = newPath
	u.RawPath = newRaw
}
