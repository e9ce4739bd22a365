package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TrafficPolicy attaches resilience settings to Gateways, HTTPRoutes (or one rule of
// one, by sectionName) and Services. For each top-level field the most specific
// attachment wins: an HTTPRoute rule (its own retry and timeouts fields included)
// over an HTTPRoute over a Service over a Gateway; among equals the oldest policy,
// then the first by namespace/name.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=switchyard;gateway-api,shortName=tp
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetRefs[0].name`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TrafficPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired policy.
	Spec TrafficPolicySpec `json:"spec"`
	// Status says, per ancestor (Gateway), whether the policy is accepted.
	// +optional
	Status gwv1.PolicyStatus `json:"status,omitempty"`
}

// TrafficPolicyList is a list of TrafficPolicies.
//
// +kubebuilder:object:root=true
type TrafficPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TrafficPolicy `json:"items"`
}

// TrafficPolicySpec is what a TrafficPolicy applies to its targets.
type TrafficPolicySpec struct {
	// TargetRefs are the objects the policy applies to: Gateways, HTTPRoutes (with an
	// optional sectionName naming a rule) and Services, in the policy's namespace.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	TargetRefs []gwv1.LocalPolicyTargetReferenceWithSectionName `json:"targetRefs"`

	// Timeout bounds requests.
	// +optional
	Timeout *TimeoutPolicy `json:"timeout,omitempty"`
	// Retry retries failed requests.
	// +optional
	Retry *RetryPolicy `json:"retry,omitempty"`
	// CircuitBreaker caps what one gateway replica sends to a backend at once.
	// +optional
	CircuitBreaker *CircuitBreakerPolicy `json:"circuitBreaker,omitempty"`
	// OutlierDetection ejects endpoints that keep failing.
	// +optional
	OutlierDetection *OutlierDetectionPolicy `json:"outlierDetection,omitempty"`
	// HealthCheck probes endpoints actively.
	// +optional
	HealthCheck *HealthCheckPolicy `json:"healthCheck,omitempty"`
	// RateLimit limits request rates.
	// +optional
	RateLimit *RateLimitPolicy `json:"rateLimit,omitempty"`
}

// TimeoutPolicy bounds requests.
type TimeoutPolicy struct {
	// Request bounds a whole request, retries included.
	// +optional
	Request *gwv1.Duration `json:"request,omitempty"`
	// Idle closes a connection to the backend that carried nothing for this long.
	// +optional
	Idle *gwv1.Duration `json:"idle,omitempty"`
}

// RetryOn names a failure that is retried: connect-failure, reset, gateway-error
// (502, 503, 504 and per-try timeouts), 5xx (any 5xx and per-try timeouts), or one
// status code from 400 to 599.
//
// +kubebuilder:validation:Pattern=`^(connect-failure|reset|gateway-error|5xx|[45][0-9][0-9])$`
type RetryOn string

// RetryPolicy retries failed requests.
type RetryPolicy struct {
	// Attempts is the number of retries after the first try.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +kubebuilder:default=2
	// +optional
	Attempts *int32 `json:"attempts,omitempty"`
	// PerTryTimeout bounds each try; a try that runs out counts as a gateway error.
	// +optional
	PerTryTimeout *gwv1.Duration `json:"perTryTimeout,omitempty"`
	// RetryOn lists the failures retried.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:default={"connect-failure","reset","gateway-error"}
	// +optional
	RetryOn []RetryOn `json:"retryOn,omitempty"`
	// Backoff is the wait between tries: doubling from base up to max, with jitter,
	// never below base.
	// +optional
	Backoff *BackoffPolicy `json:"backoff,omitempty"`
	// Budget bounds retries to a share of the requests, so that they cannot
	// multiply the load on a failing backend.
	// +optional
	Budget *RetryBudgetPolicy `json:"budget,omitempty"`
	// NonIdempotent retries POST, PATCH and CONNECT requests too. Connect failures
	// are retried for every method, since the backend never saw the request.
	// +optional
	NonIdempotent bool `json:"nonIdempotent,omitempty"`
}

// BackoffPolicy is the wait between tries.
type BackoffPolicy struct {
	// Base is the first and smallest wait.
	// +kubebuilder:default="25ms"
	// +optional
	Base *gwv1.Duration `json:"base,omitempty"`
	// Max caps the wait.
	// +kubebuilder:default="250ms"
	// +optional
	Max *gwv1.Duration `json:"max,omitempty"`
}

// RetryBudgetPolicy bounds retries over a sliding ten-second window, per backend and
// replica.
type RetryBudgetPolicy struct {
	// Percent of requests that may be retries.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +kubebuilder:default=20
	// +optional
	Percent *int32 `json:"percent,omitempty"`
	// MinRetriesPerSecond are allowed whatever the percentage.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=10
	// +optional
	MinRetriesPerSecond *int32 `json:"minRetriesPerSecond,omitempty"`
}

// CircuitBreakerPolicy caps what one replica sends to a backend at once; requests
// over a cap are answered 503 at once.
type CircuitBreakerPolicy struct {
	// MaxConnections caps the connections to the backend.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxConnections *int32 `json:"maxConnections,omitempty"`
	// MaxPendingRequests caps the requests waiting for a connection.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxPendingRequests *int32 `json:"maxPendingRequests,omitempty"`
	// MaxRequests caps the requests in flight.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxRequests *int32 `json:"maxRequests,omitempty"`
	// MaxRetries caps the retries in flight.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxRetries *int32 `json:"maxRetries,omitempty"`
}

// OutlierDetectionPolicy ejects endpoints that keep failing.
type OutlierDetectionPolicy struct {
	// Consecutive5xx ejects an endpoint after this many 5xx answers in a row.
	// +kubebuilder:validation:Minimum=1
	// +optional
	Consecutive5xx *int32 `json:"consecutive5xx,omitempty"`
	// ConsecutiveGatewayErrors ejects an endpoint after this many 502, 503, 504
	// answers or connection failures in a row.
	// +kubebuilder:validation:Minimum=1
	// +optional
	ConsecutiveGatewayErrors *int32 `json:"consecutiveGatewayErrors,omitempty"`
	// Interval is how often ejections are reviewed.
	// +kubebuilder:default="10s"
	// +optional
	Interval *gwv1.Duration `json:"interval,omitempty"`
	// BaseEjectionTime is the first ejection's length; repeats grow it.
	// +kubebuilder:default="30s"
	// +optional
	BaseEjectionTime *gwv1.Duration `json:"baseEjectionTime,omitempty"`
	// MaxEjectionPercent caps the share of a backend's endpoints ejected at once.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +kubebuilder:default=50
	// +optional
	MaxEjectionPercent *int32 `json:"maxEjectionPercent,omitempty"`
}

// HealthCheckPolicy probes endpoints with HTTP GETs.
type HealthCheckPolicy struct {
	// Path is requested on each endpoint; a 2xx answer is healthy.
	// +kubebuilder:validation:Pattern=`^/`
	Path string `json:"path"`
	// Interval between probes.
	// +kubebuilder:default="5s"
	// +optional
	Interval *gwv1.Duration `json:"interval,omitempty"`
	// Timeout of one probe.
	// +kubebuilder:default="1s"
	// +optional
	Timeout *gwv1.Duration `json:"timeout,omitempty"`
	// HealthyThreshold is how many passing probes in a row make an endpoint healthy.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=2
	// +optional
	HealthyThreshold *int32 `json:"healthyThreshold,omitempty"`
	// UnhealthyThreshold is how many failing probes in a row make it unhealthy.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=3
	// +optional
	UnhealthyThreshold *int32 `json:"unhealthyThreshold,omitempty"`
}

// RateLimitMode says where buckets live.
// +kubebuilder:validation:Enum=Global;Local
type RateLimitMode string

// RateLimitFailureMode says what Global mode does while Redis is unreachable.
// +kubebuilder:validation:Enum=LocalFallback;Allow;Deny
type RateLimitFailureMode string

// RateLimitKeyType says what requests are counted by.
// +kubebuilder:validation:Enum=ClientIP;Header;Route;Caller
type RateLimitKeyType string

// RateLimitPolicy limits request rates with token buckets.
type RateLimitPolicy struct {
	// Mode is Global (buckets in Redis, shared by all replicas) or Local (each
	// replica allows the whole limit).
	// +kubebuilder:default=Local
	// +optional
	Mode RateLimitMode `json:"mode,omitempty"`
	// FailureMode applies in Global mode while Redis is unreachable: LocalFallback
	// enforces the limit divided by the live replicas, Allow admits, Deny answers 429.
	// +kubebuilder:default=LocalFallback
	// +optional
	FailureMode RateLimitFailureMode `json:"failureMode,omitempty"`
	// Rules are the limits; a request must fit every one.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Rules []RateLimitRule `json:"rules"`
}

// RateLimitRule is one token bucket per key: it holds requests+burst tokens, starts
// full and refills requests per `per`.
type RateLimitRule struct {
	// Key is what requests are counted by.
	Key RateLimitKey `json:"key"`
	// Requests is the refill per period.
	// +kubebuilder:validation:Minimum=1
	Requests int64 `json:"requests"`
	// Per is the refill period.
	Per gwv1.Duration `json:"per"`
	// Burst is how many requests beyond Requests the bucket holds.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Burst int64 `json:"burst,omitempty"`
}

// RateLimitKey is what a rule counts requests by.
type RateLimitKey struct {
	// Type is ClientIP (the TCP peer, or the right-most untrusted X-Forwarded-For hop
	// behind trusted proxies), Header (requests without it share one bucket), Route,
	// or Caller (east-west: the calling workload, as the node replica identifies it
	// from its node's Pods; requests of no known caller count by ClientIP).
	Type RateLimitKeyType `json:"type"`
	// Name is the header, for Type Header.
	// +optional
	Name string `json:"name,omitempty"`
}
