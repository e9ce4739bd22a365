package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/api/openapi"
)

// fakeFleet is a Fleet with one replica that lags.
type fakeFleet struct{}

func (fakeFleet) Gateways() GatewaysView {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	return GatewaysView{NewestVersion: "v9", PublishedAt: at, Gateways: []GatewayView{{
		Node: "n1", Role: "edge", Instance: "abc", SchemaVersion: 3, Connected: true, ConnectedSince: at,
		SentVersion: "v9", AckedVersion: "v7", LastAck: at, BytesSent: 1234, DeltasSent: 2,
		Lag: GatewayLag{Versions: 2, Since: at, Seconds: 3.5},
	}}}
}

// fullServer is an admin server with every optional part: rollouts, a real data
// plane, a fleet and a service graph, behind a token.
func fullServer(t *testing.T) (*Server, *testGateway, string) {
	t.Helper()
	g := startGateway(t)
	state := &stateWithRollouts{}
	state.view = ConfigView{Version: "v1", Snapshot: tlsSnapshot()}
	state.ready.Store(true)
	s, base := startServer(t, Options{State: state, DataPlane: NewEngineDataPlane(g.engine), Fleet: fakeFleet{},
		Graph: fakeGraph{}, Token: "s3cret"})
	return s, g, base
}

// openAPIDoc is the part of the OpenAPI document the tests read.
type openAPIDoc struct {
	OpenAPI    string                                 `json:"openapi"`
	Paths      map[string]map[string]openAPIOperation `json:"paths"`
	Components struct {
		Schemas map[string]json.RawMessage `json:"schemas"`
	} `json:"components"`
}

type openAPIOperation struct {
	Parameters []struct {
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"parameters"`
	Responses map[string]struct {
		Ref     string `json:"$ref"`
		Content map[string]struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"content"`
	} `json:"responses"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(openapi.Document, &doc); err != nil {
		t.Fatalf("the OpenAPI document: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	return doc
}

var ginParam = regexp.MustCompile(`:([A-Za-z]+)`)

// Every handler is documented and every documented operation has a handler.
func TestOpenAPICoversEveryHandler(t *testing.T) {
	s, _, _ := fullServer(t)
	doc := loadOpenAPI(t)
	served := map[string]bool{}
	for _, r := range s.Engine().Routes() {
		served[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	for op := range served {
		if !documented[op] {
			t.Errorf("%s is served but not in the OpenAPI document", op)
		}
	}
	for op := range documented {
		if !served[op] {
			t.Errorf("%s is in the OpenAPI document but has no handler", op)
		}
	}
	if len(served) < 15 {
		t.Errorf("only %d routes: the test server lacks optional parts", len(served))
	}
}

// The path parameters of each operation are the template's, and every $ref resolves.
func TestOpenAPIIsConsistent(t *testing.T) {
	doc := loadOpenAPI(t)
	templateParam := regexp.MustCompile(`\{([^}]+)\}`)
	for path, ops := range doc.Paths {
		var want []string
		for _, m := range templateParam.FindAllStringSubmatch(path, -1) {
			want = append(want, m[1])
		}
		for method, op := range ops {
			var got []string
			for _, p := range op.Parameters {
				if p.In == "path" {
					got = append(got, p.Name)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s %s: path parameters %v, template %v", method, path, got, want)
			}
			if _, ok := op.Responses["200"]; !ok {
				t.Errorf("%s %s documents no 200 answer", method, path)
			}
		}
	}
	refs := regexp.MustCompile(`"\$ref":\s*"#/components/(schemas|responses)/([^"]+)"`)
	var raw struct {
		Components map[string]map[string]json.RawMessage `json:"components"`
	}
	if err := json.Unmarshal(openapi.Document, &raw); err != nil {
		t.Fatal(err)
	}
	for _, m := range refs.FindAllStringSubmatch(string(openapi.Document), -1) {
		if _, ok := raw.Components[m[1]][m[2]]; !ok {
			t.Errorf("$ref to %s/%s does not resolve", m[1], m[2])
		}
	}
}

func TestOpenAPIIsServed(t *testing.T) {
	_, _, base := fullServer(t)
	resp, body := call(t, http.MethodGet, base+"/api/v1/openapi.json", "")
	assertProblem(t, resp, body, http.StatusUnauthorized)
	resp, body = call(t, http.MethodGet, base+"/api/v1/openapi.json", "s3cret")
	if resp.StatusCode != http.StatusOK || body != string(openapi.Document) ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("openapi.json: %d %s %.100s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// sampleURL fills a route's parameters with values that reach its handler.
func sampleURL(base, path string, g *testGateway) string {
	r := strings.NewReplacer(":namespace", "shop", ":name", "web", ":address", url.PathEscape(g.web1))
	path = r.Replace(path)
	if strings.HasPrefix(path, "/api/v1/rollouts/") {
		path = strings.Replace(path, ":action", "pause", 1)
	}
	path = strings.Replace(path, ":action", "undrain", 1)
	if strings.HasSuffix(path, "/routes/match") {
		path += "?host=api.example.com&path=/v1"
	}
	return base + path
}

// Every /api/v1 route needs the token, reads and writes alike; probes never do.
func TestEveryAPIRouteNeedsTheToken(t *testing.T) {
	s, g, base := fullServer(t)
	for _, r := range s.Engine().Routes() {
		u := sampleURL(base, r.Path, g)
		if !strings.HasPrefix(r.Path, "/api/") {
			if resp, body := call(t, r.Method, u, ""); resp.StatusCode == http.StatusUnauthorized {
				t.Errorf("%s %s needs a token: %s", r.Method, r.Path, body)
			}
			continue
		}
		for _, token := range []string{"", "wrong", "s3cre"} {
			resp, body := call(t, r.Method, u, token)
			assertProblem(t, resp, body, http.StatusUnauthorized)
		}
		if resp, body := call(t, r.Method, u, "s3cret"); resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s with the token: %d %s", r.Method, r.Path, resp.StatusCode, body)
		}
	}
}

// The answers of every endpoint have the shapes the document gives them.
func TestAnswersMatchTheDocument(t *testing.T) {
	s, g, base := fullServer(t)
	g.send(t, "www.example.com", "/", nil)
	doc := loadOpenAPI(t)
	v := schemaValidator{schemas: doc.Components.Schemas}
	routes := s.Engine().Routes()
	sort.Slice(routes, func(i, j int) bool { return routes[i].Path < routes[j].Path })
	checked := 0
	for _, r := range routes {
		op := doc.Paths[ginParam.ReplaceAllString(r.Path, "{$1}")][strings.ToLower(r.Method)]
		media, ok := op.Responses["200"].Content["application/json"]
		if !ok || r.Path == "/api/v1/openapi.json" {
			continue
		}
		resp, body := call(t, r.Method, sampleURL(base, r.Path, g), "s3cret")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s: %d %s", r.Method, r.Path, resp.StatusCode, body)
			continue
		}
		var value any
		if err := json.Unmarshal([]byte(body), &value); err != nil {
			t.Fatalf("%s %s: %v", r.Method, r.Path, err)
		}
		for _, problem := range v.check(media.Schema, value, "") {
			t.Errorf("%s %s: %s", r.Method, r.Path, problem)
		}
		checked++
	}
	if checked < 10 {
		t.Errorf("only %d answers checked", checked)
	}
	resp, body := call(t, http.MethodGet, base+"/api/v1/nope", "s3cret")
	var value any
	if err := json.Unmarshal([]byte(body), &value); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: %d %s", resp.StatusCode, body)
	}
	for _, problem := range v.check(json.RawMessage(`{"$ref":"#/components/schemas/Problem"}`), value, "") {
		t.Errorf("problem: %s", problem)
	}
}

// schemaValidator checks JSON values against the subset of JSON Schema the
// document uses: $ref, type, properties, required, additionalProperties, items,
// enum and const.
type schemaValidator struct {
	schemas map[string]json.RawMessage
}

type jsonSchema struct {
	Ref                  string                     `json:"$ref"`
	Type                 any                        `json:"type"`
	Properties           map[string]json.RawMessage `json:"properties"`
	Required             []string                   `json:"required"`
	AdditionalProperties json.RawMessage            `json:"additionalProperties"`
	Items                json.RawMessage            `json:"items"`
	Enum                 []any                      `json:"enum"`
	Const                any                        `json:"const"`
}

func (v schemaValidator) check(raw json.RawMessage, value any, at string) []string {
	var s jsonSchema
	if err := json.Unmarshal(raw, &s); err != nil {
		return []string{fmt.Sprintf("%s: schema %s: %v", at, raw, err)}
	}
	if s.Ref != "" {
		name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
		return v.check(v.schemas[name], value, at)
	}
	if !typeAllows(s.Type, value) {
		return []string{fmt.Sprintf("%s: %T %v is not of type %v", at, value, value, s.Type)}
	}
	if len(s.Enum) > 0 && !slices.Contains(s.Enum, value) {
		return []string{fmt.Sprintf("%s: %v is not one of %v", at, value, s.Enum)}
	}
	if s.Const != nil && s.Const != value {
		return []string{fmt.Sprintf("%s: %v is not %v", at, value, s.Const)}
	}
	var problems []string
	switch val := value.(type) {
	case map[string]any:
		for _, name := range s.Required {
			if _, ok := val[name]; !ok {
				problems = append(problems, fmt.Sprintf("%s: required %s is missing", at, name))
			}
		}
		closed := string(s.AdditionalProperties) == "false"
		for key, item := range val {
			if prop, ok := s.Properties[key]; ok {
				problems = append(problems, v.check(prop, item, at+"."+key)...)
			} else if closed {
				problems = append(problems, fmt.Sprintf("%s: %s is not documented", at, key))
			}
		}
	case []any:
		if s.Items != nil {
			for i, item := range val {
				problems = append(problems, v.check(s.Items, item, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return problems
}

// typeAllows reports whether a decoded JSON value has one of the schema's types.
func typeAllows(schemaType, value any) bool {
	var types []string
	switch t := schemaType.(type) {
	case nil:
		return true
	case string:
		types = []string{t}
	case []any:
		for _, x := range t {
			types = append(types, fmt.Sprint(x))
		}
	}
	for _, t := range types {
		switch v := value.(type) {
		case nil:
			if t == "null" {
				return true
			}
		case bool:
			if t == "boolean" {
				return true
			}
		case float64:
			if t == "number" || (t == "integer" && v == float64(int64(v))) {
				return true
			}
		case string:
			if t == "string" {
				return true
			}
		case []any:
			if t == "array" {
				return true
			}
		case map[string]any:
			if t == "object" {
				return true
			}
		}
	}
	return false
}

// The validator finds what it is meant to find, so that the test above can fail.
func TestSchemaValidatorCatchesDrift(t *testing.T) {
	doc := loadOpenAPI(t)
	v := schemaValidator{schemas: doc.Components.Schemas}
	ref := func(name string) json.RawMessage {
		return json.RawMessage(`{"$ref":"#/components/schemas/` + name + `"}`)
	}
	cases := map[string]any{
		"undocumented field": map[string]any{"service": "a/b", "action": "drain", "endpoints": []any{}, "extra": 1.0},
		"missing required":   map[string]any{"service": "a/b", "endpoints": []any{}},
		"wrong enum":         map[string]any{"service": "a/b", "action": "evict", "endpoints": []any{}},
		"wrong item type":    map[string]any{"service": "a/b", "action": "drain", "endpoints": []any{"x"}},
		"wrong nested type":  map[string]any{"service": "a/b", "action": "drain", "endpoints": []any{map[string]any{"backend": "b", "address": "a", "drained": "yes", "available": 1.0}}},
	}
	for name, value := range cases {
		if problems := v.check(ref("DrainView"), value, ""); len(problems) == 0 {
			t.Errorf("%s: no problem found", name)
		}
	}
	good := map[string]any{"service": "a/b", "action": "drain", "endpoints": []any{map[string]any{"backend": "b", "address": "a", "drained": true, "available": 1.0}}}
	if problems := v.check(ref("DrainView"), good, ""); len(problems) != 0 {
		t.Errorf("a good answer: %v", problems)
	}
}

// Unknown paths, trailing slashes and wrong methods get problem details, never a
// redirect or an HTML page.
func TestBadPathsAreProblems(t *testing.T) {
	_, _, base := fullServer(t)
	notFound := []string{"/api/v1/routes/", "/api/v1/", "/api/v1", "/api/v2/config", "/API/v1/config",
		"/api/v1/backends/shop/web/endpoints/10.0.0.1:80", "/api/v1/routes/match/x", "/api/v1/gateways/n1"}
	for _, path := range notFound {
		resp, body := call(t, http.MethodGet, base+path, "s3cret")
		if p := assertProblem(t, resp, body, http.StatusNotFound); !strings.Contains(p.Detail, path) {
			t.Errorf("%s: detail %q", path, p.Detail)
		}
	}
	for _, path := range []string{"/api/v1/routes", "/api/v1/backends", "/api/v1/gateways", "/api/v1/openapi.json"} {
		resp, body := call(t, http.MethodDelete, base+path, "s3cret")
		assertProblem(t, resp, body, http.StatusMethodNotAllowed)
	}
	// A body larger than any endpoint takes is refused before it is read whole.
	big := strings.Repeat("x", maxRequestBody+1)
	resp, body := send(t, http.MethodPost, base+"/api/v1/rollouts/shop/web/pause", big,
		http.Header{"Authorization": {"Bearer s3cret"}})
	assertProblem(t, resp, body, http.StatusRequestEntityTooLarge)
}
