// Package files is the standalone configuration source: it reads Kubernetes manifests
// (Gateway API kinds, Services, EndpointSlices, Secrets, ConfigMaps, Namespaces, and
// switchyard.dev/v1alpha1 TrafficPolicies and Rollouts) from YAML files
// into a translate.Input, and watches them for edits.
//
// A path is either one YAML file or a folder. In a folder, every *.yaml and *.yml file
// directly inside it is read, in lexical order of file name; sub-folders and hidden
// files (whose names start with a dot, such as editor lock files) are ignored. Each file
// may hold several documents separated by "---" lines; empty documents are skipped.
//
// Documents are decoded strictly, so a misspelled field is an error rather than being
// silently dropped. Because the objects never pass through an API server, the loader
// applies the defaults a server would: a namespaced object without a namespace is put
// in "default", and metadata.generation is set to 1 when unset, so that the
// observedGeneration in the status it reports has a meaningful value.
package files

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

// defaultNamespace is where namespaced objects without a namespace go, as with kubectl.
const defaultNamespace = "default"

// documentSeparator matches the "---" line between YAML documents, with an optional
// trailing comment.
var documentSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// Load reads the manifests at path (a YAML file or a folder of them; see the package
// documentation) into an Input with Options.Standalone set. Every problem in every file
// is reported, each naming its file, document and object.
func Load(path string) (*translate.Input, error) {
	sources, err := readSources(path)
	if err != nil {
		return nil, err
	}
	return decodeSources(sources)
}

// decodeSources decodes files already read, as Load does.
func decodeSources(sources []source) (*translate.Input, error) {
	l := &loader{in: &translate.Input{}, seen: map[objectKey]location{}}
	for _, src := range sources {
		l.loadFile(src.name, src.data)
	}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	l.in.Options.Standalone = true
	return l.in, nil
}

// source is one file's name and content.
type source struct {
	name string
	data []byte
}

// manifestFiles lists the files that path stands for, sorted.
func manifestFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		if ext := filepath.Ext(name); ext == ".yaml" || ext == ".yml" {
			names = append(names, filepath.Join(path, name))
		}
	}
	sort.Strings(names)
	return names, nil
}

// readSources reads every file that path stands for.
func readSources(path string) ([]source, error) {
	names, err := manifestFiles(path)
	if err != nil {
		return nil, err
	}
	sources := make([]source, 0, len(names))
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		sources = append(sources, source{name: name, data: data})
	}
	return sources, nil
}

// objectKey identifies an object for duplicate detection. Versions of one kind share a
// key, since the API server stores them as one object.
type objectKey struct {
	Kind, Namespace, Name string
}

// location is where a document is: its file, 1-based index among the file's
// non-empty documents, and first line.
type location struct {
	File     string
	Document int
	Line     int
}

func (l location) String() string {
	return fmt.Sprintf("%s: document %d (line %d)", l.File, l.Document, l.Line)
}

// loader accumulates objects and errors across files.
type loader struct {
	in   *translate.Input
	seen map[objectKey]location
	errs []error
}

// loadFile decodes every document of one file.
func (l *loader) loadFile(name string, data []byte) {
	docIndex := 0
	for _, doc := range splitDocuments(data) {
		if isBlank(doc.text) {
			continue
		}
		docIndex++
		loc := location{File: name, Document: docIndex, Line: doc.line}
		if err := l.loadDocument(loc, doc.text); err != nil {
			l.errs = append(l.errs, err)
		}
	}
}

// document is one YAML document and the line of the file it starts on.
type document struct {
	text []byte
	line int
}

// splitDocuments cuts a multi-document stream at its "---" lines.
func splitDocuments(data []byte) []document {
	var docs []document
	start, line := 0, 1
	for _, sep := range documentSeparator.FindAllIndex(data, -1) {
		docs = append(docs, document{text: data[start:sep[0]], line: line})
		line += bytes.Count(data[start:sep[1]], []byte("\n")) + 1
		start = sep[1]
		if start < len(data) && data[start] == '\n' {
			start++
		}
	}
	return append(docs, document{text: data[start:], line: line})
}

// isBlank reports whether a document holds nothing but whitespace and comments.
func isBlank(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' {
			return false
		}
	}
	return true
}

// loadDocument decodes one document, applies defaults and checks for duplicates.
func (l *loader) loadDocument(loc location, doc []byte) error {
	var head struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return fmt.Errorf("%s: malformed YAML: %w", loc, err)
	}
	handler, err := lookupKind(head.APIVersion, head.Kind)
	if err != nil {
		return fmt.Errorf("%s%s: %w", loc, describe(head.Kind, head.Metadata.Namespace, head.Metadata.Name), err)
	}
	namespace := head.Metadata.Namespace
	if !handler.ClusterScoped && namespace == "" {
		namespace = defaultNamespace
	}
	what := describe(head.Kind, namespace, head.Metadata.Name)
	meta, err := handler.Decode(doc, l.in)
	if err != nil {
		return fmt.Errorf("%s%s: %w", loc, what, err)
	}
	if meta.Name == "" {
		return fmt.Errorf("%s%s: metadata.name is required", loc, what)
	}
	if handler.ClusterScoped {
		meta.Namespace = ""
	} else if meta.Namespace == "" {
		meta.Namespace = defaultNamespace
	}
	if meta.Generation == 0 {
		meta.Generation = 1
	}
	key := objectKey{Kind: head.Kind, Namespace: meta.Namespace, Name: meta.Name}
	if first, dup := l.seen[key]; dup {
		return fmt.Errorf("%s%s: duplicate object: %s %s is already defined at %s",
			loc, describe(key.Kind, key.Namespace, key.Name), key.Kind, qualifiedName(key.Namespace, key.Name), first)
	}
	l.seen[key] = loc
	return nil
}

// lookupKind finds the handler of a document's type or explains why there is none.
func lookupKind(apiVersion, kind string) (kindHandler, error) {
	if apiVersion == "" || kind == "" {
		return kindHandler{}, fmt.Errorf("apiVersion and kind are required; supported kinds are %s", supportedKinds())
	}
	if h, ok := kinds[typeKey{APIVersion: apiVersion, Kind: kind}]; ok {
		return h, nil
	}
	if versions := apiVersionsOf(kind); len(versions) > 0 {
		return kindHandler{}, fmt.Errorf("apiVersion %s is not supported for kind %s; use %s",
			apiVersion, kind, strings.Join(versions, " or "))
	}
	return kindHandler{}, fmt.Errorf("kind %s is not supported; supported kinds are %s", kind, supportedKinds())
}

// describe names an object as far as it is known, for error messages.
func describe(kind, namespace, name string) string {
	if kind == "" {
		return ""
	}
	if name == "" {
		return " " + kind
	}
	return " " + kind + " " + qualifiedName(namespace, name)
}

func qualifiedName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}
