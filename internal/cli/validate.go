package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/daemon"
	"github.com/alertrelay/alertrelay/internal/telemetry"
)

func validateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var connect bool
	f, path, code := loadConfigFlags("validate", "validate --config FILE [--connect]", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&connect, "connect", false, "also reach every sink's destination and check its credentials")
	})
	if f == nil {
		return code
	}
	fmt.Fprintf(stdout, "%s: OK (%d source(s), %d sink(s))\n", path, len(f.Sources), len(f.Sinks))
	if !connect {
		return exitOK
	}
	log, _ := telemetry.NewLogger(stderr, "warn", "text")
	res, err := daemon.Connect(ctx, f, daemon.Options{Log: log})
	if err != nil {
		fmt.Fprintf(stderr, "validate: %v\n", err)
		return exitFailure
	}
	if len(res) == 0 {
		fmt.Fprintln(stdout, "no sink with a remote destination to check")
	}
	failed := 0
	for _, r := range res {
		if r.Err != nil {
			failed++
			fmt.Fprintf(stdout, "%s: FAILED after %s: %v\n", r.Component, r.Took.Round(time.Millisecond), r.Err)
			continue
		}
		fmt.Fprintf(stdout, "%s: reachable (%s)\n", r.Component, r.Took.Round(time.Millisecond))
	}
	if failed > 0 {
		return exitFailure
	}
	return exitOK
}

// loadConfig parses `--config FILE` for command cmd, loads and checks the
// file, and prints every problem to stderr. It returns the config, or nil
// and the exit code.
func loadConfig(cmd string, args []string, stderr io.Writer) (*config.File, string, int) {
	return loadConfigFlags(cmd, cmd+" --config FILE", args, stderr, nil)
}

// loadConfigFlags is loadConfig for a command with flags of its own, which
// more adds to the flag set.
func loadConfigFlags(cmd, usage string, args []string, stderr io.Writer, more func(*flag.FlagSet)) (*config.File, string, int) {
	fs := newFlags(cmd, usage, stderr)
	path := fs.String("config", "", "config file (YAML)")
	if more != nil {
		more(fs)
	}
	if code, ok := parse(fs, args); !ok {
		return nil, "", code
	}
	if *path == "" {
		fmt.Fprintf(stderr, "%s: --config is required\n", cmd)
		return nil, "", exitUsage
	}
	f, errs, err := daemon.Check(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return nil, "", exitUsage
	}
	if len(errs) > 0 {
		fmt.Fprintf(stderr, "%s: %d problem(s):\n", *path, len(errs))
		for _, e := range errs {
			fmt.Fprintf(stderr, "  %s\n", e)
		}
		return nil, "", exitUsage
	}
	return f, *path, exitOK
}
