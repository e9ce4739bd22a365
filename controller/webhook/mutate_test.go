package webhook

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// defaultList is the NO_PROXY every injected container gets when it had none.
const defaultList = "localhost,127.0.0.1,::1,$(KUBERNETES_SERVICE_HOST),kubernetes,kubernetes.default,kubernetes.default.svc"

func hostIPFrom(name string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIP"}}}
}

func value(name, v string) corev1.EnvVar { return corev1.EnvVar{Name: name, Value: v} }

// injected is the env a container without variables gets for a proxy URL and list.
func injected(proxy, noProxy string) []corev1.EnvVar {
	return []corev1.EnvVar{hostIPFrom("HOST_IP"), value("HTTP_PROXY", proxy), value("http_proxy", proxy),
		value("NO_PROXY", noProxy), value("no_proxy", noProxy)}
}

func podWith(containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Namespace: "shop"},
		Spec:       corev1.PodSpec{Containers: containers},
	}
}

func TestPatch(t *testing.T) {
	const proxy = "http://$(HOST_IP):15001"
	cases := []struct {
		name    string
		config  Config
		pod     func() *corev1.Pod
		outcome Outcome
		// want is each container's env after the patch, init containers first;
		// nil when the patch must be empty.
		want [][]corev1.EnvVar
	}{
		{name: "no env", pod: func() *corev1.Pod { return podWith(corev1.Container{Name: "app"}) },
			outcome: Injected, want: [][]corev1.EnvVar{injected(proxy, defaultList)}},
		{name: "existing env kept first", pod: func() *corev1.Pod {
			return podWith(corev1.Container{Name: "app", Env: []corev1.EnvVar{value("MODE", "prod")}})
		}, outcome: Injected, want: [][]corev1.EnvVar{append([]corev1.EnvVar{value("MODE", "prod")}, injected(proxy, defaultList)...)}},
		{name: "host network", pod: func() *corev1.Pod {
			p := podWith(corev1.Container{Name: "app"})
			p.Spec.HostNetwork = true
			return p
		}, outcome: SkippedHostNetwork},
		{name: "opted out", pod: func() *corev1.Pod {
			p := podWith(corev1.Container{Name: "app"})
			p.Annotations = map[string]string{Annotation: AnnotationDisabled}
			return p
		}, outcome: SkippedOptOut},
		{name: "every container has a proxy", pod: func() *corev1.Pod {
			return podWith(corev1.Container{Name: "a", Env: []corev1.EnvVar{value("HTTP_PROXY", "http://squid:3128")}},
				corev1.Container{Name: "b", Env: []corev1.EnvVar{value("http_proxy", "http://squid:3128")}})
		}, outcome: SkippedConfigured},
		{name: "only the container without a proxy", pod: func() *corev1.Pod {
			return podWith(corev1.Container{Name: "a", Env: []corev1.EnvVar{value("HTTP_PROXY", "http://squid:3128")}},
				corev1.Container{Name: "b"})
		}, outcome: Injected, want: [][]corev1.EnvVar{{value("HTTP_PROXY", "http://squid:3128")}, injected(proxy, defaultList)}},
		{name: "init and sidecar containers", pod: func() *corev1.Pod {
			p := podWith(corev1.Container{Name: "app"})
			always := corev1.ContainerRestartPolicyAlways
			p.Spec.InitContainers = []corev1.Container{{Name: "migrate"}, {Name: "sidecar", RestartPolicy: &always}}
			return p
		}, outcome: Injected, want: [][]corev1.EnvVar{injected(proxy, defaultList), injected(proxy, defaultList), injected(proxy, defaultList)}},
		{name: "NO_PROXY merged, both spellings", pod: func() *corev1.Pod {
			return podWith(corev1.Container{Name: "app", Env: []corev1.EnvVar{
				value("NO_PROXY", "db.internal, localhost"), value("TZ", "UTC"), value("no_proxy", "10.0.0.0/8")}})
		}, outcome: Injected, want: [][]corev1.EnvVar{{
			value("NO_PROXY", "db.internal,localhost,10.0.0.0/8,127.0.0.1,::1,$(KUBERNETES_SERVICE_HOST),kubernetes,kubernetes.default,kubernetes.default.svc"),
			value("TZ", "UTC"),
			value("no_proxy", "db.internal,localhost,10.0.0.0/8,127.0.0.1,::1,$(KUBERNETES_SERVICE_HOST),kubernetes,kubernetes.default,kubernetes.default.svc"),
			hostIPFrom("HOST_IP"), value("HTTP_PROXY", proxy), value("http_proxy", proxy)}}},
		{name: "NO_PROXY from a ConfigMap is left alone", pod: func() *corev1.Pod {
			return podWith(corev1.Container{Name: "app", Env: []corev1.EnvVar{{Name: "NO_PROXY", ValueFrom: &corev1.EnvVarSource{
				ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "proxy"}, Key: "no"}}}}})
		}, outcome: Injected, want: [][]corev1.EnvVar{{{Name: "NO_PROXY", ValueFrom: &corev1.EnvVarSource{
			ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "proxy"}, Key: "no"}}},
			hostIPFrom("HOST_IP"), value("HTTP_PROXY", proxy), value("http_proxy", proxy)}}},
		{name: "HOST_IP from the downward API reused", pod: func() *corev1.Pod {
			return podWith(corev1.Container{Name: "app", Env: []corev1.EnvVar{hostIPFrom("HOST_IP")}})
		}, outcome: Injected, want: [][]corev1.EnvVar{{hostIPFrom("HOST_IP"), value("HTTP_PROXY", proxy), value("http_proxy", proxy),
			value("NO_PROXY", defaultList), value("no_proxy", defaultList)}}},
		{name: "HOST_IP of another meaning", pod: func() *corev1.Pod {
			return podWith(corev1.Container{Name: "app", Env: []corev1.EnvVar{value("HOST_IP", "db.internal")}})
		}, outcome: Injected, want: [][]corev1.EnvVar{{value("HOST_IP", "db.internal"), hostIPFrom("SWITCHYARD_HOST_IP"),
			value("HTTP_PROXY", "http://$(SWITCHYARD_HOST_IP):15001"), value("http_proxy", "http://$(SWITCHYARD_HOST_IP):15001"),
			value("NO_PROXY", defaultList), value("no_proxy", defaultList)}}},
		{name: "both address names taken", pod: func() *corev1.Pod {
			return podWith(corev1.Container{Name: "app", Env: []corev1.EnvVar{value("HOST_IP", "a"), value("SWITCHYARD_HOST_IP", "b")}})
		}, outcome: SkippedConfigured},
		{name: "port and extra entries", config: Config{ProxyPort: 15080, NoProxy: []string{"kubernetes.default.svc.cluster.local", "10.96.0.0/12", "localhost"}},
			pod: func() *corev1.Pod { return podWith(corev1.Container{Name: "app"}) }, outcome: Injected,
			want: [][]corev1.EnvVar{injected("http://$(HOST_IP):15080", defaultList+",kubernetes.default.svc.cluster.local,10.96.0.0/12")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := tc.pod()
			ops, outcome := tc.config.Patch(pod)
			if outcome != tc.outcome {
				t.Errorf("outcome %q, want %q", outcome, tc.outcome)
			}
			if tc.want == nil {
				if len(ops) != 0 {
					t.Fatalf("want no patch, got %+v", ops)
				}
				return
			}
			patched := patchPod(t, pod, ops)
			got := containerEnvs(patched)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("env after the patch:\n got  %s\n want %s", mustJSON(t, got), mustJSON(t, tc.want))
			}
			if patched.Annotations[Annotation] != AnnotationInjected {
				t.Errorf("annotation %q = %q, want %q", Annotation, patched.Annotations[Annotation], AnnotationInjected)
			}
			for _, env := range got {
				checkReferencesResolve(t, env)
			}
		})
	}
}

// TestPatchKeepsAnnotations checks that the record of the mutation is added beside the
// Pod's own annotations, whose key holds a slash the patch path must escape.
func TestPatchKeepsAnnotations(t *testing.T) {
	pod := podWith(corev1.Container{Name: "app"})
	pod.Annotations = map[string]string{"team": "shop", "example.com/owner": "ana"}
	ops, _ := Config{}.Patch(pod)
	got := patchPod(t, pod, ops).Annotations
	want := map[string]string{"team": "shop", "example.com/owner": "ana", Annotation: AnnotationInjected}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("annotations %v, want %v", got, want)
	}
}

// TestPatchEmptyEnvArray applies the patch to a Pod whose JSON holds "env": [], which
// decodes like a missing env: the patch must still apply.
func TestPatchEmptyEnvArray(t *testing.T) {
	raw := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"x","env":[]}]}}`)
	var pod corev1.Pod
	if err := json.Unmarshal(raw, &pod); err != nil {
		t.Fatal(err)
	}
	ops, _ := Config{}.Patch(&pod)
	out, err := applyPatch(raw, mustJSON(t, ops))
	if err != nil {
		t.Fatal(err)
	}
	var patched corev1.Pod
	if err := json.Unmarshal(out, &patched); err != nil {
		t.Fatal(err)
	}
	if env := patched.Spec.Containers[0].Env; !reflect.DeepEqual(env, injected("http://$(HOST_IP):15001", defaultList)) {
		t.Errorf("env %s", mustJSON(t, env))
	}
}

// TestPatchIsIdempotent applies the webhook to its own output, as a re-invocation or
// a Pod copied from an admitted one would: nothing more changes.
func TestPatchIsIdempotent(t *testing.T) {
	pod := podWith(corev1.Container{Name: "app", Env: []corev1.EnvVar{value("NO_PROXY", "db")}})
	ops, _ := Config{}.Patch(pod)
	again, outcome := Config{}.Patch(patchPod(t, pod, ops))
	if len(again) != 0 || outcome != SkippedConfigured {
		t.Errorf("second pass: %q %+v, want no patch", outcome, again)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, bad := range []Config{{ProxyPort: -1}, {ProxyPort: 70000}, {NoProxy: []string{""}}, {NoProxy: []string{"a,b"}}, {NoProxy: []string{"a b"}}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v was accepted", bad)
		}
	}
	if err := (Config{ProxyPort: 15001, NoProxy: []string{"10.96.0.0/12", ".example.com"}}).Validate(); err != nil {
		t.Error(err)
	}
}

// patchPod applies ops to pod's JSON and returns the result.
func patchPod(t *testing.T, pod *corev1.Pod, ops []PatchOperation) *corev1.Pod {
	t.Helper()
	out, err := applyPatch(mustJSON(t, pod), mustJSON(t, ops))
	if err != nil {
		t.Fatalf("the patch does not apply: %v\n%s", err, mustJSON(t, ops))
	}
	var patched corev1.Pod
	if err := json.Unmarshal(out, &patched); err != nil {
		t.Fatal(err)
	}
	return &patched
}

func containerEnvs(pod *corev1.Pod) [][]corev1.EnvVar {
	var envs [][]corev1.EnvVar
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		envs = append(envs, c.Env)
	}
	return envs
}

var reference = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// checkReferencesResolve checks what the kubelet needs to expand the proxy URL: each
// $(NAME) in HTTP_PROXY and http_proxy names a variable defined earlier in the list,
// holding the node's address.
func checkReferencesResolve(t *testing.T, env []corev1.EnvVar) {
	t.Helper()
	for i, v := range env {
		if v.Name != "HTTP_PROXY" && v.Name != "http_proxy" || !strings.Contains(v.Value, "$(") {
			continue
		}
		for _, m := range reference.FindAllStringSubmatch(v.Value, -1) {
			j := indexOf(env[:i], m[1])
			if j < 0 || !isHostIPRef(env[j]) {
				t.Errorf("%s=%s refers to %s, which is not a node address defined before it", v.Name, v.Value, m[1])
			}
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
