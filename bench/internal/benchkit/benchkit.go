// Package benchkit holds what the benchmark programs in bench/ share: rendering
// manifests for `switchyard standalone`, finding the repository, and reading the end
// of a process's log for error messages.
package benchkit

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// Manifest renders obj as a YAML document without its status and creation
// timestamp, which a manifest does not carry.
func Manifest(obj any) (string, error) {
	js, err := json.Marshal(obj)
	if err != nil {
		return "", err
	}
	var fields map[string]any
	if err := json.Unmarshal(js, &fields); err != nil {
		return "", err
	}
	delete(fields, "status")
	if meta, ok := fields["metadata"].(map[string]any); ok {
		delete(meta, "creationTimestamp")
	}
	out, err := yaml.Marshal(fields)
	return string(out), err
}

// Gateway is the Gateway "bench" in namespace with one HTTP listener, named
// "http", on 127.0.0.1:port.
func Gateway(namespace string, port int) *gwv1.Gateway {
	ipAddress := gwv1.IPAddressType
	return &gwv1.Gateway{
		TypeMeta:   metav1.TypeMeta{APIVersion: gwv1.GroupVersion.String(), Kind: "Gateway"},
		ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: namespace},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: "switchyard",
			Addresses:        []gwv1.GatewaySpecAddress{{Type: &ipAddress, Value: "127.0.0.1"}},
			Listeners:        []gwv1.Listener{{Name: "http", Protocol: gwv1.HTTPProtocolType, Port: gwv1.PortNumber(port)}},
		},
	}
}

// ModuleRoot finds the folder holding go.mod, from the working directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run from the repository")
		}
		dir = parent
	}
}

// Tail returns the last n lines of a file, for error messages; empty when the
// file cannot be read.
func Tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
