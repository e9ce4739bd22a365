// Package proc starts the processes end-to-end tests drive (the switchyard binary in
// its roles) and keeps their output for failure messages.
package proc

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/syncbuf"
)

// Process is a started child process.
type Process struct {
	// Cmd is the running command.
	Cmd  *exec.Cmd
	args []string
	out  *syncBuffer
	// Exited is closed when the process has ended; Err is its exit status then.
	Exited chan struct{}
	Err    error
}

// Start runs binary with args, killing it when the test ends (and, through
// Pdeathsig, when the test binary dies without running cleanups). The output is
// logged when the test has failed.
func Start(t testing.TB, binary string, args ...string) *Process {
	t.Helper()
	p := &Process{Cmd: exec.Command(binary, args...), args: args, out: &syncBuffer{}, Exited: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = p.out, p.out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.Err = p.Cmd.Wait()
		close(p.Exited)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("output of %s:\n%s", strings.Join(args[:min(len(args), 1)], " "), lastBytes(p.Output(), 12000))
		}
	})
	return p
}

// Output is everything the process wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.out.String() }

// Kill ends the process at once (SIGKILL), as a crash or an evicted Pod would, and
// waits for it.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.Exited
}

// Stop sends SIGTERM and waits up to timeout for the process to exit; it reports
// whether it did (if not, it is killed).
func (p *Process) Stop(timeout time.Duration) bool {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Exited:
		return true
	case <-time.After(timeout):
		p.Kill()
		return false
	}
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer = syncbuf.Buffer
