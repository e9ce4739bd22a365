package cluster

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// OurImageName is the last path element of the image repositories the kubelet runs
// with our own binary (EnvBinary) instead of an echo server: "switchyard",
// "switchyard:TAG" and "REGISTRY/OWNER/switchyard:TAG" (or @DIGEST) are ours;
// "switchyard-echo" or "REGISTRY/switchyard/other" are not. The image's own content
// plays no part: the binary the test built stands for every tag.
const OurImageName = "switchyard"

// imageEntrypoint and imageCmd are the Dockerfile's ENTRYPOINT and CMD (a test keeps
// them equal), which a container's command and args replace as in Kubernetes.
var (
	imageEntrypoint = []string{"/usr/local/bin/switchyard"}
	imageCmd        = []string{"standalone", "--config", "/etc/switchyard", "--admin-addr", "127.0.0.1:9901"}
)

// builtInAdminAddrs are the admin API addresses our binary's subcommands listen on
// when --admin-addr is not given: loopback addresses, which in a Pod are the Pod's
// own. Since the Pods here share one loopback, the kubelet passes the default
// explicitly, moved to the Pod's loopback like any other (a test compares these with
// the binary's help).
var builtInAdminAddrs = map[string]string{
	"gateway":    "127.0.0.1:9901",
	"standalone": "127.0.0.1:9901",
	"controller": "127.0.0.1:9902",
}

// serviceAccountMountPath is where Pods find their API credentials. client-go reads
// them from this fixed path, which no process here can be given, so a process that
// mounts it gets a kubeconfig made from the same files instead (see kubeconfigFor).
const serviceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// IsOurImage reports whether an image reference names our image (see OurImageName).
func IsOurImage(image string) bool {
	repo, _, _ := strings.Cut(image, "@")
	if slash := strings.LastIndexByte(repo, '/'); strings.LastIndexByte(repo, ':') > slash {
		repo = repo[:strings.LastIndexByte(repo, ':')]
	}
	return repo == OurImageName || strings.HasSuffix(repo, "/"+OurImageName)
}

// processPlan is how one container of our image runs: our binary with args and env,
// in dir.
type processPlan struct {
	path string
	args []string
	env  []string
	dir  string
}

// planProcess works out the command line and environment of a container of our
// image. Values that only make sense inside the container are moved to what stands
// for it here (see podAddresses.rewrite): paths under its volume mounts, and its
// loopback and wildcard addresses.
func (k *Kubelet) planProcess(pod *corev1.Pod, c *corev1.Container, env map[string]string, mounts []mount,
	ip, dir string) (*processPlan, error) {
	binary := os.Getenv(EnvBinary)
	if binary == "" {
		return nil, fmt.Errorf("image %s is ours, but the kubelet has no switchyard binary to run (TestMain must call cluster.MainWithBinary)", c.Image)
	}
	args, err := commandLine(c, env)
	if err != nil {
		return nil, err
	}
	args = withBuiltInAdminAddr(args)
	addrs := podAddresses{ip: ip, loopback: podLoopback(ip)}
	for i, a := range args {
		args[i] = addrs.rewrite(a, mounts)
	}
	vars := map[string]string{}
	for name, value := range env {
		vars[name] = addrs.rewrite(value, mounts)
	}
	hostname := pod.Name
	if pod.Spec.HostNetwork {
		hostname = pod.Spec.NodeName
	}
	defaults := map[string]string{"HOSTNAME": hostname, "PATH": os.Getenv("PATH"), "HOME": "/", "TMPDIR": dir}
	if race := os.Getenv("GORACE"); race != "" {
		defaults["GORACE"] = race
	}
	if _, set := vars["KUBECONFIG"]; !set {
		path, err := k.kubeconfigFor(c.Name, mounts, dir)
		if err != nil {
			return nil, err
		}
		if path != "" {
			defaults["KUBECONFIG"] = path
		}
	}
	for name, value := range defaults {
		if _, set := vars[name]; !set {
			vars[name] = value
		}
	}
	list := make([]string, 0, len(vars))
	for name, value := range vars {
		list = append(list, name+"="+value)
	}
	slices.Sort(list)
	return &processPlan{path: binary, args: args, env: list, dir: dir}, nil
}

// commandLine is the container's command line after our binary, by Kubernetes's
// rules: command replaces the image's ENTRYPOINT (and drops its CMD), args replace
// CMD, and $(NAME) refers to the container's environment. The command must name our
// binary, the only program in the image.
func commandLine(c *corev1.Container, env map[string]string) ([]string, error) {
	argv := slices.Clone(imageEntrypoint)
	args := imageCmd
	if len(c.Command) > 0 {
		argv, args = slices.Clone(c.Command), nil
	}
	if len(c.Args) > 0 {
		args = c.Args
	}
	argv = append(argv, args...)
	for i, a := range argv {
		argv[i] = expandVars(a, env)
	}
	if argv[0] != imageEntrypoint[0] && argv[0] != filepath.Base(imageEntrypoint[0]) {
		return nil, fmt.Errorf("command %q is not in image %s, which holds only %s", argv[0], c.Image, imageEntrypoint[0])
	}
	return argv[1:], nil
}

// withBuiltInAdminAddr adds --admin-addr with its built-in default to the command
// line of a subcommand that has one and is not given it.
func withBuiltInAdminAddr(args []string) []string {
	if len(args) == 0 {
		return args
	}
	def, ok := builtInAdminAddrs[args[0]]
	if !ok {
		return args
	}
	for _, a := range args[1:] {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "admin-addr" {
			return args
		}
	}
	return append(args, "--admin-addr="+def)
}

// kubeconfigFor writes, for a container that mounts the ServiceAccount credentials at
// their usual path, a kubeconfig that uses them: the API server's address (where a
// Pod would reach the kubernetes Service), the token file, and the cluster CA when the
// volume holds one. It returns "" when the container mounts no credentials there.
func (k *Kubelet) kubeconfigFor(container string, mounts []mount, dir string) (string, error) {
	folder := ""
	for _, m := range mounts {
		if m.mountPath == serviceAccountMountPath {
			folder = m.hostPath
		}
	}
	if folder == "" || k.apiServer == "" {
		return "", nil
	}
	trust := "insecure-skip-tls-verify: true"
	if _, err := os.Stat(filepath.Join(folder, "ca.crt")); err == nil {
		trust = "certificate-authority: " + strconv.Quote(filepath.Join(folder, "ca.crt"))
	}
	body := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: in-cluster
  cluster: {server: %q, %s}
users:
- name: service-account
  user: {tokenFile: %q}
contexts:
- name: in-cluster
  context: {cluster: in-cluster, user: service-account}
current-context: in-cluster
`, k.apiServer, trust, filepath.Join(folder, "token"))
	path := filepath.Join(dir, "kubeconfig-"+container)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// podAddresses are what a container's own addresses become in the shared network
// namespace: its Pod address, and a loopback address of its own (see podLoopback).
type podAddresses struct {
	ip, loopback string
}

// podLoopback is the loopback address that stands for a Pod's own 127.0.0.1: every
// Pod has its own loopback in a cluster, but here all Pods share one network
// namespace, so the Pod 10.244.S.H gets 127.244.S.H. Host-network Pods share their
// node's, 127.244.S.1, as they share its loopback in a cluster.
func podLoopback(ip string) string {
	parsed := net.ParseIP(ip).To4()
	if parsed == nil || parsed[0] != 10 {
		return "127.0.0.1"
	}
	return fmt.Sprintf("127.%d.%d.%d", parsed[1], parsed[2], parsed[3])
}

// rewrite turns one command-line argument or environment value, as the container
// sees it, into what it means here. The value, or the part after "=" of a "-flag=..."
// argument, is rewritten when it is:
//   - HOST:PORT, or SCHEME://HOST:PORT[/...], with HOST 127.0.0.1 or localhost: the
//     Pod's own loopback address;
//   - :PORT, 0.0.0.0:PORT or [::]:PORT (a wildcard listen address, which in a Pod's
//     own network namespace covers only the Pod): the Pod's address;
//   - an absolute path under one of the container's volume mounts: the file the
//     kubelet wrote.
//
// Anything else is passed on unchanged.
func (a podAddresses) rewrite(value string, mounts []mount) string {
	prefix, v := "", value
	if strings.HasPrefix(value, "-") {
		name, rest, ok := strings.Cut(value, "=")
		if !ok {
			return value
		}
		prefix, v = name+"=", rest
	}
	if moved, ok := a.rewriteAddress(v); ok {
		return prefix + moved
	}
	if filepath.IsAbs(v) {
		if resolved := resolvePath(v, mounts); resolved != filepath.Clean(v) {
			return prefix + resolved
		}
	}
	return value
}

// rewriteAddress applies the address rules of rewrite; ok is false when v is not an
// address they cover.
func (a podAddresses) rewriteAddress(v string) (string, bool) {
	scheme, rest, hasScheme := strings.Cut(v, "://")
	if !hasScheme {
		scheme, rest = "", v
	}
	hostport, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		hostport, path = rest[:i], rest[i:]
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", false
	}
	switch host {
	case "127.0.0.1", "localhost":
		host = a.loopback
	case "", "0.0.0.0", "::":
		if hasScheme {
			return "", false
		}
		host = a.ip
	default:
		return "", false
	}
	out := net.JoinHostPort(host, port) + path
	if hasScheme {
		out = scheme + "://" + out
	}
	return out, true
}
