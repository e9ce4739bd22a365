package standalone_test

import (
	"fmt"
	"strings"
)

// gatewayYAML is a Gateway with one HTTP listener per port, bound to 127.0.0.1.
func gatewayYAML(name string, ports ...int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: %s, namespace: default}
spec:
  gatewayClassName: switchyard
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners:
`, name)
	for i, p := range ports {
		fmt.Fprintf(&b, "  - {name: http-%d, protocol: HTTP, port: %d}\n", i, p)
	}
	return b.String()
}

// serviceYAML is a Service with one port (80) and an EndpointSlice whose endpoints are
// the given loopback ports of 127.0.0.x addresses. Each port becomes its own slice,
// since a slice has one port list.
func serviceYAML(name string, appProtocol string, ports ...int) string {
	var b strings.Builder
	ap := ""
	if appProtocol != "" {
		ap = ", appProtocol: " + appProtocol
	}
	fmt.Fprintf(&b, `apiVersion: v1
kind: Service
metadata: {name: %s, namespace: default}
spec:
  ports: [{name: http, port: 80, targetPort: 8080%s}]
`, name, ap)
	for i, p := range ports {
		fmt.Fprintf(&b, `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %s-%d
  namespace: default
  labels: {kubernetes.io/service-name: %s}
addressType: IPv4
ports: [{name: http, port: %d, protocol: TCP}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
`, name, i, name, p)
	}
	return b.String()
}
