package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// proc is one process the benchmark started: a backend, a relay or a proxy. It runs
// in a process group of its own, so that stopping it also stops its children
// (nginx's workers).
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

// startProc runs argv with its output in dir/NAME.log. cpus, when not empty, pins
// it to those CPUs with taskset, which then executes the command in its place, so
// the process ID is the command's own.
func startProc(name, dir, cpus string, env []string, argv ...string) (*proc, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	p := &proc{name: name, logPath: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	return p, nil
}

// running reports whether the process is still up.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM to the process group and waits, killing the group after a few
// seconds.
func (p *proc) stop() {
	if !p.running() {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
	}
}

// cpuTicks returns the CPU time, in clock ticks, of the process and every process
// below it (nginx's workers), from /proc.
func (p *proc) cpuTicks() (uint64, error) {
	root := p.cmd.Process.Pid
	stats, err := readAllProcStats()
	if err != nil {
		return 0, err
	}
	if _, ok := stats[root]; !ok {
		return 0, fmt.Errorf("%s (pid %d) is not running", p.name, root)
	}
	return treeTicks(root, stats), nil
}

// treeTicks sums the CPU ticks of root and its descendants.
func treeTicks(root int, stats map[int]procStat) uint64 {
	children := map[int][]int{}
	for pid, st := range stats {
		children[st.PPID] = append(children[st.PPID], pid)
	}
	var total uint64
	queue := []int{root}
	seen := map[int]bool{}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		total += stats[pid].CPUTicks
		queue = append(queue, children[pid]...)
	}
	return total
}

// readAllProcStats reads /proc/PID/stat of every process; processes that end while
// it reads are left out.
func readAllProcStats() (map[int]procStat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := make(map[int]procStat, len(entries))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if st, err := parseProcStat(string(data)); err == nil {
			out[pid] = st
		}
	}
	return out, nil
}

// freePort returns a port free on 127.0.0.1 now, below the kernel's ephemeral range
// so that no outgoing connection takes it before the process meant to bind it does.
func freePort(taken map[int]bool) (int, error) {
	for range 200 {
		port := 20000 + rand.IntN(12768)
		if taken[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		_ = l.Close()
		taken[port] = true
		return port, nil
	}
	return 0, errors.New("no free port found in 200 tries")
}

// goBuild builds the package pkg (relative to root) into dir/name.
func goBuild(root, dir, pkg, name string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
	}
	return out, nil
}

// execOutput runs a command to completion and returns what it printed on both
// streams.
func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
