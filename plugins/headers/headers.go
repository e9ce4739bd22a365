// Package headers implements the RequestHeaderModifier and ResponseHeaderModifier
// filters.
package headers

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/reqctx"
	"github.com/switchyard-dev/switchyard/plugins"
	"github.com/switchyard-dev/switchyard/plugins/internal/respwriter"
)

func init() {
	plugins.Register(config.FilterRequestHeaderModifier, requestPlugin{})
	plugins.Register(config.FilterResponseHeaderModifier, responsePlugin{})
}

// hostHeader is the canonical name net/http keeps out of Request.Header.
const hostHeader = "Host"

// modifier is a HeaderModifier with names canonicalised once, at provision time, so
// the per-request work is plain map operations.
type modifier struct {
	set    []config.Header
	add    []config.Header
	remove []string
	// host is the value of a Set of Host on a request modifier, applied to r.Host.
	host string
}

func validate(m *config.HeaderModifier) error {
	if m == nil {
		return errors.New("settings are missing")
	}
	if err := checkHeaders("set", m.Set); err != nil {
		return err
	}
	if err := checkHeaders("add", m.Add); err != nil {
		return err
	}
	for i, name := range m.Remove {
		if err := checkName("remove", i, name); err != nil {
			return err
		}
	}
	return nil
}

func checkHeaders(list string, hs []config.Header) error {
	for i, h := range hs {
		if err := checkName(list, i, h.Name); err != nil {
			return err
		}
		if !httpguts.ValidHeaderFieldValue(h.Value) {
			return fmt.Errorf("%s[%d]: value of header %q contains characters not allowed in a header", list, i, h.Name)
		}
	}
	return nil
}

func checkName(list string, i int, name string) error {
	if name == "" {
		return fmt.Errorf("%s[%d]: header name is empty", list, i)
	}
	if !httpguts.ValidHeaderFieldName(name) {
		return fmt.Errorf("%s[%d]: header name %q is not a valid HTTP header name", list, i, name)
	}
	return nil
}

// compile canonicalises the names. For a request modifier, Host is taken out of the
// header edits: net/http carries it in r.Host, and a Set of it changes r.Host; adding a
// second Host or removing it would make the request invalid, so those are ignored.
func compile(m *config.HeaderModifier, request bool) *modifier {
	out := &modifier{}
	for _, h := range m.Set {
		name := http.CanonicalHeaderKey(h.Name)
		if request && name == hostHeader {
			out.host = h.Value
			continue
		}
		out.set = append(out.set, config.Header{Name: name, Value: h.Value})
	}
	for _, h := range m.Add {
		name := http.CanonicalHeaderKey(h.Name)
		if request && name == hostHeader {
			continue
		}
		out.add = append(out.add, config.Header{Name: name, Value: h.Value})
	}
	for _, name := range m.Remove {
		name = http.CanonicalHeaderKey(name)
		if request && name == hostHeader {
			continue
		}
		out.remove = append(out.remove, name)
	}
	return out
}

// apply edits h in the Gateway API order: set, then add, then remove.
func (m *modifier) apply(h http.Header) {
	// One array holds every new single-value slice of this request. Each slice is cut
	// with capacity 1, so an append by a later handler copies instead of writing into
	// its neighbour.
	var values []string
	if n := len(m.set) + len(m.add); n > 0 {
		values = make([]string, n)
	}
	for i, s := range m.set {
		values[i] = s.Value
		h[s.Name] = values[i : i+1 : i+1]
	}
	for i, a := range m.add {
		existing := h[a.Name]
		if len(existing) > 0 && a.Name == "Set-Cookie" {
			// Cookie values may contain commas, so each stays a field of its own.
			h[a.Name] = append(existing, a.Value)
			continue
		}
		j := len(m.set) + i
		values[j] = joinValue(existing, a.Value)
		h[a.Name] = values[j : j+1 : j+1]
	}
	for _, name := range m.remove {
		delete(h, name)
	}
}

// joinValue returns the single field value that results from adding value to a
// header's existing values. The Gateway API's add appends to the existing value, so
// the result is one comma-separated field ("a,b"), which means the same on the wire as
// repeated fields of a list header.
func joinValue(existing []string, value string) string {
	switch len(existing) {
	case 0:
		return value
	case 1:
		return existing[0] + "," + value
	}
	return strings.Join(existing, ",") + "," + value
}

type requestPlugin struct{}

// Validate checks the RequestHeaderModifier settings.
func (requestPlugin) Validate(spec *config.Filter) error { return validate(spec.RequestHeaderModifier) }

// Provision builds middleware that edits the request headers before passing it on.
func (requestPlugin) Provision(_ plugins.Context, spec *config.Filter) (plugins.Middleware, error) {
	if err := validate(spec.RequestHeaderModifier); err != nil {
		return nil, err
	}
	m := compile(spec.RequestHeaderModifier, true)
	wire := &lazyWire{m: m}
	return func(next http.Handler) http.Handler {
		if m.host != "" {
			// A new Host changes the request's authority, which the wire form
			// carries apart from its fields: such a rule keeps its handler.
			return &requestHandler{m: m, next: next}
		}
		return &rawRequestHandler{requestHandler{m: m, next: next}, wire}
	}, nil
}

// requestHandler edits the header of each request before passing it on.
type requestHandler struct {
	m    *modifier
	next http.Handler
}

func (h *requestHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.m.apply(r.Header)
	if h.m.host != "" {
		r.Host = h.m.host
	}
	h.next.ServeHTTP(w, r)
}

// rawRequestHandler is a requestHandler that also edits requests in their wire form
// (see plugins.RawRequestEditor), with the same result.
type rawRequestHandler struct {
	requestHandler
	wire *lazyWire
}

var _ plugins.RawRequestEditor = (*rawRequestHandler)(nil)

// FilterRaw passes the request on: the data plane makes the edits as it writes the
// head it sends on.
func (h *rawRequestHandler) FilterRaw(plugins.RawRequest, *reqctx.Info, *plugins.ResponseFields) *plugins.Answer {
	return nil
}

// Next is the handler ServeHTTP passes requests on to.
func (h *rawRequestHandler) Next() http.Handler { return h.next }

// EditedNames are the canonical names of the fields the modifier sets, adds to or
// removes.
func (h *rawRequestHandler) EditedNames() []string { return h.wire.get().names }

// AppendEdited appends the edited fields of req, in wire form.
func (h *rawRequestHandler) AppendEdited(b []byte, req plugins.RawRequest) []byte {
	return h.wire.get().appendFields(b, &fieldSource{req: req})
}

// EditedValue returns the first value of an edited field after the edits.
func (h *rawRequestHandler) EditedValue(req plugins.RawRequest, canonicalName string) string {
	return h.wire.get().firstValue(&fieldSource{req: req}, canonicalName)
}

type responsePlugin struct{}

// Validate checks the ResponseHeaderModifier settings.
func (responsePlugin) Validate(spec *config.Filter) error {
	return validate(spec.ResponseHeaderModifier)
}

// Provision builds middleware that edits the response headers just before they are
// sent, whichever handler further down writes the response.
func (responsePlugin) Provision(_ plugins.Context, spec *config.Filter) (plugins.Middleware, error) {
	if err := validate(spec.ResponseHeaderModifier); err != nil {
		return nil, err
	}
	m := compile(spec.ResponseHeaderModifier, false)
	// The method value is bound once here rather than per request.
	h := &responseHandler{edit: m.apply, wire: &lazyWire{m: m}}
	return func(next http.Handler) http.Handler {
		h := *h
		h.next = next
		return &h
	}, nil
}

// responseHandler edits the header of each response just before it is sent. It is
// also a plugins.RawResponseEditor, with the same result on the wire form.
type responseHandler struct {
	edit func(http.Header)
	wire *lazyWire
	next http.Handler
}

var _ plugins.RawResponseEditor = (*responseHandler)(nil)

func (h *responseHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &respwriter.Writer{ResponseWriter: w, Edit: h.edit}
	h.next.ServeHTTP(rw, r)
	rw.Finish()
}

// FilterRaw passes the request on: the data plane makes the edits as it writes the
// response's head.
func (h *responseHandler) FilterRaw(plugins.RawRequest, *reqctx.Info, *plugins.ResponseFields) *plugins.Answer {
	return nil
}

// Next is the handler ServeHTTP passes requests on to.
func (h *responseHandler) Next() http.Handler { return h.next }

// ResponseEditedNames are the canonical names of the fields the modifier sets, adds
// to or removes.
func (h *responseHandler) ResponseEditedNames() []string { return h.wire.get().names }

// AppendEditedResponse appends the field lines of block after the edits.
func (h *responseHandler) AppendEditedResponse(b, block []byte) []byte {
	return h.wire.get().appendEditedBlock(b, block)
}

// EditHeader makes the edits on h.
func (h *responseHandler) EditHeader(header http.Header) { h.edit(header) }
