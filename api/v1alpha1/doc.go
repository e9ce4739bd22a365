// Package v1alpha1 holds Switchyard's own Kubernetes API (switchyard.dev/v1alpha1):
// TrafficPolicy, which attaches resilience policies to Gateways, HTTPRoutes and
// Services the way Gateway API policy attachment describes, and Rollout, which moves
// traffic from a stable backend to a canary step by step.
//
// +kubebuilder:object:generate=true
// +groupName=switchyard.dev
package v1alpha1
