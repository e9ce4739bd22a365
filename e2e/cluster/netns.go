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
