package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Path is where the API server sends Pod AdmissionReviews.
const Path = "/mutate-pods"

// MaxRequestBytes bounds an AdmissionReview body. The API server refuses objects over
// 3 MiB, and a Pod creation's review holds one object and the caller's identity.
const MaxRequestBytes = 6 << 20

// Outcomes the handler counts besides those of Patch.
const (
	// ignored: not the creation of a Pod (the webhook configuration should not send
	// these).
	ignored Outcome = "ignored"
	// failed: the Pod could not be read or the patch not written; it is admitted
	// unchanged.
	failed Outcome = "error"
)

// Handler serves admission.k8s.io/v1 AdmissionReviews of Pod creations. It allows
// every Pod; those Config.Patch changes are allowed with that patch.
type Handler struct {
	config     Config
	logger     *slog.Logger
	admissions *prometheus.CounterVec
}

// NewHandler returns the handler for cfg. Its counter
// switchyard_webhook_pod_admissions_total{outcome} is registered on reg (nil: none);
// logger nil logs nowhere.
func NewHandler(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{config: cfg, logger: logger, admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchyard_webhook_pod_admissions_total",
		Help: "Pod creations the east-west webhook answered, by outcome (injected, host-network, opted-out, already-configured, ignored, error).",
	}, []string{"outcome"})}
	if reg != nil {
		if err := reg.Register(h.admissions); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// ServeHTTP answers one AdmissionReview. A body that is not an AdmissionReview with a
// request gets 400 (the API server then applies the failure policy, Ignore); every
// review gets an allowing response.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "AdmissionReviews are POSTed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		h.count(failed)
		status := http.StatusBadRequest
		if errors.As(err, new(*http.MaxBytesError)) {
			status = http.StatusRequestEntityTooLarge
		}
		h.logger.Warn("east-west webhook: unreadable request", "error", err, "remote", r.RemoteAddr)
		http.Error(w, "reading the AdmissionReview: "+err.Error(), status)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		h.count(failed)
		if err == nil {
			err = errors.New("no request")
		}
		h.logger.Warn("east-west webhook: not an AdmissionReview", "error", err, "remote", r.RemoteAddr)
		http.Error(w, "not an AdmissionReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	out := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: h.admit(review.Request),
	}
	b, err := json.Marshal(out)
	if err != nil {
		// An AdmissionReview of plain fields always encodes; answer like a bad request
		// rather than write half a body.
		h.logger.Error("east-west webhook: encoding the response", "error", err)
		http.Error(w, "encoding the response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// admit decides one request. It always allows: an error or a panic while reading
// the Pod or building the patch admits the Pod unchanged and is logged.
func (h *Handler) admit(req *admissionv1.AdmissionRequest) (resp *admissionv1.AdmissionResponse) {
	resp = &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	log := h.logger.With("namespace", req.Namespace, "uid", string(req.UID))
	defer func() {
		if p := recover(); p != nil {
			h.count(failed)
			log.Error("east-west webhook: admitting the Pod unchanged after an internal error", "panic", fmt.Sprint(p))
			resp = &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
		}
	}()
	if req.Operation != admissionv1.Create || req.Kind.Group != "" || req.Kind.Version != "v1" ||
		req.Kind.Kind != "Pod" || req.SubResource != "" {
		h.count(ignored)
		log.Debug("east-west webhook: not a Pod creation", "operation", req.Operation, "kind", req.Kind.String(), "subresource", req.SubResource)
		return resp
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		h.count(failed)
		log.Error("east-west webhook: admitting a Pod unchanged that could not be read", "error", err)
		return resp
	}
	log = log.With("pod", podName(&pod))
	ops, outcome := h.config.Patch(&pod)
	if len(ops) > 0 {
		patch, err := json.Marshal(ops)
		if err != nil {
			h.count(failed)
			log.Error("east-west webhook: admitting the Pod unchanged; its patch could not be encoded", "error", err)
			return resp
		}
		patchType := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &patchType
	}
	h.count(outcome)
	log.Debug("east-west webhook: Pod admitted", "outcome", outcome)
	return resp
}

func (h *Handler) count(o Outcome) { h.admissions.WithLabelValues(string(o)).Inc() }

// podName names a Pod being created, which often has only a generateName yet.
func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName + "*"
}
