package translate

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

var update = flag.Bool("update", false, "rewrite the golden .out.yaml files")

// goldenNow is the clock the golden cases run at.
var goldenNow = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// redactedKey replaces private keys in golden files.
const redactedKey = "<redacted private key>"

// featureListMarker stands in golden files for the whole supportedFeatures list, so
// that claiming a feature does not rewrite every case. TestSupportedFeatures checks
// the list itself.
const featureListMarker = "<supportedFeatures>"

// goldenOutput is Output in a shape that YAML can render: maps keyed by strings.
type goldenOutput struct {
	Snapshot       *config.Snapshot                   `json:"snapshot"`
	GatewayClasses map[string]gwv1.GatewayClassStatus `json:"gatewayClasses,omitempty"`
	Gateways       map[string]gwv1.GatewayStatus      `json:"gateways,omitempty"`
	HTTPRoutes     map[string]gwv1.HTTPRouteStatus    `json:"httpRoutes,omitempty"`
	// BackendTLSPolicies is rendered only when there is one, so that cases without
	// policies keep their files.
	BackendTLSPolicies map[string]gwv1.PolicyStatus      `json:"backendTLSPolicies,omitempty"`
	ListenerSets       map[string]gwv1.ListenerSetStatus `json:"listenerSets,omitempty"`
	// TrafficPolicies and Rollouts are rendered only when there is one, like
	// BackendTLSPolicies.
	TrafficPolicies map[string]gwv1.PolicyStatus `json:"trafficPolicies,omitempty"`
	Rollouts        map[string]goldenRollout     `json:"rollouts,omitempty"`
}

// goldenRollout is a RolloutResult with field names for YAML.
type goldenRollout struct {
	Accepted      metav1.Condition `json:"accepted"`
	StableBackend string           `json:"stableBackend,omitempty"`
	CanaryBackend string           `json:"canaryBackend,omitempty"`
	// CanaryBackends is left out when it names CanaryBackend alone.
	CanaryBackends []string `json:"canaryBackends,omitempty"`
	Rules          int      `json:"rules"`
}

// renderOutput renders an Output as YAML, with private keys redacted. The Output is
// not modified.
func renderOutput(t testing.TB, out *Output) []byte {
	t.Helper()
	g := goldenOutput{
		GatewayClasses: markFeatureLists(out.GatewayClasses),
		Gateways:       map[string]gwv1.GatewayStatus{},
		HTTPRoutes:     map[string]gwv1.HTTPRouteStatus{},
		ListenerSets:   map[string]gwv1.ListenerSetStatus{},
	}
	if out.Snapshot != nil {
		raw, err := json.Marshal(out.Snapshot)
		if err != nil {
			t.Fatalf("marshal snapshot: %v", err)
		}
		g.Snapshot = &config.Snapshot{}
		if err := json.Unmarshal(raw, g.Snapshot); err != nil {
			t.Fatalf("unmarshal snapshot: %v", err)
		}
		redactKeys(g.Snapshot)
	}
	for k, v := range out.Gateways {
		g.Gateways[k.String()] = v
	}
	for k, v := range out.HTTPRoutes {
		g.HTTPRoutes[k.String()] = v
	}
	if len(out.BackendTLSPolicies) > 0 {
		g.BackendTLSPolicies = map[string]gwv1.PolicyStatus{}
		for k, v := range out.BackendTLSPolicies {
			g.BackendTLSPolicies[k.String()] = v
		}
	}
	for k, v := range out.ListenerSets {
		g.ListenerSets[k.String()] = v
	}
	if len(out.TrafficPolicies) > 0 {
		g.TrafficPolicies = map[string]gwv1.PolicyStatus{}
		for k, v := range out.TrafficPolicies {
			g.TrafficPolicies[k.String()] = v
		}
	}
	if len(out.Rollouts) > 0 {
		g.Rollouts = map[string]goldenRollout{}
		for k, v := range out.Rollouts {
			r := goldenRollout{Accepted: v.Accepted, StableBackend: v.StableBackend, CanaryBackend: v.CanaryBackend, Rules: v.Rules}
			if len(v.CanaryBackends) != 1 || v.CanaryBackends[0] != v.CanaryBackend {
				r.CanaryBackends = v.CanaryBackends
			}
			g.Rollouts[k.String()] = r
		}
	}
	b, err := yaml.Marshal(g)
	if err != nil {
		t.Fatalf("render output: %v", err)
	}
	return b
}

// markFeatureLists returns the class statuses with a supportedFeatures list equal to
// ours replaced by featureListMarker. Any other list is kept as it is, so a class
// that publishes a different list shows up in the diff.
func markFeatureLists(classes map[string]gwv1.GatewayClassStatus) map[string]gwv1.GatewayClassStatus {
	if classes == nil {
		return nil
	}
	ours := supportedFeatureList()
	out := make(map[string]gwv1.GatewayClassStatus, len(classes))
	for name, status := range classes {
		if slices.Equal(status.SupportedFeatures, ours) {
			status.SupportedFeatures = []gwv1.SupportedFeature{{Name: featureListMarker}}
		}
		out[name] = status
	}
	return out
}

func redactKeys(s *config.Snapshot) {
	for i := range s.Backends {
		if t := s.Backends[i].TLS; t != nil && t.ClientCertificate != nil {
			t.ClientCertificate.KeyPEM = redactedKey
		}
	}
	for i := range s.Listeners {
		for j := range s.Listeners[i].VirtualHosts {
			if tls := s.Listeners[i].VirtualHosts[j].TLS; tls != nil {
				for k := range tls.Certificates {
					tls.Certificates[k].KeyPEM = redactedKey
				}
			}
		}
	}
}

// reversed returns a copy of the input with every list in reverse order, to check
// that translation does not depend on input order.
func reversed(in *Input) *Input {
	c := *in
	c.GatewayClasses = reverse(in.GatewayClasses)
	c.Gateways = reverse(in.Gateways)
	c.HTTPRoutes = reverse(in.HTTPRoutes)
	c.ListenerSets = reverse(in.ListenerSets)
	c.ReferenceGrants = reverse(in.ReferenceGrants)
	c.Services = reverse(in.Services)
	c.EndpointSlices = reverse(in.EndpointSlices)
	c.Secrets = reverse(in.Secrets)
	c.Namespaces = reverse(in.Namespaces)
	c.ConfigMaps = reverse(in.ConfigMaps)
	c.BackendTLSPolicies = reverse(in.BackendTLSPolicies)
	c.TrafficPolicies = reverse(in.TrafficPolicies)
	c.Rollouts = reverse(in.Rollouts)
	return &c
}

func reverse[T any](s []T) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < 40 {
		t.Fatalf("found %d golden cases, want at least 40", len(inputs))
	}
	for _, inPath := range inputs {
		name := strings.TrimSuffix(filepath.Base(inPath), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(inPath)
			if err != nil {
				t.Fatal(err)
			}
			in, errs := decodeManifests(data)
			if len(errs) > 0 {
				t.Fatalf("decode %s: %v", inPath, errs)
			}
			in.Options.Now = goldenNow
			out := Translate(in)
			if err := out.Snapshot.Validate(); err != nil {
				t.Errorf("snapshot does not validate: %v", err)
			}
			got := renderOutput(t, out)
			if again := renderOutput(t, Translate(reversed(in))); string(again) != string(got) {
				t.Errorf("output depends on input order:\n%s\nvs\n%s", got, again)
			}
			outPath := strings.TrimSuffix(inPath, ".in.yaml") + ".out.yaml"
			if *update {
				if err := os.WriteFile(outPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(outPath)
			if err != nil {
				t.Fatalf("%v (run the test with -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("output differs from %s (run with -update after checking the change):\n%s", outPath, got)
			}
		})
	}
}

// BenchmarkTranslate translates every golden input once per iteration.
func BenchmarkTranslate(b *testing.B) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.in.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	var decoded []*Input
	for _, p := range inputs {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		in, _ := decodeManifests(data)
		decoded = append(decoded, in)
	}
	b.ResetTimer()
	for b.Loop() {
		for _, in := range decoded {
			Translate(in)
		}
	}
}
