// Package cluster runs a real Kubernetes control plane for end-to-end tests: etcd,
// kube-apiserver and (later) kube-controller-manager built from their Go modules, all
// inside a private network namespace that the test process creates for itself, so no
// test traffic can leave the machine. Inside it, every address in 10.244.0.0/16 is
// local and can be bound: pod addresses, the API server's advertise address and
// Gateway addresses come from there.
package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const (
	envInside       = "SWITCHYARD_E2E_NETNS"
	envControlPlane = "SWITCHYARD_CONTROL_PLANE"
	// PodCIDR is the range made local inside the namespace.
	PodCIDR = "10.244.0.0/16"
	// AdvertiseAddress is the API server's address inside the namespace.
	AdvertiseAddress = "10.244.0.1"
)

// Main is called from a test package's TestMain. Outside the namespace it builds (or
// finds in the cache) the control-plane binaries, then runs the test binary again
// inside a new network namespace and exits with its status. Inside, it brings up
// loopback, makes PodCIDR local, and runs the tests.
func Main(m *testing.M) {
	if os.Getenv(envInside) == "" {
		os.Exit(reexecInNamespace())
	}
	if err := setUpNamespace(); err != nil {
		fmt.Fprintln(os.Stderr, "cluster: setting up the network namespace:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// EnvBinary names the environment variable that holds the path of the switchyard binary
// that MainWithBinary built.
const EnvBinary = "SWITCHYARD_E2E_BINARY"

// MainWithBinary is Main for packages whose tests run the switchyard binary: outside
// the namespace it first builds ./cmd/switchyard into a temporary folder, passes its
// path in EnvBinary, and removes it when the tests end. Tests get a race-detector
// build; benchmark runs (-test.bench) get a plain one, so that they measure what
// operators run.
func MainWithBinary(m *testing.M) {
	if os.Getenv(envInside) != "" {
		Main(m)
		return
	}
	dir, err := os.MkdirTemp("", "switchyard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary := filepath.Join(dir, "switchyard")
	_, file, _, _ := runtime.Caller(0)
	args := []string{"build", "-race", "-o", binary, "./cmd/switchyard"}
	if benchmarking() {
		args = []string{"build", "-o", binary, "./cmd/switchyard"}
	}
	build := exec.Command("go", args...)
	build.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "cluster: building switchyard:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	os.Setenv(EnvBinary, binary)
	code := reexecInNamespace()
	os.RemoveAll(dir)
	os.Exit(code)
}

// benchmarking reports whether the test binary was asked to run benchmarks.
func benchmarking() bool {
	for i, a := range os.Args {
		if v, ok := strings.CutPrefix(a, "-test.bench="); ok && v != "" {
			return true
		}
		if a == "-test.bench" && i+1 < len(os.Args) && os.Args[i+1] != "" {
			return true
		}
	}
	return false
}

func reexecInNamespace() int {
	dir, err := buildControlPlane()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster: building the control plane:", err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cmd := exec.Command("unshare", append([]string{"--net", "--", self}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), envInside+"=1", envControlPlane+"="+dir)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if exit, ok := err.(*exec.ExitError); ok {
			return exit.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "cluster: running the tests in a network namespace:", err)
		return 1
	}
	return 0
}

// buildControlPlane runs e2e/controlplane/build.sh, which builds once and then only
// prints the cached folder. It must run before entering the namespace, which has no
// network for module downloads.
func buildControlPlane() (string, error) {
	if dir := os.Getenv(envControlPlane); dir != "" {
		return dir, nil
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "controlplane", "build.sh")
	cmd := exec.Command("bash", script)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

func setUpNamespace() error {
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"route", "add", "local", PodCIDR, "dev", "lo", "table", "local"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}
