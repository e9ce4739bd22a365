package webhook

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// applyPatch applies a JSON Patch (RFC 6902) to a JSON document, as the API server
// does with a webhook's patch. It knows the two operations the webhook emits, "add"
// and "replace", and refuses anything else, a missing parent, a replace of a missing
// value or an index out of range, so that a patch the API server would refuse fails
// the test.
func applyPatch(doc []byte, patch []byte) ([]byte, error) {
	var root any
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, err
	}
	var ops []struct {
		Op    string          `json:"op"`
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(patch, &ops); err != nil {
		return nil, fmt.Errorf("patch: %w", err)
	}
	for _, op := range ops {
		var value any
		if err := json.Unmarshal(op.Value, &value); err != nil {
			return nil, fmt.Errorf("%s %s: value: %w", op.Op, op.Path, err)
		}
		if op.Op != "add" && op.Op != "replace" {
			return nil, fmt.Errorf("operation %q is not one the webhook emits", op.Op)
		}
		var err error
		if root, err = setPointer(root, pointerTokens(op.Path), value, op.Op == "add"); err != nil {
			return nil, fmt.Errorf("%s %s: %w", op.Op, op.Path, err)
		}
	}
	return json.Marshal(root)
}

// pointerTokens splits a JSON Pointer into unescaped reference tokens.
func pointerTokens(path string) []string {
	if path == "" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
	}
	return parts
}

// setPointer sets the value at tokens under node and returns the new node: an add
// inserts into arrays ("-" appends) and sets object members; a replace needs the
// value to exist.
func setPointer(node any, tokens []string, value any, add bool) (any, error) {
	if len(tokens) == 0 {
		return value, nil
	}
	head, rest := tokens[0], tokens[1:]
	switch n := node.(type) {
	case map[string]any:
		child, ok := n[head]
		if len(rest) == 0 {
			if !add && !ok {
				return nil, fmt.Errorf("replace of missing member %q", head)
			}
			n[head] = value
			return n, nil
		}
		if !ok {
			return nil, fmt.Errorf("missing member %q", head)
		}
		updated, err := setPointer(child, rest, value, add)
		n[head] = updated
		return n, err
	case []any:
		if len(rest) == 0 && add && head == "-" {
			return append(n, value), nil
		}
		i, err := strconv.Atoi(head)
		if err != nil || i < 0 || i > len(n) || (i == len(n) && !(add && len(rest) == 0)) {
			return nil, fmt.Errorf("array index %q out of range (length %d)", head, len(n))
		}
		if len(rest) == 0 {
			if add {
				return append(n[:i], append([]any{value}, n[i:]...)...), nil
			}
			n[i] = value
			return n, nil
		}
		updated, err := setPointer(n[i], rest, value, add)
		n[i] = updated
		return n, err
	}
	return nil, fmt.Errorf("%q is under a value that is neither an object nor an array", head)
}
