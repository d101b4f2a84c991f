package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/alertrelay/alertrelay/internal/daemon"
)

func validateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", "validate --config FILE", stderr)
	path := fs.String("config", "", "config file (YAML)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *path == "" {
		fmt.Fprintln(stderr, "validate: --config is required")
		return exitUsage
	}
	f, errs, err := daemon.Check(*path)
	if err != nil {
		fmt.Fprintf(stderr, "validate: %v\n", err)
		return exitUsage
	}
	if len(errs) > 0 {
		fmt.Fprintf(stderr, "%s: %d problem(s):\n", *path, len(errs))
		for _, e := range errs {
			fmt.Fprintf(stderr, "  %s\n", e)
		}
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s: OK (%d source(s), %d sink(s))\n", *path, len(f.Sources), len(f.Sinks))
	return exitOK
}
