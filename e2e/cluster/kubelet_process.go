package cluster

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Restart back-off of a container whose process exited, doubling from the first
// delay up to the cap, as a kubelet's CrashLoopBackOff does (with shorter delays).
const (
	firstRestartDelay = 500 * time.Millisecond
	maxRestartDelay   = 5 * time.Second
)

// containerRuntime is the live state of one container of a Pod the kubelet runs:
// echo servers (always running) or a process of our binary, which is restarted by
// the Pod's restartPolicy when it exits.
type containerRuntime struct {
	name, image string
	readiness   *probeSpec
	process     *processPlan
	logs        *containerLog
	// exited is closed once the process will not be started again (nil for echo
	// containers).
	exited chan struct{}

	mu        sync.Mutex
	running   bool
	ready     bool
	startedAt metav1.Time
	restarts  int32
	lastExit  *corev1.ContainerStateTerminated
	passes    int // consecutive successful probes
	fails     int // consecutive failed probes
	cmd       *exec.Cmd
	stopping  bool
	// stop is closed when the container is being stopped, to cut a restart back-off
	// short.
	stop chan struct{}
}

// supervise runs the container's process until the container is stopped, starting
// it again after each exit that the restart policy allows. changed is called on
// every start and exit.
func (c *containerRuntime) supervise(policy corev1.RestartPolicy, changed func()) {
	defer close(c.exited)
	delay := firstRestartDelay
	for {
		cmd, err := c.startProcess()
		if cmd == nil && err == nil {
			return
		}
		changed()
		if err == nil {
			err = cmd.Wait()
		}
		code := c.recordExit(err)
		changed()
		if c.isStopping() || policy == corev1.RestartPolicyNever || (policy == corev1.RestartPolicyOnFailure && code == 0) {
			return
		}
		select {
		case <-c.stop:
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, maxRestartDelay)
		c.mu.Lock()
		c.restarts++
		c.mu.Unlock()
	}
}

// startProcess starts the process unless the container is stopping (then it returns
// nil and no error). A process that cannot be started returns its error.
func (c *containerRuntime) startProcess() (*exec.Cmd, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return nil, nil
	}
	p := c.process
	cmd := exec.Command(p.path, p.args...)
	cmd.Env, cmd.Dir = p.env, p.dir
	cmd.Stdout, cmd.Stderr = c.logs, c.logs
	// The process dies with the test binary even when no cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return cmd, err
	}
	c.cmd, c.running, c.startedAt = cmd, true, metav1.Now()
	c.ready = c.readiness == nil
	c.passes, c.fails = 0, 0
	return cmd, nil
}

// recordExit notes how the process ended and returns its exit code.
func (c *containerRuntime) recordExit(err error) int32 {
	code, reason := int32(0), "Completed"
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code, reason = int32(exit.ExitCode()), "Error"
		if status, ok := exit.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			code = 128 + int32(status.Signal())
		}
	case err != nil:
		code, reason = 128, "StartError"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastExit = &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, StartedAt: c.startedAt,
		FinishedAt: metav1.Now()}
	if err != nil && reason == "StartError" {
		c.lastExit.Message = err.Error()
	}
	c.cmd, c.running, c.ready = nil, false, false
	return code
}

func (c *containerRuntime) isStopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

// terminate stops the process as a kubelet stops a container: SIGTERM, then SIGKILL
// once grace has passed, and waits until it has exited.
func (c *containerRuntime) terminate(grace time.Duration) {
	c.mu.Lock()
	if !c.stopping {
		c.stopping = true
		close(c.stop)
	}
	c.signal(syscall.SIGTERM)
	c.mu.Unlock()
	select {
	case <-c.exited:
		return
	case <-time.After(grace):
	}
	c.mu.Lock()
	c.signal(syscall.SIGKILL)
	c.mu.Unlock()
	<-c.exited
}

// signal sends sig to the running process, if any; c.mu must be held.
func (c *containerRuntime) signal(sig syscall.Signal) {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(sig)
	}
}

// status is the container's entry in the Pod's status.
func (c *containerRuntime) status() corev1.ContainerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := corev1.ContainerStatus{Name: c.name, Image: c.image, ImageID: c.image, Ready: c.ready,
		RestartCount: c.restarts, Started: ptrTo(c.running)}
	switch {
	case c.running:
		st.State.Running = &corev1.ContainerStateRunning{StartedAt: c.startedAt}
	case c.lastExit != nil && c.stopping:
		st.State.Terminated = c.lastExit.DeepCopy()
	case c.lastExit != nil:
		st.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
			Message: fmt.Sprintf("the process exited with code %d; restarting", c.lastExit.ExitCode)}
	default:
		st.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	if c.lastExit != nil {
		st.LastTerminationState.Terminated = c.lastExit.DeepCopy()
	}
	return st
}

// probed records one probe result and reports whether readiness changed.
func (c *containerRuntime) probed(ok bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return false
	}
	was := c.ready
	if ok {
		c.passes, c.fails = c.passes+1, 0
		if c.passes >= c.readiness.success {
			c.ready = true
		}
	} else {
		c.passes, c.fails = 0, c.fails+1
		if c.fails >= c.readiness.failures {
			c.ready = false
		}
	}
	return c.ready != was
}

// isReady reports the container's readiness and whether it runs.
func (c *containerRuntime) isReady() (ready, running bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready, c.running
}
