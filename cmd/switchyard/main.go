// Command switchyard is the Switchyard API gateway: one binary whose subcommands run
// the standalone gateway, the echo backend used by examples and tests, and more.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	summary string
	run     func(args []string) error
}

var commands = map[string]command{
	"controller": {"watch a cluster's Gateway API objects and drive the gateway fleet", runController},
	"gateway":    {"run a gateway replica fed by the controller", runGateway},
	"standalone": {"run a gateway from manifest files, with no cluster", runStandalone},
	"echo":       {"run an echo backend that replies with what it received", runEcho},
	"ctl":        {"query and operate a gateway or controller through its admin API", runCtl},
	"version":    {"print the version", runVersion},
}

var order = []string{"controller", "gateway", "standalone", "ctl", "echo", "version"}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "switchyard: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := cmd.run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "switchyard %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: switchyard <command> [flags]\n\ncommands:")
	for _, name := range order {
		fmt.Fprintf(os.Stderr, "  %-11s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'switchyard <command> -h' for the flags of a command.")
}

func runVersion(args []string) error {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok && v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	fmt.Println("switchyard", v)
	return nil
}
