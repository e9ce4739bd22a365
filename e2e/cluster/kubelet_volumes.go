package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// defaultTokenSeconds is how long a projected ServiceAccount token lives when its
// source names no expirationSeconds, as in the API.
const defaultTokenSeconds = 3600

// materialiseVolumes writes the Pod's Secret, ConfigMap, downward API, projected and
// emptyDir volumes into folders under dir and returns each volume's folder by name.
// Projected ServiceAccount tokens are requested from the API server (TokenRequest,
// bound to the Pod, with the source's audience and lifetime) as a kubelet does; they
// are not refreshed, which tests shorter than the token's lifetime never notice.
// Other volume kinds (hostPath, persistent volumes) are not materialised.
func (k *Kubelet) materialiseVolumes(ctx context.Context, pod *corev1.Pod, ip, dir string) (map[string]string, error) {
	folders := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		var files map[string][]byte
		var err error
		switch {
		case v.Secret != nil:
			optional := v.Secret.Optional != nil && *v.Secret.Optional
			files, err = k.secretFiles(ctx, pod.Namespace, v.Secret.SecretName, v.Secret.Items, optional)
		case v.ConfigMap != nil:
			optional := v.ConfigMap.Optional != nil && *v.ConfigMap.Optional
			files, err = k.configMapFiles(ctx, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, optional)
		case v.DownwardAPI != nil:
			files, err = k.downwardFiles(pod, v.DownwardAPI.Items, ip)
		case v.Projected != nil:
			files, err = k.projectedFiles(ctx, pod, v.Projected.Sources, ip)
		case v.EmptyDir != nil:
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		folder := filepath.Join(dir, "volumes", v.Name)
		if err := writeFiles(folder, files); err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		folders[v.Name] = folder
	}
	return folders, nil
}

// projectedFiles gathers the files of every source of a projected volume.
func (k *Kubelet) projectedFiles(ctx context.Context, pod *corev1.Pod, sources []corev1.VolumeProjection, ip string) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, src := range sources {
		var part map[string][]byte
		var err error
		switch {
		case src.ServiceAccountToken != nil:
			var token string
			token, err = k.serviceAccountToken(ctx, pod, src.ServiceAccountToken)
			part = map[string][]byte{src.ServiceAccountToken.Path: []byte(token)}
		case src.Secret != nil:
			optional := src.Secret.Optional != nil && *src.Secret.Optional
			part, err = k.secretFiles(ctx, pod.Namespace, src.Secret.Name, src.Secret.Items, optional)
		case src.ConfigMap != nil:
			optional := src.ConfigMap.Optional != nil && *src.ConfigMap.Optional
			part, err = k.configMapFiles(ctx, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, optional)
		case src.DownwardAPI != nil:
			part, err = k.downwardFiles(pod, src.DownwardAPI.Items, ip)
		default:
			return nil, fmt.Errorf("projected sources other than serviceAccountToken, secret, configMap and downwardAPI are not supported")
		}
		if err != nil {
			return nil, err
		}
		for path, data := range part {
			files[path] = data
		}
	}
	return files, nil
}

// serviceAccountToken requests a token of the Pod's ServiceAccount, bound to the Pod.
func (k *Kubelet) serviceAccountToken(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (string, error) {
	account := pod.Spec.ServiceAccountName
	if account == "" {
		account = "default"
	}
	seconds := int64(defaultTokenSeconds)
	if src.ExpirationSeconds != nil {
		seconds = *src.ExpirationSeconds
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &seconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	res, err := k.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, account, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token of ServiceAccount %s/%s: %w", pod.Namespace, account, err)
	}
	return res.Status.Token, nil
}

// downwardFiles renders downward API items; resource fields are not supported.
func (k *Kubelet) downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, ip string) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, item := range items {
		if item.FieldRef == nil {
			return nil, fmt.Errorf("downward API file %s: only fieldRef is supported", item.Path)
		}
		value, err := podField(pod, item.FieldRef.FieldPath, ip, k.NodeIP())
		if err != nil {
			return nil, fmt.Errorf("downward API file %s: %w", item.Path, err)
		}
		files[item.Path] = []byte(value)
	}
	return files, nil
}

// secretFiles reads a Secret's keys as files; a missing optional Secret has none.
func (k *Kubelet) secretFiles(ctx context.Context, namespace, name string, items []corev1.KeyToPath, optional bool) (map[string][]byte, error) {
	data, err := k.secretData(ctx, namespace, name, optional)
	if err != nil {
		return nil, err
	}
	return keyFiles(data, items, optional)
}

// configMapFiles reads a ConfigMap's keys as files; a missing optional ConfigMap has
// none.
func (k *Kubelet) configMapFiles(ctx context.Context, namespace, name string, items []corev1.KeyToPath, optional bool) (map[string][]byte, error) {
	data, err := k.configMapData(ctx, namespace, name, optional)
	if err != nil {
		return nil, err
	}
	return keyFiles(data, items, optional)
}

// keyFiles maps data to files: the listed items under their paths, or every key under
// its own name when no item is listed. A listed key that is missing is an error unless
// the source is optional.
func keyFiles(data map[string][]byte, items []corev1.KeyToPath, optional bool) (map[string][]byte, error) {
	files := map[string][]byte{}
	if len(items) == 0 {
		for key, value := range data {
			files[key] = value
		}
		return files, nil
	}
	for _, item := range items {
		value, ok := data[item.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("key %q is missing", item.Key)
		}
		files[item.Path] = value
	}
	return files, nil
}

// writeFiles writes files into folder, refusing paths that would leave it.
func writeFiles(folder string, files map[string][]byte) error {
	if err := os.MkdirAll(folder, 0o700); err != nil {
		return err
	}
	for path, value := range files {
		if !filepath.IsLocal(path) {
			return fmt.Errorf("path %q leaves the volume", path)
		}
		file := filepath.Join(folder, path)
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(file, value, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// secretData reads a Secret's data; a missing optional Secret reads as empty.
func (k *Kubelet) secretData(ctx context.Context, namespace, name string, optional bool) (map[string][]byte, error) {
	s, err := k.client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, err)
	}
	return s.Data, nil
}

// configMapData reads a ConfigMap's text and binary data together; a missing
// optional ConfigMap reads as empty.
func (k *Kubelet) configMapData(ctx context.Context, namespace, name string, optional bool) (map[string][]byte, error) {
	cm, err := k.client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("configmap %s/%s: %w", namespace, name, err)
	}
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for key, value := range cm.Data {
		data[key] = []byte(value)
	}
	for key, value := range cm.BinaryData {
		data[key] = value
	}
	return data, nil
}
