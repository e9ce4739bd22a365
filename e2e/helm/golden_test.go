package helm_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml from the chart")

// tlsSource is the template of the generated snapshot server certificate.
const tlsSource = "# Source: switchyard/templates/controller-tls.yaml"

// generatedKeys matches the lines of the generated certificate Secret whose values
// change on every render.
var generatedKeys = regexp.MustCompile(`(?m)^(  (?:ca\.crt|tls\.crt|tls\.key): ).+$`)

// TestGolden renders each values file and compares the result with
// testdata/NAME.golden.yaml (regenerate with -update and read the diff). The
// generated certificate differs on every render: it is checked for what it must be,
// then replaced by a placeholder.
func TestGolden(t *testing.T) {
	for _, name := range valuesCases {
		t.Run(name, func(t *testing.T) {
			r := release{name: "sy", namespace: "switchyard-system", values: name}
			out := mustRender(t, r)
			docs := documents(out)
			for i, doc := range docs {
				if strings.Contains(doc, tlsSource) {
					checkGeneratedCertificate(t, doc, "sy-switchyard-controller", r.namespace)
					docs[i] = generatedKeys.ReplaceAllString(doc, "${1}<generated>")
				}
			}
			got := strings.Join(docs, "\n---") + "\n"
			path := filepath.Join("testdata", name+".golden.yaml")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("render of %s differs from %s (run with -update and read the diff):\n%s", name, path, firstDifference(string(want), got))
			}
		})
	}
}

// checkGeneratedCertificate checks the generated Secret: a key pair that matches, a
// serving certificate signed by the CA in ca.crt, valid for the controller Service's
// DNS names (the name the gateways dial).
func checkGeneratedCertificate(t *testing.T, doc, service, namespace string) {
	t.Helper()
	var secret struct {
		Type string            `json:"type"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal([]byte(doc), &secret); err != nil {
		t.Fatal(err)
	}
	if secret.Type != "kubernetes.io/tls" {
		t.Errorf("generated Secret type %q, want kubernetes.io/tls", secret.Type)
	}
	decoded := map[string][]byte{}
	for _, key := range []string{"ca.crt", "tls.crt", "tls.key"} {
		b, err := base64.StdEncoding.DecodeString(secret.Data[key])
		if err != nil || len(b) == 0 {
			t.Fatalf("generated Secret key %s is not base64 data: %v", key, err)
		}
		decoded[key] = b
	}
	if _, err := tls.X509KeyPair(decoded["tls.crt"], decoded["tls.key"]); err != nil {
		t.Fatalf("generated certificate and key do not form a pair: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(decoded["ca.crt"]) {
		t.Fatal("ca.crt holds no PEM certificate")
	}
	block, _ := pem.Decode(decoded["tls.crt"])
	if block == nil {
		t.Fatal("tls.crt holds no PEM block")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{service, service + "." + namespace + ".svc", service + "." + namespace + ".svc.cluster.local"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("the generated certificate does not verify for %s: %v", name, err)
		}
	}
	if slices.Contains(leaf.DNSNames, "localhost") {
		t.Errorf("the generated certificate names localhost: %v", leaf.DNSNames)
	}
}

// firstDifference shows where two renders first differ, with a few lines of context.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			from := max(0, i-3)
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\ncontext (got):\n" +
				strings.Join(g[from:min(len(g), i+4)], "\n")
		}
	}
	return "(no line differs)"
}
