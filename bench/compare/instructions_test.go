package main

import (
	"slices"
	"strings"
	"testing"
)

func TestDumpTotalReadsTheTotals(t *testing.T) {
	dump := "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nfn=(1) main\n16 120\nsummary: 80967559\n\n\ntotals: 80967560\n"
	if got, err := dumpTotal(strings.NewReader(dump)); err != nil || got != 80967560 {
		t.Fatalf("dumpTotal = %d, %v; want the totals line, 80967560", got, err)
	}
	if got, err := dumpTotal(strings.NewReader("events: Ir\nsummary: 42\n")); err != nil || got != 42 {
		t.Fatalf("dumpTotal = %d, %v; want the summary line without totals, 42", got, err)
	}
	// A dump still being written has neither line yet.
	if _, err := dumpTotal(strings.NewReader("version: 1\nevents: Ir\nfn=(1) main\n")); err == nil {
		t.Fatal("a dump without totals read as complete")
	}
}

func TestAllSucceededCountsTheAnswers(t *testing.T) {
	out := "finished in 2.61s, 1149.43 req/s, 203.17KB/s\n" +
		"requests: 3000 total, 3000 started, 3000 done, 3000 succeeded, 0 failed, 0 errored, 0 timeout\n" +
		"status codes: 3000 2xx, 0 3xx, 0 4xx, 0 5xx\n"
	if ok, err := allSucceeded(out, 3000); !ok || err != nil {
		t.Fatalf("allSucceeded = %v, %v for every request answered", ok, err)
	}
	if ok, _ := allSucceeded(strings.Replace(out, "3000 2xx, 0 3xx, 0 4xx, 0 5xx", "2990 2xx, 0 3xx, 0 4xx, 10 5xx", 1), 3000); ok {
		t.Fatal("a run with 5xx answers passed")
	}
	if ok, _ := allSucceeded("requests: 0 total", 3000); ok {
		t.Fatal("output without status codes passed")
	}
}

func TestInstructionTargetsFollowTheBinarysFlags(t *testing.T) {
	with := instructionTargets(binaries{observeFlags: true})
	if !slices.Contains(with, targetBare) || !slices.Contains(with, targetPolicies) || !slices.Contains(with, targetNginx) {
		t.Fatalf("targets %v lack bare, policies or nginx", with)
	}
	without := instructionTargets(binaries{})
	if slices.Contains(without, targetBare) || !slices.Contains(without, targetSwitchyard) {
		t.Fatalf("targets without the observability flags: %v", without)
	}
}

func TestInstructionPassesAddHTTP2(t *testing.T) {
	passes := instructionPasses(binaries{observeFlags: true})
	if len(passes) != 2 || passes[0].http2 || !passes[1].http2 {
		t.Fatalf("passes %+v, want HTTP/1.1 then HTTP/2", passes)
	}
	if want := []string{targetBare, targetNginx, targetHAProxy}; !slices.Equal(passes[1].targets, want) {
		t.Fatalf("HTTP/2 targets %v, want %v", passes[1].targets, want)
	}
	if own := instructionPasses(binaries{})[1].targets[0]; own != targetSwitchyard {
		t.Fatalf("HTTP/2 pass of a binary without the flags runs %s", own)
	}
	report := instructionReport(passes[1], map[string][]float64{targetBare: {50000}, targetNginx: {20000}},
		instructionSettings{requests: 3000, rounds: 1})
	if !strings.Contains(report, "HTTP/2 clients") || !strings.Contains(report, "| switchyard-bare | 50000 | 50000-50000 | 2.50x | 1.00x |") {
		t.Fatalf("HTTP/2 report:\n%s", report)
	}
}

func TestInstructionReportGivesMediansAndRatios(t *testing.T) {
	counts := map[string][]float64{
		targetBare:  {17000, 18000, 17500},
		targetNginx: {20000, 19000, 21000},
	}
	report := instructionReport(instructionPass{targets: []string{targetBare, targetNginx}}, counts, instructionSettings{requests: 3000, rounds: 3})
	for _, want := range []string{
		"| switchyard-bare | 17500 | 17000-18000 | 0.88x | 1.00x |",
		"| nginx | 20000 | 19000-21000 | 1.00x | 1.14x |",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}

func TestNginxSingleProcess(t *testing.T) {
	s := peerSetup{Dir: "/tmp/x", Listen: 1, Backend: 2, Table: catchAll(), Workers: 1}
	if strings.Contains(nginxConfig(s), "master_process off;") {
		t.Fatal("master_process off without SingleProcess")
	}
	s.SingleProcess = true
	if !strings.Contains(nginxConfig(s), "master_process off;") {
		t.Fatal("SingleProcess left the master process on")
	}
}
