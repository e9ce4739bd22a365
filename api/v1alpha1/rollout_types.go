package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Rollout moves traffic from a stable backend to a canary in steps, checking the
// canary's errors and latency between steps. It overrides the weights of the
// targeted rules in what the gateways serve and never edits the HTTPRoute itself, so
// deleting a Promoted Rollout returns the rules to the HTTPRoute as written.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=switchyard,shortName=ro
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Step",type=integer,JSONPath=`.status.currentStep`
// +kubebuilder:printcolumn:name="Canary",type=integer,JSONPath=`.status.canaryWeight`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Rollout struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the rollout plan.
	Spec RolloutSpec `json:"spec"`
	// Status is where the rollout stands.
	// +optional
	Status RolloutStatus `json:"status,omitempty"`
}

// RolloutList is a list of Rollouts.
//
// +kubebuilder:object:root=true
type RolloutList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Rollout `json:"items"`
}

// RolloutSpec is a rollout plan.
type RolloutSpec struct {
	// TargetRef is the HTTPRoute (optionally one rule of it, by sectionName) or the
	// Service whose traffic is shifted. Without a sectionName every rule that sends
	// to the stable backend is shifted.
	TargetRef gwv1.LocalPolicyTargetReferenceWithSectionName `json:"targetRef"`
	// Stable is the backend traffic moves away from.
	Stable RolloutBackend `json:"stable"`
	// Canary is the backend traffic moves to; it takes its share of the stable's.
	Canary RolloutBackend `json:"canary"`
	// HeaderMatch sends requests with all these headers to the canary whatever the
	// step, while the rollout is live.
	// +kubebuilder:validation:MaxItems=8
	// +optional
	HeaderMatch []RolloutHeaderMatch `json:"headerMatch,omitempty"`
	// Steps are the canary weights in order. A step without pause waits for a
	// manual promote, except the last, which completes the rollout (after its pause,
	// when it has one).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Steps []RolloutStep `json:"steps"`
	// Analysis checks the canary between steps; a breach aborts the rollout.
	// +optional
	Analysis *RolloutAnalysis `json:"analysis,omitempty"`
}

// RolloutBackend is a Service and port in the Rollout's namespace.
type RolloutBackend struct {
	// Name of the Service.
	Name gwv1.ObjectName `json:"name"`
	// Port of the Service.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
}

// RolloutHeaderMatch is a header that must be present with an exact value.
type RolloutHeaderMatch struct {
	// Name of the header.
	Name gwv1.HTTPHeaderName `json:"name"`
	// Value the header must have.
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value"`
}

// RolloutStep is one weight and how long to hold it.
type RolloutStep struct {
	// Weight is the canary's percentage of the traffic.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Weight int32 `json:"weight"`
	// Pause is how long to hold the weight before the next step; without it the
	// step waits for a manual promote.
	// +optional
	Pause *gwv1.Duration `json:"pause,omitempty"`
}

// RolloutAnalysis checks the canary's requests, aggregated over all replicas.
type RolloutAnalysis struct {
	// Interval between checks.
	// +kubebuilder:default="30s"
	// +optional
	Interval *gwv1.Duration `json:"interval,omitempty"`
	// MinRequests is how many canary requests an interval needs to be judged; with
	// fewer the rollout waits.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=50
	// +optional
	MinRequests *int32 `json:"minRequests,omitempty"`
	// MaxErrorRate is the highest share of canary requests that may fail (5xx,
	// connection failures and timeouts), such as "1%".
	// +kubebuilder:validation:Pattern=`^(100|[0-9]{1,2}(\.[0-9]+)?)%$`
	// +optional
	MaxErrorRate string `json:"maxErrorRate,omitempty"`
	// MaxLatencyP99 is the highest 99th percentile latency of canary requests.
	// +optional
	MaxLatencyP99 *gwv1.Duration `json:"maxLatencyP99,omitempty"`
}

// RolloutPhase is where a rollout stands.
// +kubebuilder:validation:Enum=Progressing;Paused;Promoted;Aborted
type RolloutPhase string

// The phases of a rollout.
const (
	RolloutProgressing RolloutPhase = "Progressing"
	RolloutPaused      RolloutPhase = "Paused"
	RolloutPromoted    RolloutPhase = "Promoted"
	RolloutAborted     RolloutPhase = "Aborted"
)

// RolloutStatus is where a rollout stands.
type RolloutStatus struct {
	// Phase is Progressing, Paused, Promoted or Aborted.
	// +optional
	Phase RolloutPhase `json:"phase,omitempty"`
	// CurrentStep is the index of the step in force.
	// +optional
	CurrentStep int32 `json:"currentStep,omitempty"`
	// CanaryWeight is the canary's percentage in force.
	// +optional
	CanaryWeight int32 `json:"canaryWeight,omitempty"`
	// StepStartedAt is when the current step began.
	// +optional
	StepStartedAt *metav1.Time `json:"stepStartedAt,omitempty"`
	// Message says why the rollout is where it is (an abort's breach, say).
	// +optional
	Message string `json:"message,omitempty"`
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Accepted (the target and backends resolve) and Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
