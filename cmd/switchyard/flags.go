package main

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// parsePortRange reads "LOW-HIGH".
func parsePortRange(v string) (int32, int32, error) {
	lo, hi, ok := strings.Cut(v, "-")
	if !ok {
		return 0, 0, fmt.Errorf("--port-range %q: want LOW-HIGH", v)
	}
	l, err1 := strconv.ParseInt(strings.TrimSpace(lo), 10, 32)
	h, err2 := strconv.ParseInt(strings.TrimSpace(hi), 10, 32)
	if err1 != nil || err2 != nil || l < 1 || h > 65535 || l > h {
		return 0, 0, fmt.Errorf("--port-range %q: want LOW-HIGH within 1-65535", v)
	}
	return int32(l), int32(h), nil
}

// parseSelector reads an equality-only label selector such as "a=b,c=d".
func parseSelector(v string) (map[string]string, error) {
	set, err := labels.ConvertSelectorToLabelsMap(v)
	if err != nil {
		return nil, fmt.Errorf("--edge-selector %q: %w", v, err)
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("--edge-selector is empty: the Services would select every Pod")
	}
	return set, nil
}

func corev1ServiceType(v string) corev1.ServiceType { return corev1.ServiceType(v) }
