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

// tlsSource is the template of the generated snapshot server certificate;
// webhookSource the template of the webhook's generated certificate and of its
// configuration, whose caBundle is that certificate's CA.
const (
	tlsSource     = "# Source: switchyard/templates/controller-tls.yaml"
	webhookSource = "# Source: switchyard/templates/webhook.yaml"
)

// generatedKeys matches the lines of the generated certificate Secrets whose values
// change on every render, and caBundleLine the webhook configuration's CA.
var (
	generatedKeys = regexp.MustCompile(`(?m)^(  (?:ca\.crt|tls\.crt|tls\.key): ).+$`)
	caBundleLine  = regexp.MustCompile(`(?m)^(      caBundle: ).+$`)
)

// TestGolden renders each values file and compares the result with
// testdata/NAME.golden.yaml (regenerate with -update and read the diff). The
// generated certificates differ on every render: they are checked for what they must
// be, then replaced by placeholders.
func TestGolden(t *testing.T) {
	for _, name := range valuesCases {
		t.Run(name, func(t *testing.T) {
			r := release{name: "sy", namespace: "switchyard-system", values: name}
			docs := documents(mustRender(t, r))
			replaceGenerated(t, docs, "sy-switchyard-controller", r.namespace, clusterDomainOf(t, name))
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

// replaceGenerated checks the generated certificates among docs and replaces them
// with placeholders: the snapshot server's is valid for the controller Service's
// names (what the gateways dial), the webhook's for the Service's names in the
// cluster (what the API server dials), and the webhook configuration trusts the CA
// that signed the webhook's.
func replaceGenerated(t *testing.T, docs []string, service, namespace, domain string) {
	t.Helper()
	svc := service + "." + namespace + ".svc"
	var webhookCA string
	for i, doc := range docs {
		switch {
		case strings.Contains(doc, tlsSource):
			checkGeneratedCertificate(t, doc, service, svc, svc+"."+domain)
			docs[i] = generatedKeys.ReplaceAllString(doc, "${1}<generated>")
		case strings.Contains(doc, webhookSource) && strings.Contains(doc, "\nkind: Secret\n"):
			webhookCA = checkGeneratedCertificate(t, doc, svc, svc+"."+domain)
			docs[i] = generatedKeys.ReplaceAllString(doc, "${1}<generated>")
		}
	}
	for i, doc := range docs {
		if strings.Contains(doc, webhookSource) && strings.Contains(doc, "\nkind: MutatingWebhookConfiguration\n") {
			m := caBundleLine.FindStringSubmatch(doc)
			if m == nil || webhookCA == "" || strings.TrimPrefix(m[0], m[1]) != webhookCA {
				t.Errorf("the webhook configuration's caBundle is not the CA of the webhook's generated certificate")
			}
			docs[i] = caBundleLine.ReplaceAllString(doc, "${1}<generated>")
		}
	}
}

// clusterDomainOf is the clusterDomain a values file sets, else the chart's default.
func clusterDomainOf(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(valuesFile(name))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		ClusterDomain string `json:"clusterDomain"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.ClusterDomain == "" {
		return "cluster.local"
	}
	return v.ClusterDomain
}

// checkGeneratedCertificate checks a generated certificate Secret: a key pair that
// matches, a serving certificate signed by the CA in ca.crt and valid for each of
// names, and no localhost. It returns ca.crt as rendered (base64).
func checkGeneratedCertificate(t *testing.T, doc string, names ...string) string {
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
	for _, name := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("the generated certificate does not verify for %s: %v", name, err)
		}
	}
	if slices.Contains(leaf.DNSNames, "localhost") {
		t.Errorf("the generated certificate names localhost: %v", leaf.DNSNames)
	}
	return secret.Data["ca.crt"]
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
