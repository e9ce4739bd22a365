package headers

import (
	"context"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/plugins"
)

// wireRequest is a request in its wire form: fields with canonical names, in order.
type wireRequest struct{ fields [][2]string }

func (r *wireRequest) Context() context.Context { return context.Background() }
func (r *wireRequest) RemoteAddr() string       { return "192.0.2.1:1234" }
func (r *wireRequest) RemoteIP() string         { return "192.0.2.1" }
func (r *wireRequest) Fields() int              { return len(r.fields) }

func (r *wireRequest) Field(i int) (name, value string) { return r.fields[i][0], r.fields[i][1] }

func (r *wireRequest) HeaderValue(name string) string {
	for _, f := range r.fields {
		if f[0] == name {
			return f[1]
		}
	}
	return ""
}

// editedByWire is the header a backend reads from the head the raw path sends: the
// untouched fields as received, then the edited ones.
func editedByWire(w wireEdits, req *wireRequest) http.Header {
	h := http.Header{}
	for _, f := range req.fields {
		if !slices.Contains(w.names, f[0]) {
			h[f[0]] = append(h[f[0]], f[1])
		}
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(string(w.appendFields(nil, &fieldSource{req: req})), "\r\n"), "\r\n") {
		if line == "" {
			continue
		}
		name, value, _ := strings.Cut(line, ": ")
		h[name] = append(h[name], value)
	}
	return h
}

// randomModifier sets, adds and removes a few of names, with values.
func randomModifier(rng *rand.Rand, names, values []string) *config.HeaderModifier {
	pick := func(from []string) string { return from[rng.IntN(len(from))] }
	spec := &config.HeaderModifier{}
	for range rng.IntN(3) {
		spec.Set = append(spec.Set, config.Header{Name: pick(names), Value: pick(values)})
	}
	for range rng.IntN(4) {
		spec.Add = append(spec.Add, config.Header{Name: pick(names), Value: pick(values)})
	}
	for range rng.IntN(2) {
		spec.Remove = append(spec.Remove, pick(names))
	}
	return spec
}

// TestWireEditsMatchApply compares the wire form of random modifiers' edits with
// what apply does to the same request's header, value for value, and firstValue
// with Header.Get.
func TestWireEditsMatchApply(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"X-A", "x-b", "X-C", "set-cookie", "X-D"}
	values := []string{"", "1", "two", "c=3", "a,b"}
	pick := func(from []string) string { return from[rng.IntN(len(from))] }
	for i := range 3000 {
		spec := randomModifier(rng, names, values)
		req := &wireRequest{}
		for range rng.IntN(6) {
			req.fields = append(req.fields, [2]string{http.CanonicalHeaderKey(pick(names)), pick(values)})
		}
		m := compile(spec, true)
		want := http.Header{}
		for _, f := range req.fields {
			want[f[0]] = append(want[f[0]], f[1])
		}
		m.apply(want)
		w := compileWire(m)
		if got := editedByWire(w, req); !equalHeaders(got, want) {
			t.Fatalf("case %d: modifier %+v on %q: wire edits give %q, apply %q", i, spec, req.fields, got, want)
		}
		for _, name := range w.names {
			if got := w.firstValue(&fieldSource{req: req}, name); got != want.Get(name) {
				t.Fatalf("case %d: modifier %+v on %q: first value of %s is %q, want %q", i, spec, req.fields, name, got, want.Get(name))
			}
		}
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestRequestModifierIsARawEditorUnlessItSetsHost: a Set of Host changes the
// request's authority, which the wire form's edits cannot, so only such a
// modifier's handler has no raw form.
func TestRequestModifierIsARawEditorUnlessItSetsHost(t *testing.T) {
	for _, tc := range []struct {
		spec *config.HeaderModifier
		raw  bool
	}{
		{&config.HeaderModifier{Set: []config.Header{{Name: "X-A", Value: "1"}}, Remove: []string{"x-b"}}, true},
		{&config.HeaderModifier{Set: []config.Header{{Name: "host", Value: "other.example.com"}}}, false},
	} {
		h, _ := requestChain(t, tc.spec)
		editor, ok := h.(plugins.RawRequestEditor)
		if ok != tc.raw {
			t.Errorf("modifier %+v: raw editor %v, want %v", tc.spec, ok, tc.raw)
			continue
		}
		if ok && !slices.Equal(editor.EditedNames(), []string{"X-A", "X-B"}) {
			t.Errorf("edited names %q, want X-A and X-B", editor.EditedNames())
		}
	}
}

// parseBlock reads field lines as a client's parser does: names canonical, values
// without the white space around them.
func parseBlock(t *testing.T, block []byte) http.Header {
	t.Helper()
	h := http.Header{}
	for line := range strings.SplitSeq(strings.TrimSuffix(string(block), "\r\n"), "\r\n") {
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("line %q has no colon", line)
		}
		name = http.CanonicalHeaderKey(name)
		h[name] = append(h[name], strings.Trim(value, " \t"))
	}
	return h
}

// TestWireEditsOfAResponseBlockMatchApply compares the edits of random modifiers on
// a block of response field lines, names in any case and values with white space
// around them, with what apply does to the header a client parses from the block.
func TestWireEditsOfAResponseBlockMatchApply(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"X-A", "x-a", "X-B", "Set-Cookie", "set-cookie", "X-C"}
	values := []string{"", "1", "two", "c=3", "a,b"}
	spaces := []string{"", " ", "  ", "\t"}
	pick := func(from []string) string { return from[rng.IntN(len(from))] }
	for i := range 3000 {
		spec := randomModifier(rng, names, values)
		var block []byte
		for range rng.IntN(6) {
			block = append(block, pick(names)+":"+pick(spaces)+pick(values)+pick(spaces)+"\r\n"...)
		}
		m := compile(spec, false)
		want := parseBlock(t, block)
		m.apply(want)
		w := compileWire(m)
		edited := w.appendEditedBlock([]byte("kept"), block)
		if !strings.HasPrefix(string(edited), "kept") {
			t.Fatalf("case %d: appendEditedBlock did not append: %q", i, edited)
		}
		if got := parseBlock(t, edited[len("kept"):]); !equalHeaders(got, want) {
			t.Fatalf("case %d: modifier %+v on %q: wire edits give %q, apply %q", i, spec, block, got, want)
		}
	}
}

// TestWireEditsDoNotAllocate: the raw path makes the edits on every request and
// response, into buffers it keeps.
func TestWireEditsDoNotAllocate(t *testing.T) {
	m := compile(&config.HeaderModifier{
		Set:    []config.Header{{Name: "X-Set", Value: "s"}},
		Add:    []config.Header{{Name: "X-Add", Value: "a"}, {Name: "Set-Cookie", Value: "c=1"}},
		Remove: []string{"X-Remove"},
	}, false)
	w := compileWire(m)
	req := &wireRequest{fields: [][2]string{{"X-Add", "1"}, {"X-Keep", "k"}, {"X-Remove", "r"}, {"Set-Cookie", "c=0"}}}
	block := []byte("x-add: 1\r\nX-Keep: k\r\nx-remove: r\r\nSet-Cookie: c=0\r\n")
	buf := make([]byte, 0, 1024)
	if allocs := testing.AllocsPerRun(100, func() { buf = w.appendFields(buf[:0], &fieldSource{req: req}) }); allocs != 0 {
		t.Errorf("request edits allocate %v times", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() { buf = w.appendEditedBlock(buf[:0], block) }); allocs != 0 {
		t.Errorf("response edits allocate %v times", allocs)
	}
}
