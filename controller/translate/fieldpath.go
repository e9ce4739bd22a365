package translate

import "strconv"

// fieldPath locates a field of an HTTPRoute for error messages, such as
// "spec.rules[0].matches[1].path.value". Each step lives in its caller's frame and
// points at its parent; the text is rendered only when an error is reported, so that
// valid routes, the common case, build no strings at all.
type fieldPath struct {
	parent *fieldPath
	// name is the step's field name; it may hold several dotted fields.
	name string
	// index is the list index of the step, or -1 when the step is not a list item.
	index int
}

// rootItem is the first step of a path: the index-th item of the named list.
func rootItem(name string, index int) fieldPath {
	return fieldPath{name: name, index: index}
}

// field is the named field below p.
func (p *fieldPath) field(name string) fieldPath {
	return fieldPath{parent: p, name: name, index: -1}
}

// item is the index-th item of the named list below p.
func (p *fieldPath) item(name string, index int) fieldPath {
	return fieldPath{parent: p, name: name, index: index}
}

// String renders the path.
func (p *fieldPath) String() string {
	return string(p.appendTo(make([]byte, 0, 64)))
}

func (p *fieldPath) appendTo(b []byte) []byte {
	if p.parent != nil {
		b = p.parent.appendTo(b)
		b = append(b, '.')
	}
	b = append(b, p.name...)
	if p.index >= 0 {
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(p.index), 10)
		b = append(b, ']')
	}
	return b
}
