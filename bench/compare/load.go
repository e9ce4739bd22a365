package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// loadSettings are the load generators' parameters, the same for every target.
type loadSettings struct {
	// Duration is how long each wrk or h2load run lasts.
	Duration time.Duration
	// Conns is wrk's connection count (the reference is 32 on one thread).
	Conns int
	// H2Clients and H2Streams are h2load's connections and concurrent streams per
	// connection.
	H2Clients, H2Streams int
	// Rate and RateDuration drive the open-loop latency runs.
	Rate         int
	RateDuration time.Duration
	// RateConns is the open-loop generator's connection pool.
	RateConns int
}

// runWrk runs `wrk -t1` against the target's benchmark request, with the script
// when not empty.
func runWrk(ctx context.Context, ls loadSettings, url, host, script, cpus string) (loadResult, error) {
	args := []string{"-t1", "-c" + strconv.Itoa(ls.Conns), "-d" + wholeSeconds(ls.Duration), "--latency"}
	if host != "" {
		args = append(args, "-H", "Host: "+host)
	}
	if script != "" {
		args = append(args, "-s", script)
	}
	out, err := runTool(ctx, cpus, "wrk", append(args, url)...)
	if err != nil {
		return loadResult{}, err
	}
	return parseWrk(out)
}

// runH2load runs h2load (HTTP/2 with prior knowledge over cleartext) for the
// duration after a short warm-up that its figures leave out.
func runH2load(ctx context.Context, ls loadSettings, url, host, cpus string) (loadResult, error) {
	args := []string{"-t1", "-c" + strconv.Itoa(ls.H2Clients), "-m" + strconv.Itoa(ls.H2Streams),
		"-D", wholeSeconds(ls.Duration) + "s", "--warm-up-time", "250ms"}
	if host != "" {
		args = append(args, "-H", ":authority: "+host)
	}
	out, err := runTool(ctx, cpus, "h2load", append(args, url)...)
	if err != nil {
		return loadResult{}, err
	}
	return parseH2load(out)
}

// runTool runs a load generator, pinned to cpus when not empty, bounded in time.
func runTool(ctx context.Context, cpus, name string, args ...string) (string, error) {
	if cpus != "" {
		args = append([]string{"-c", cpus, name}, args...)
		name = "taskset"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %w\n%s", name, err, out)
	}
	return string(out), nil
}

// wholeSeconds renders d as whole seconds, at least one, as wrk wants them.
func wholeSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second)))
}

// writeBodyScript writes, in dir, a wrk script that makes every request a POST with
// a JSON body of size bytes, and returns its path. wrk sends a request's head and
// body in one write, as API clients send small bodies.
func writeBodyScript(dir string, size int) (string, error) {
	path := filepath.Join(dir, "post.lua")
	script := "wrk.method = \"POST\"\n" +
		"wrk.headers[\"Content-Type\"] = \"application/json\"\n" +
		"wrk.body = " + strconv.Quote(jsonBody(size)) + "\n"
	return path, os.WriteFile(path, []byte(script), 0o644)
}

// jsonBody returns a JSON document of exactly size bytes (at least 12): one string
// field padded to the size.
func jsonBody(size int) string {
	const open, end = `{"data":"`, `"}`
	return open + strings.Repeat("x", max(0, size-len(open)-len(end))) + end
}
