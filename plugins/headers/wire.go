package headers

import "github.com/switchyard-dev/switchyard/plugins"

// The wire form of a request modifier's edits. modifier.apply edits an http.Header;
// the raw path sends on the head it received, so it needs, for each name the
// modifier touches, the field lines that name has after the edits, worked out from
// the lines as received. They must match what apply leaves in the map, value for
// value: the data plane's differential tests send the same requests both ways.

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

// compileWire groups m's edits by name. Names are canonical already (see compile).
func compileWire(m *modifier) wireEdits {
	var w wireEdits
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

// appendFields appends the field lines the edited names have after the edits, given
// req's lines as received: none for a removed name; for Set-Cookie a line per value;
// for any other name one line whose value joins the values with commas, as
// joinValue does.
func (w *wireEdits) appendFields(b []byte, req plugins.RawRequest) []byte {
	for i := range w.edits {
		e := &w.edits[i]
		switch {
		case e.removed:
		case e.name == setCookie:
			if e.set {
				b = appendField(b, e.name, e.value)
			} else {
				for j := range req.Fields() {
					if name, value := req.Field(j); name == e.name {
						b = appendField(b, e.name, value)
					}
				}
			}
			for _, value := range e.adds {
				b = appendField(b, e.name, value)
			}
		default:
			b = append(b, e.name...)
			b = append(b, ": "...)
			b = e.appendJoined(b, req)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// appendJoined appends the one value a name other than Set-Cookie has after the
// edits, removal aside: the Set's value or the values received, then the Adds', all
// joined by commas.
func (e *nameEdit) appendJoined(b []byte, req plugins.RawRequest) []byte {
	joined := false
	if e.set {
		b = append(b, e.value...)
		joined = true
	} else {
		for j := range req.Fields() {
			if name, value := req.Field(j); name == e.name {
				if joined {
					b = append(b, ',')
				}
				b = append(b, value...)
				joined = true
			}
		}
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
func (w *wireEdits) firstValue(req plugins.RawRequest, name string) string {
	e := w.find(name)
	switch {
	case e == nil || e.removed:
		return ""
	case e.set && (len(e.adds) == 0 || name == setCookie):
		return e.value
	case name == setCookie:
		for j := range req.Fields() {
			if n, value := req.Field(j); n == name {
				return value
			}
		}
		return e.adds[0]
	}
	return string(e.appendJoined(nil, req))
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}
