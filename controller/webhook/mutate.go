// Package webhook is the controller's mutating admission webhook for east-west
// traffic: Pods created in a namespace labelled switchyard.dev/east-west=enabled get
// environment variables that send their plain-HTTP requests through the node replica
// of their node (HTTP_PROXY=http://$(HOST_IP):15001), and a NO_PROXY list that keeps
// loopback and the Kubernetes API server out of it. The namespace selection is the
// MutatingWebhookConfiguration's (the Helm chart makes it); this package decides what
// to change in each Pod and serves the AdmissionReview API over HTTPS.
//
// The webhook never refuses a Pod: anything it cannot handle is admitted unchanged,
// and the configuration's failurePolicy Ignore admits Pods while no controller answers.
package webhook

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

const (
	// Label is the namespace label that opts a namespace in (value LabelEnabled), and
	// the Pod label that keeps a Pod out (value AnnotationDisabled) through the
	// webhook configuration's objectSelector.
	Label = "switchyard.dev/east-west"
	// LabelEnabled is the namespace label value that opts a namespace in.
	LabelEnabled = "enabled"
	// Annotation on a Pod: AnnotationDisabled keeps the Pod unchanged; the webhook
	// writes AnnotationInjected on every Pod it changed.
	Annotation = "switchyard.dev/east-west"
	// AnnotationDisabled opts one Pod out.
	AnnotationDisabled = "disabled"
	// AnnotationInjected records that the webhook added the proxy variables.
	AnnotationInjected = "injected"
	// DefaultProxyPort is the node replicas' east-west port.
	DefaultProxyPort = 15001
)

// hostIPVar holds the node's address, from the downward API; fallbackHostIPVar is
// used instead when a container already has a HOST_IP of another meaning.
const (
	hostIPVar         = "HOST_IP"
	fallbackHostIPVar = "SWITCHYARD_HOST_IP"
	hostIPFieldPath   = "status.hostIP"
)

// defaultNoProxy is what every injected NO_PROXY holds, before Config.NoProxy.
//
// The API server must not be reached through the node replica. Clients in a Pod find
// it at $KUBERNETES_SERVICE_HOST, which the kubelet adds to every container after the
// Pod is admitted, so its value is unknown here; but the kubelet expands "$(NAME)"
// references in env values with the Service variables as a source too (the
// default/kubernetes ones even when enableServiceLinks is false), so the reference
// below becomes the API server's cluster IP in the running container. A kubelet that
// does not provide the variable leaves the reference as written, an entry that
// matches no host. The names cover clients that address the API server by its
// Service name; Config.NoProxy adds the name with the cluster domain (the chart passes
// kubernetes.default.svc.<clusterDomain>) and anything else, such as the Service CIDR.
// In practice client-go speaks HTTPS and no HTTPS_PROXY is set, so this matters to
// plain-HTTP clients and to Pods that set HTTPS_PROXY themselves.
var defaultNoProxy = []string{
	"localhost", "127.0.0.1", "::1",
	"$(KUBERNETES_SERVICE_HOST)", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
}

// Config says what the webhook injects.
type Config struct {
	// ProxyPort is the node replicas' port that HTTP_PROXY names; 0 means
	// DefaultProxyPort.
	ProxyPort int
	// NoProxy are more NO_PROXY entries (host names, domains, IP addresses, CIDRs),
	// after the built-in ones.
	NoProxy []string
}

// Validate checks the port and the entries.
func (c Config) Validate() error {
	if c.ProxyPort < 0 || c.ProxyPort > 65535 {
		return fmt.Errorf("proxy port %d is not in 1-65535", c.ProxyPort)
	}
	for _, e := range c.NoProxy {
		if strings.TrimSpace(e) == "" || strings.ContainsAny(e, ", \t") {
			return fmt.Errorf("NO_PROXY entry %q: want one host, domain, address or CIDR", e)
		}
	}
	return nil
}

func (c Config) port() int {
	if c.ProxyPort == 0 {
		return DefaultProxyPort
	}
	return c.ProxyPort
}

// PatchOperation is one JSON Patch (RFC 6902) operation.
type PatchOperation struct {
	// Op is "add" or "replace".
	Op string `json:"op"`
	// Path is a JSON Pointer (RFC 6901) into the Pod.
	Path string `json:"path"`
	// Value is the value added or replaced.
	Value any `json:"value"`
}

// Outcome says what Patch decided for a Pod, for logs and metrics.
type Outcome string

// The outcomes of Patch.
const (
	// Injected: at least one container got the proxy variables.
	Injected Outcome = "injected"
	// SkippedHostNetwork: the Pod uses the node's network, where the node replica's
	// caller identity (by Pod address) cannot tell it apart.
	SkippedHostNetwork Outcome = "host-network"
	// SkippedOptOut: the Pod is annotated switchyard.dev/east-west: disabled.
	SkippedOptOut Outcome = "opted-out"
	// SkippedConfigured: every container already sets HTTP_PROXY (or has none).
	SkippedConfigured Outcome = "already-configured"
)

// Patch returns the JSON Patch that opts pod into east-west traffic, and why it is
// empty when it is.
func (c Config) Patch(pod *corev1.Pod) ([]PatchOperation, Outcome) {
	if pod.Spec.HostNetwork {
		return nil, SkippedHostNetwork
	}
	if pod.Annotations[Annotation] == AnnotationDisabled {
		return nil, SkippedOptOut
	}
	var ops []PatchOperation
	for i := range pod.Spec.InitContainers {
		ops = append(ops, c.containerPatch(fmt.Sprintf("/spec/initContainers/%d/env", i), &pod.Spec.InitContainers[i])...)
	}
	for i := range pod.Spec.Containers {
		ops = append(ops, c.containerPatch(fmt.Sprintf("/spec/containers/%d/env", i), &pod.Spec.Containers[i])...)
	}
	if len(ops) == 0 {
		return nil, SkippedConfigured
	}
	if pod.Annotations == nil {
		ops = append(ops, PatchOperation{Op: "add", Path: "/metadata/annotations", Value: map[string]string{Annotation: AnnotationInjected}})
	} else {
		ops = append(ops, PatchOperation{Op: "add", Path: "/metadata/annotations/" + escapePointer(Annotation), Value: AnnotationInjected})
	}
	return ops, Injected
}

// containerPatch is the patch of one container's env at envPath: nothing when the
// container already chose a proxy, else the node's address (unless it has it), the
// proxy variables, and NO_PROXY merged with what the container had.
func (c Config) containerPatch(envPath string, ctr *corev1.Container) []PatchOperation {
	env := ctr.Env
	if indexOf(env, "HTTP_PROXY") >= 0 || indexOf(env, "http_proxy") >= 0 {
		return nil
	}
	var added []corev1.EnvVar
	hostVar, ok := hostIPVariable(env)
	if !ok {
		return nil
	}
	if indexOf(env, hostVar) < 0 {
		// Appended after every existing variable, and before the proxy variables that
		// refer to it: the kubelet expands a reference only to a variable defined earlier.
		added = append(added, corev1.EnvVar{Name: hostVar, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: hostIPFieldPath}}})
	}
	proxy := "http://$(" + hostVar + "):" + strconv.Itoa(c.port())
	added = append(added, corev1.EnvVar{Name: "HTTP_PROXY", Value: proxy}, corev1.EnvVar{Name: "http_proxy", Value: proxy})
	replaced := map[int]string{}
	if noProxy, ok := c.mergedNoProxy(env); ok {
		// Both spellings carry the whole list: curl reads only the lower-case one, Go
		// prefers the upper-case one.
		for _, name := range []string{"NO_PROXY", "no_proxy"} {
			if i := indexOf(env, name); i >= 0 {
				if env[i].Value != noProxy {
					replaced[i] = noProxy
				}
			} else {
				added = append(added, corev1.EnvVar{Name: name, Value: noProxy})
			}
		}
	}
	if len(env) == 0 {
		return []PatchOperation{{Op: "add", Path: envPath, Value: added}}
	}
	var ops []PatchOperation
	for _, i := range slices.Sorted(maps.Keys(replaced)) {
		// "add" sets an object member whether or not it exists; "replace" needs it to
		// exist, and an empty value is left out of the Pod's JSON.
		ops = append(ops, PatchOperation{Op: "add", Path: fmt.Sprintf("%s/%d/value", envPath, i), Value: replaced[i]})
	}
	for _, v := range added {
		ops = append(ops, PatchOperation{Op: "add", Path: envPath + "/-", Value: v})
	}
	return ops
}

// hostIPVariable picks the variable that holds the node's address: HOST_IP, unless
// the container defines HOST_IP otherwise, then SWITCHYARD_HOST_IP. It reports false
// when both names are taken by something else, and the container is left alone.
func hostIPVariable(env []corev1.EnvVar) (string, bool) {
	for _, name := range []string{hostIPVar, fallbackHostIPVar} {
		i := indexOf(env, name)
		if i < 0 || isHostIPRef(env[i]) {
			return name, true
		}
	}
	return "", false
}

func isHostIPRef(v corev1.EnvVar) bool {
	return v.Value == "" && v.ValueFrom != nil && v.ValueFrom.FieldRef != nil && v.ValueFrom.FieldRef.FieldPath == hostIPFieldPath
}

// mergedNoProxy is the container's NO_PROXY and no_proxy entries, then the built-in
// ones and Config.NoProxy, without repeats. It reports false when either variable
// comes from a ConfigMap, Secret or field, whose value is unknown here: the
// container's own list is then kept as it is.
func (c Config) mergedNoProxy(env []corev1.EnvVar) (string, bool) {
	var entries []string
	for _, name := range []string{"NO_PROXY", "no_proxy"} {
		i := indexOf(env, name)
		if i < 0 {
			continue
		}
		if env[i].ValueFrom != nil {
			return "", false
		}
		entries = append(entries, strings.Split(env[i].Value, ",")...)
	}
	entries = append(entries, defaultNoProxy...)
	entries = append(entries, c.NoProxy...)
	var out []string
	for _, e := range entries {
		if e = strings.TrimSpace(e); e != "" && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return strings.Join(out, ","), true
}

// indexOf is the index of the last variable named name (the one that wins in the
// kubelet), or -1.
func indexOf(env []corev1.EnvVar, name string) int {
	for i := len(env) - 1; i >= 0; i-- {
		if env[i].Name == name {
			return i
		}
	}
	return -1
}

// escapePointer escapes a JSON Pointer reference token (RFC 6901).
func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
