//go:build tools

// Package kube pins the Kubernetes release whose kube-apiserver and
// kube-controller-manager the end-to-end harness builds. It lives in a module of its
// own so that the project's module stays on the k8s.io line the Gateway API
// conformance suite is built on.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
