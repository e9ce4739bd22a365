package headers

import (
	"bytes"
	"strings"
	"sync"
	"unsafe"

	"github.com/switchyard-dev/switchyard/internal/httpsyntax"

	"github.com/switchyard-dev/switchyard/plugins"
)

// The wire form of a modifier's edits. modifier.apply edits an http.Header; the raw
// path sends on the heads it received, so it needs, for each name the modifier
// touches, the field lines that name has after the edits, worked out from the lines
// as received: a request's, or a block of a response's field lines. They must match
// what apply leaves in the map, value for value: the data plane's differential
// tests send the same requests both ways.

// setCookie is the one field whose values apply keeps apart when it adds to them,
// because a cookie's value may hold commas.
const setCookie = "Set-Cookie"

// nameEdit is what a modifier does to the fields of one name.
type nameEdit struct {
	name string
	// removed is set by a Remove of the name, which runs last and wins.
	removed bool
	// set is whether a Set names it, and value the last such Set's value.
	set   bool
	value string
	// adds are the values its Adds append, in order.
	adds []string
}

// wireEdits are a modifier's edits by name, in the order the names first appear.
type wireEdits struct {
	edits []nameEdit
	// names are the edits' names, for plugins.RawRequestEditor.EditedNames.
	names []string
}

// lazyWire is a modifier's wire edits, worked out on first use: when the data plane
// builds a raw route for the modifier's rule, which it does for most rules in its
// default forwarding mode but never in the handler mode, and for no rule with a
// filter that has no raw form. Those rules should not hold edits they never use.
type lazyWire struct {
	m    *modifier
	once sync.Once
	w    wireEdits
}

func (l *lazyWire) get() *wireEdits {
	l.once.Do(func() { l.w = compileWire(l.m) })
	return &l.w
}

// compileWire groups m's edits by name. Names are canonical already (see compile).
func compileWire(m *modifier) wireEdits {
	// Sized for names that do not repeat, the usual case, which a configuration of
	// many routes feels.
	n := len(m.set) + len(m.add) + len(m.remove)
	w := wireEdits{edits: make([]nameEdit, 0, n), names: make([]string, 0, n)}
	for _, s := range m.set {
		e := w.edit(s.Name)
		e.set, e.value = true, s.Value
	}
	for _, a := range m.add {
		e := w.edit(a.Name)
		e.adds = append(e.adds, a.Value)
	}
	for _, name := range m.remove {
		w.edit(name).removed = true
	}
	return w
}

// edit returns the edit of name, adding it when there is none yet. The pointer is
// good until the next call.
func (w *wireEdits) edit(name string) *nameEdit {
	if e := w.find(name); e != nil {
		return e
	}
	w.edits = append(w.edits, nameEdit{name: name})
	w.names = append(w.names, name)
	return &w.edits[len(w.edits)-1]
}

// find returns the edit of name, or nil.
func (w *wireEdits) find(name string) *nameEdit {
	for i := range w.edits {
		if w.edits[i].name == name {
			return &w.edits[i]
		}
	}
	return nil
}

// fieldSource is the field lines of a head before the edits, read by name, in
// order: a request's, whose names are canonical, or a block of a response's, each
// line ending in CRLF, whose names may be in any case and whose values are read as
// a parser reads them, without the white space around them. It is one concrete
// type rather than an interface so that reading it allocates nothing.
type fieldSource struct {
	req   plugins.RawRequest
	block []byte
}

// each calls f with the value of each line named name, until f returns false.
func (s *fieldSource) each(name string, f func(value string) bool) {
	if s.req != nil {
		for j := range s.req.Fields() {
			if n, value := s.req.Field(j); n == name && !f(value) {
				return
			}
		}
		return
	}
	rest := s.block
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		n, value, ok := bytes.Cut(bytes.TrimSuffix(line, []byte{'\r'}), []byte{':'})
		// The value is only appended or copied, never kept, so it is shown as a
		// string without a copy.
		if ok && httpsyntax.EqualFold(n, name) && !f(unsafeString(bytes.Trim(value, " \t"))) {
			return
		}
	}
}

// appendValues appends the values of the lines named name, each after a comma
// when *joined, which it sets once it appended one.
func (s *fieldSource) appendValues(b []byte, name string, joined *bool) []byte {
	s.each(name, func(value string) bool {
		if *joined {
			b = append(b, ',')
		}
		b = append(b, value...)
		*joined = true
		return true
	})
	return b
}

// appendLines appends a field line of name for each of its values.
func (s *fieldSource) appendLines(b []byte, name string) []byte {
	s.each(name, func(value string) bool {
		b = appendField(b, name, value)
		return true
	})
	return b
}

// first returns a copy of the first value of name, if there is one.
func (s *fieldSource) first(name string) (string, bool) {
	var first string
	found := false
	s.each(name, func(value string) bool {
		first, found = strings.Clone(value), true
		return false
	})
	return first, found
}

// appendFields appends the field lines the edited names have after the edits, given
// src's lines before them: none for a removed name; for Set-Cookie a line per value;
// for any other name one line whose value joins the values with commas, as
// joinValue does.
func (w *wireEdits) appendFields(b []byte, src *fieldSource) []byte {
	for i := range w.edits {
		e := &w.edits[i]
		switch {
		case e.removed:
		case e.name == setCookie:
			if e.set {
				b = appendField(b, e.name, e.value)
			} else {
				b = src.appendLines(b, e.name)
			}
			for _, value := range e.adds {
				b = appendField(b, e.name, value)
			}
		default:
			b = append(b, e.name...)
			b = append(b, ": "...)
			b = e.appendJoined(b, src)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// appendJoined appends the one value a name other than Set-Cookie has after the
// edits, removal aside: the Set's value or the values before the edits, then the
// Adds', all joined by commas.
func (e *nameEdit) appendJoined(b []byte, src *fieldSource) []byte {
	joined := false
	if e.set {
		b = append(b, e.value...)
		joined = true
	} else {
		b = src.appendValues(b, e.name, &joined)
	}
	for _, value := range e.adds {
		if joined {
			b = append(b, ',')
		}
		b = append(b, value...)
		joined = true
	}
	return b
}

// firstValue is what http.Header.Get returns for name after apply.
func (w *wireEdits) firstValue(src *fieldSource, name string) string {
	e := w.find(name)
	switch {
	case e == nil || e.removed:
		return ""
	case e.set && (len(e.adds) == 0 || name == setCookie):
		return e.value
	case name == setCookie:
		if value, ok := src.first(name); ok {
			return value
		}
		return e.adds[0]
	}
	return string(e.appendJoined(nil, src))
}

// appendEditedBlock appends block, a response's field lines, after the edits: the
// lines of names they leave alone as they are, then the edited ones.
func (w *wireEdits) appendEditedBlock(b, block []byte) []byte {
	rest := block
	for len(rest) > 0 {
		line, after, _ := bytes.Cut(rest, []byte{'\n'})
		name, _, _ := bytes.Cut(line, []byte{':'})
		if !w.touches(name) {
			b = append(b, line...)
			b = append(b, '\n')
		}
		rest = after
	}
	return w.appendFields(b, &fieldSource{block: block})
}

// touches reports whether the edits name a field, in any case.
func (w *wireEdits) touches(name []byte) bool {
	for i := range w.edits {
		if httpsyntax.EqualFold(name, w.edits[i].name) {
			return true
		}
	}
	return false
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// unsafeString shows b as a string without a copy; b must not change while the
// string is in use.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
