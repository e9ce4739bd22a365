package standalone_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// routeYAML is an HTTPRoute of Gateway gw with one rule, named after the route,
// sending the path prefix to port 80 of the Service.
func routeYAML(name, pathPrefix, service string) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: %s, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - name: %s
    matches: [{path: {type: PathPrefix, value: %s}}]
    backendRefs: [{name: %s, port: 80}]
`, name, name, pathPrefix, service)
}

// policyCondition is a TrafficPolicy's Accepted condition as /api/v1/status shows it.
type policyCondition struct {
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// statusProblem is one entry of the problems /api/v1/status lists.
type statusProblem struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Condition string `json:"condition"`
	Reason    string `json:"reason"`
	Message   string `json:"message"`
}

// statusView is the part of /api/v1/status the policy tests read.
type statusView struct {
	TrafficPolicies map[string]struct {
		Ancestors []struct {
			Conditions []struct {
				Type string `json:"type"`
				policyCondition
			} `json:"conditions"`
		} `json:"ancestors"`
	} `json:"trafficPolicies"`
	Problems []statusProblem `json:"problems"`
}

// statusView reads /api/v1/status.
func (g *gateway) statusView(t testing.TB) statusView {
	t.Helper()
	var view statusView
	g.adminJSON(t, "/api/v1/status", &view)
	return view
}

// policyAccepted returns the Accepted condition of TrafficPolicy default/name towards
// its first ancestor, and whether the status has one.
func (g *gateway) policyAccepted(t testing.TB, name string) (policyCondition, bool) {
	t.Helper()
	for _, a := range g.statusView(t).TrafficPolicies["default/"+name].Ancestors {
		for _, c := range a.Conditions {
			if c.Type == "Accepted" {
				return c.policyCondition, true
			}
		}
	}
	return policyCondition{}, false
}

// waitPolicyReason waits until TrafficPolicy default/name's Accepted condition has
// the reason, which also means that the configuration translated with it is live:
// standalone mode publishes a status only after applying its configuration.
func (g *gateway) waitPolicyReason(t testing.TB, name, reason string) policyCondition {
	t.Helper()
	var last policyCondition
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, ok := g.policyAccepted(t, name)
		if ok && c.Reason == reason {
			return c
		}
		last = c
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("TrafficPolicy %s: Accepted reason %q (%s), want %q", name, last.Reason, last.Message, reason)
	return last
}

// addManifest writes one more manifest file into the gateway's folder; the gateway
// picks it up without a restart.
func (g *gateway) addManifest(t testing.TB, name, body string) {
	t.Helper()
	writeFile(t, filepath.Join(g.dir, name), body)
}

// sendOutcome is what a test request got: the pod that answered, or the status.
type sendOutcome struct {
	status int
	pod    string
	header http.Header
	err    error
}

// send makes one request and reports its outcome without failing the test, so that
// it can run in goroutines.
func (g *gateway) send(method, url string, headers ...string) sendOutcome {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return sendOutcome{err: err}
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return sendOutcome{err: err}
	}
	defer resp.Body.Close()
	var e echoReply
	if resp.StatusCode == http.StatusOK && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		_ = decodeJSON(resp, &e)
	}
	return sendOutcome{status: resp.StatusCode, pod: e.Pod, header: resp.Header}
}

// tally sends n GET requests one after another and counts the answers by pod, with
// failures counted as "status NNN" or "error".
func (g *gateway) tally(url string, n int, headers ...string) map[string]int {
	counts := map[string]int{}
	for range n {
		counts[g.send(http.MethodGet, url, headers...).key()]++
	}
	return counts
}

// key names an outcome for counting: the pod, "status NNN" or "error".
func (o sendOutcome) key() string {
	switch {
	case o.err != nil:
		return "error"
	case o.status == http.StatusOK && o.pod != "":
		return o.pod
	}
	return fmt.Sprintf("status %d", o.status)
}

// decodeJSON decodes a response body into v.
func decodeJSON(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// applyManifest writes a manifest file into the gateway's folder and waits until the
// configuration it makes is in effect (its version changed). Only for edits that
// change what the gateway serves.
func (g *gateway) applyManifest(t testing.TB, name, body string) {
	t.Helper()
	before := g.configVersion(t)
	g.addManifest(t, name, body)
	waitFor(t, 10*time.Second, func() bool { return g.configVersion(t) != before })
}
