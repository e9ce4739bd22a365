package fleet_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/controller/placement"
)

// managedService waits for the Service the controller manages for a Gateway and
// returns it once it maps the listener port.
func (e *env) managedService(ns, gateway string, port int32) *corev1.Service {
	e.t.Helper()
	var svc *corev1.Service
	waitFor(e.t, 30*time.Second, "managed Service of Gateway "+gateway, func() bool {
		s, err := e.kube.CoreV1().Services(ns).Get(context.Background(), placement.ServiceName(gateway), metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, p := range s.Spec.Ports {
			if p.Port == port && p.TargetPort.IntVal != 0 {
				svc = s
				return true
			}
		}
		return false
	})
	return svc
}

func targetPort(svc *corev1.Service, port int32) int32 {
	for _, p := range svc.Spec.Ports {
		if p.Port == port {
			return p.TargetPort.IntVal
		}
	}
	return 0
}

// TestServicePlacement runs the controller in Service mode: two Gateways on port 80
// each get a managed Service whose port 80 leads to a container port of its own on
// the shared replicas, the Gateways report the Services' addresses, and deleting a
// Gateway removes its Service.
func TestServicePlacement(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createClass()
	e.createApp("default", "web", 1)
	e.createApp("default", "api", 1)
	args := e.controllerArgs("controller-a", e.snapAddr)
	for i := range args {
		if args[i] == "--address-pool" {
			args[i+1] = ""
		}
	}
	start(t, e.binary, append(args, "--placement", "service", "--service-type", "ClusterIP", "--port-range", "21000-21099")...)
	e.startGateway("node-a")
	e.createGateway("default", "blue", "", 80)
	e.createGateway("default", "green", "", 80)
	blue, green := e.managedService("default", "blue", 80), e.managedService("default", "green", 80)
	bluePort, greenPort := targetPort(blue, 80), targetPort(green, 80)
	if bluePort == greenPort || bluePort < 21000 || bluePort > 21099 || greenPort < 21000 || greenPort > 21099 {
		t.Fatalf("container ports blue %d green %d: want two distinct ports in 21000-21099", bluePort, greenPort)
	}
	if got := e.gatewayAddress("default", "blue"); got != blue.Spec.ClusterIP {
		t.Errorf("Gateway blue reports address %s, want its Service's ClusterIP %s", got, blue.Spec.ClusterIP)
	}
	e.createRoute(route("default", "web", "default", "blue", "/", "web"))
	e.createRoute(route("default", "api", "default", "green", "/", "api"))
	waitFor(t, 30*time.Second, "each Gateway's container port serves its own route", func() bool {
		c1, pod1, err1 := httpGet(client, fmt.Sprintf("127.0.0.1:%d", bluePort), "", "/")
		c2, pod2, err2 := httpGet(client, fmt.Sprintf("127.0.0.1:%d", greenPort), "", "/")
		return err1 == nil && err2 == nil && c1 == http.StatusOK && c2 == http.StatusOK &&
			len(pod1) > 4 && pod1[:4] == "web-" && len(pod2) > 4 && pod2[:4] == "api-"
	})

	must(t, e.gw.GatewayV1().Gateways("default").Delete(ctx, "green", metav1.DeleteOptions{}))
	waitFor(t, 30*time.Second, "green's Service deleted", func() bool {
		_, err := e.kube.CoreV1().Services("default").Get(ctx, placement.ServiceName("green"), metav1.GetOptions{})
		return err != nil
	})
	waitFor(t, 30*time.Second, "green's container port closed", func() bool {
		_, _, err := httpGet(client, fmt.Sprintf("127.0.0.1:%d", greenPort), "", "/")
		return err != nil
	})
}
