package cluster

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// containerEnv resolves a container's environment as a kubelet does: envFrom
// sources first, then env entries in order, each of which may refer to earlier ones
// as $(NAME) and may take its value from the Pod (the downward API), a Secret or a
// ConfigMap. ip is the address the Pod is about to get.
func (k *Kubelet) containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, ip string) (map[string]string, error) {
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		data, err := k.envFromData(ctx, pod.Namespace, from)
		if err != nil {
			return nil, err
		}
		for key, value := range data {
			env[from.Prefix+key] = string(value)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = expandVars(e.Value, env)
			continue
		}
		value, err := k.envValueFrom(ctx, pod, e.ValueFrom, ip)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		env[e.Name] = value
	}
	return env, nil
}

func (k *Kubelet) envFromData(ctx context.Context, namespace string, from corev1.EnvFromSource) (map[string][]byte, error) {
	switch {
	case from.SecretRef != nil:
		optional := from.SecretRef.Optional != nil && *from.SecretRef.Optional
		return k.secretData(ctx, namespace, from.SecretRef.Name, optional)
	case from.ConfigMapRef != nil:
		optional := from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional
		return k.configMapData(ctx, namespace, from.ConfigMapRef.Name, optional)
	}
	return nil, nil
}

// envValueFrom resolves one env entry's valueFrom.
func (k *Kubelet) envValueFrom(ctx context.Context, pod *corev1.Pod, from *corev1.EnvVarSource, ip string) (string, error) {
	switch {
	case from.FieldRef != nil:
		return podField(pod, from.FieldRef.FieldPath, ip, k.NodeIP())
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		optional := ref.Optional != nil && *ref.Optional
		data, err := k.secretData(ctx, pod.Namespace, ref.Name, optional)
		return keyValue(data, ref.Key, optional, err)
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		optional := ref.Optional != nil && *ref.Optional
		data, err := k.configMapData(ctx, pod.Namespace, ref.Name, optional)
		return keyValue(data, ref.Key, optional, err)
	}
	// Resource fields and file keys have no meaning for the simulated containers.
	return "", nil
}

func keyValue(data map[string][]byte, key string, optional bool, err error) (string, error) {
	if err != nil {
		return "", err
	}
	value, ok := data[key]
	if !ok && !optional {
		return "", fmt.Errorf("key %q is missing", key)
	}
	return string(value), nil
}

// podField is the downward API: the value of one of the Pod's fields that a fieldRef
// may name.
func podField(pod *corev1.Pod, path, podIP, hostIP string) (string, error) {
	if key, ok := bracketKey(path, "metadata.labels"); ok {
		return pod.Labels[key], nil
	}
	if key, ok := bracketKey(path, "metadata.annotations"); ok {
		return pod.Annotations[key], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return podIP, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	}
	return "", fmt.Errorf("field path %q is not supported", path)
}

// bracketKey splits "prefix['key']" into key.
func bracketKey(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "']")
}

// expandVars replaces $(NAME) with NAME's value when it is defined, and $$ with $, as
// Kubernetes does for env values; undefined references stay as written.
func expandVars(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
