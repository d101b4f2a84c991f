// Package cli implements the alertrelay command line: one file per
// subcommand. Run is the whole program; main only wires signals and exit.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // runtime failure
	exitUsage   = 2 // bad flags or config
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"run", "run the daemon with a config file", runCmd},
		{"validate", "check a config file and report every problem at once", validateCmd},
		{"demo", "run the pipeline against built-in emulators on loopback", demoCmd},
		{"simulate", "push emulated vendor traffic to a listener (simulate cybertrace)", simulateCmd},
		{"queue", "inspect or repair disk queues (queue verify|repair --state-dir DIR)", queueCmd},
		{"deadletter", "send dead-lettered events again (deadletter replay --sink NAME)", deadletterCmd},
		{"version", "print the version", versionCmd},
	}
}

// Run runs the command line args (without the program name) and returns
// the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "alertrelay: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("alertrelay ships security alerts from Kaspersky CyberTrace (and Cynet 360) to your SIEM.\n\nUsage: alertrelay <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'alertrelay <command> --help' for a command's flags.\n")
	io.WriteString(w, b.String())
}

// newFlags returns a flag set that prints its usage to stderr, with a
// one-line description first.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: alertrelay %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags; ok is false when the command should exit with code.
func parse(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}
