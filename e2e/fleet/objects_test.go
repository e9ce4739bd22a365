package fleet_test

import (
	"context"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/switchyard-dev/switchyard/controller/translate"
)

// createClass creates the GatewayClass "switchyard" served by our controller.
func (e *env) createClass() {
	e.t.Helper()
	must(e.t, create(e.gw.GatewayV1().GatewayClasses().Create(context.Background(), &gwv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: "switchyard"},
		Spec:       gwv1.GatewayClassSpec{ControllerName: translate.ControllerName},
	}, metav1.CreateOptions{})))
}

// createGateway creates a Gateway of class "switchyard" with one HTTP listener per
// port (named http-<port>), and no address: the controller assigns one from its pool.
func (e *env) createGateway(ns, name string, hostname string, ports ...int32) {
	e.t.Helper()
	gw := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: gwv1.GatewaySpec{GatewayClassName: "switchyard"}}
	for _, p := range ports {
		l := gwv1.Listener{Name: gwv1.SectionName("http-" + itoa(int(p))), Protocol: gwv1.HTTPProtocolType,
			Port: gwv1.PortNumber(p), AllowedRoutes: &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: ptr(gwv1.NamespacesFromAll)}}}
		if hostname != "" {
			l.Hostname = ptr(gwv1.Hostname(hostname))
		}
		gw.Spec.Listeners = append(gw.Spec.Listeners, l)
	}
	must(e.t, create(e.gw.GatewayV1().Gateways(ns).Create(context.Background(), gw, metav1.CreateOptions{})))
}

// gatewayAddress waits for the Gateway to be Programmed with an address and returns it.
func (e *env) gatewayAddress(ns, name string) string {
	e.t.Helper()
	var addr string
	waitFor(e.t, 30*time.Second, "Gateway "+ns+"/"+name+" programmed with an address", func() bool {
		gw, err := e.gw.GatewayV1().Gateways(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil || len(gw.Status.Addresses) == 0 {
			return false
		}
		addr = gw.Status.Addresses[0].Value
		return conditionTrue(gw.Status.Conditions, "Programmed", gw.Generation)
	})
	return addr
}

// createApp creates a Service "name" on port 80 and a Deployment of n echo Pods behind
// it, and waits for n ready endpoints.
func (e *env) createApp(ns, name string, n int32) {
	e.t.Helper()
	e.createAppWithEnv(ns, name, n, nil)
}

// createAppWithEnv is createApp with environment variables for the echo Pods (such
// as ECHO_FAIL_STATUS).
func (e *env) createAppWithEnv(ns, name string, n int32, env []corev1.EnvVar) {
	e.t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": name}
	must(e.t, create(e.kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromInt32(3000)}}},
	}, metav1.CreateOptions{})))
	must(e.t, create(e.kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "echo", Image: "echo", Env: env,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 3000}}}}},
			},
		},
	}, metav1.CreateOptions{})))
	waitFor(e.t, 60*time.Second, "ready endpoints of "+name, func() bool {
		slices, err := e.kube.DiscoveryV1().EndpointSlices(ns).List(ctx,
			metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
		if err != nil {
			return false
		}
		ready := int32(0)
		for _, s := range slices.Items {
			for _, ep := range s.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					ready++
				}
			}
		}
		return ready == n
	})
}

// route builds an HTTPRoute attached to Gateway gateway (in gwNS) that sends the path
// prefix to Service backend port 80.
func route(ns, name, gwNS, gateway, prefix, backend string) *gwv1.HTTPRoute {
	port := gwv1.PortNumber(80)
	return &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{
				{Name: gwv1.ObjectName(gateway), Namespace: ptr(gwv1.Namespace(gwNS))}}},
			Rules: []gwv1.HTTPRouteRule{{
				Matches: []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{
					Type: ptr(gwv1.PathMatchPathPrefix), Value: ptr(prefix)}}},
				BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
					BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(backend), Port: &port}}}},
			}},
		}}
}

// createRoute creates r and returns when the API server has it.
func (e *env) createRoute(r *gwv1.HTTPRoute) *gwv1.HTTPRoute {
	e.t.Helper()
	out, err := e.gw.GatewayV1().HTTPRoutes(r.Namespace).Create(context.Background(), r, metav1.CreateOptions{})
	must(e.t, err)
	return out
}

// routeParentCondition returns the condition of type typ in the route's status for
// the parent Gateway name, or nil.
func routeParentCondition(r *gwv1.HTTPRoute, gateway, typ string) *metav1.Condition {
	for _, p := range r.Status.Parents {
		if string(p.ParentRef.Name) != gateway || p.ControllerName != translate.ControllerName {
			continue
		}
		for i := range p.Conditions {
			if p.Conditions[i].Type == typ {
				return &p.Conditions[i]
			}
		}
	}
	return nil
}

// waitRouteCondition waits until the route's parent condition typ has the status and
// reason, at the route's latest generation, and returns that condition.
func (e *env) waitRouteCondition(ns, name, gateway, typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
	e.t.Helper()
	var got metav1.Condition
	waitFor(e.t, 30*time.Second, "HTTPRoute "+ns+"/"+name+" "+typ+"="+string(status)+" "+reason, func() bool {
		r, err := e.gw.GatewayV1().HTTPRoutes(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		c := routeParentCondition(r, gateway, typ)
		if c == nil || c.Status != status || c.Reason != reason || c.ObservedGeneration != r.Generation {
			return false
		}
		got = *c
		return true
	})
	return got
}

func conditionTrue(conds []metav1.Condition, typ string, generation int64) bool {
	for _, c := range conds {
		if c.Type == typ {
			return c.Status == metav1.ConditionTrue && c.ObservedGeneration == generation
		}
	}
	return false
}

func itoa(i int) string { return strconv.Itoa(i) }
