package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

var podKind = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}

// review is an AdmissionReview as the API server sends it.
func review(t *testing.T, op admissionv1.Operation, kind metav1.GroupVersionKind, object []byte) []byte {
	t.Helper()
	return mustJSON(t, admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "uid-1", Kind: kind, Operation: op, Namespace: "shop",
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Object: runtime.RawExtension{Raw: object}},
	})
}

func post(t *testing.T, h http.Handler, method string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, Path, bytes.NewReader(body)))
	return rec
}

// decodeResponse reads the AdmissionReview answer, checking the envelope the API
// server requires: the same apiVersion and kind, and the request's uid.
func decodeResponse(t *testing.T, rec *httptest.ResponseRecorder) *admissionv1.AdmissionResponse {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
		t.Fatalf("envelope %q %q, response %v", out.APIVersion, out.Kind, out.Response)
	}
	if out.Response.UID != "uid-1" || !out.Response.Allowed {
		t.Fatalf("response uid %q allowed %v, want uid-1 allowed", out.Response.UID, out.Response.Allowed)
	}
	return out.Response
}

func newTestHandler(t *testing.T) (*Handler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h, err := NewHandler(Config{}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	return h, reg
}

func TestHandlerPatchesPodCreation(t *testing.T) {
	h, reg := newTestHandler(t)
	pod := mustJSON(t, podWith(corev1.Container{Name: "app", Image: "shop"}))
	resp := decodeResponse(t, post(t, h, http.MethodPost, review(t, admissionv1.Create, podKind, pod)))
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch type %v, want JSONPatch", resp.PatchType)
	}
	out, err := applyPatch(pod, resp.Patch)
	if err != nil {
		t.Fatal(err)
	}
	var patched corev1.Pod
	if err := json.Unmarshal(out, &patched); err != nil {
		t.Fatal(err)
	}
	if got := patched.Spec.Containers[0].Env; len(got) != 5 || got[1].Name != "HTTP_PROXY" || got[1].Value != "http://$(HOST_IP):15001" {
		t.Errorf("env after the patch: %s", mustJSON(t, got))
	}
	if counted(t, h, Injected) != 1 {
		t.Error("the injection was not counted")
	}
	families, err := reg.Gather()
	if err != nil || len(families) != 1 || families[0].GetName() != "switchyard_webhook_pod_admissions_total" {
		t.Errorf("registered metrics %v (%v), want the admissions counter", families, err)
	}
}

// TestHandlerAdmitsUnchanged sends what the webhook must allow without a patch:
// requests that are not Pod creations, a Pod it cannot read, a Pod it skips.
func TestHandlerAdmitsUnchanged(t *testing.T) {
	hostNet := podWith(corev1.Container{Name: "app"})
	hostNet.Spec.HostNetwork = true
	pod := mustJSON(t, podWith(corev1.Container{Name: "app"}))
	cases := []struct {
		name    string
		op      admissionv1.Operation
		kind    metav1.GroupVersionKind
		object  []byte
		outcome Outcome
	}{
		{"update", admissionv1.Update, podKind, pod, ignored},
		{"another kind", admissionv1.Create, metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, pod, ignored},
		{"unreadable pod", admissionv1.Create, podKind, []byte(`{"spec":{"containers":"many"}}`), failed},
		{"no object", admissionv1.Create, podKind, nil, failed},
		{"host network", admissionv1.Create, podKind, mustJSON(t, hostNet), SkippedHostNetwork},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newTestHandler(t)
			resp := decodeResponse(t, post(t, h, http.MethodPost, review(t, tc.op, tc.kind, tc.object)))
			if resp.Patch != nil || resp.PatchType != nil {
				t.Errorf("patched: %s", resp.Patch)
			}
			if got := counted(t, h, tc.outcome); got != 1 {
				t.Errorf("outcome %q counted %v times, want 1", tc.outcome, got)
			}
		})
	}
}

// TestHandlerRefusesNonReviews checks the answers to what is not an AdmissionReview:
// the API server treats them as a failed call, which failurePolicy Ignore admits.
func TestHandlerRefusesNonReviews(t *testing.T) {
	h, _ := newTestHandler(t)
	if rec := post(t, h, http.MethodGet, nil); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
	for _, body := range []string{"", "not json", `{"kind":"AdmissionReview"}`} {
		if rec := post(t, h, http.MethodPost, []byte(body)); rec.Code != http.StatusBadRequest {
			t.Errorf("body %q: %d, want 400", body, rec.Code)
		}
	}
	big := append([]byte(`{"request":{"uid":"x","object":{"metadata":{"name":"`), bytes.Repeat([]byte("a"), MaxRequestBytes)...)
	if rec := post(t, h, http.MethodPost, big); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over %d bytes: %d, want 413", MaxRequestBytes, rec.Code)
	}
	if got := counted(t, h, failed); got != 4 {
		t.Errorf("%v failures counted, want 4", got)
	}
}

func TestNewHandlerRefusesBadConfig(t *testing.T) {
	if _, err := NewHandler(Config{ProxyPort: 99999}, nil, nil); err == nil || !strings.Contains(err.Error(), "99999") {
		t.Errorf("error %v", err)
	}
}

// counted reads the admissions counter of one outcome.
func counted(t *testing.T, h *Handler, o Outcome) float64 {
	t.Helper()
	var m dto.Metric
	if err := h.admissions.WithLabelValues(string(o)).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
