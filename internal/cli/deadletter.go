package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/alertrelay/alertrelay/internal/daemon"
	"github.com/alertrelay/alertrelay/internal/telemetry"
)

func deadletterCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "replay" {
		fmt.Fprintln(stderr, "Usage: alertrelay deadletter replay --config FILE --sink NAME")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return exitOK
		}
		return exitUsage
	}
	fs := newFlags("deadletter replay", "deadletter replay --config FILE --sink NAME", stderr)
	path := fs.String("config", "", "config file (YAML)")
	sink := fs.String("sink", "", "the sink whose dead-lettered events to send again")
	if code, ok := parse(fs, args[1:]); !ok {
		return code
	}
	if *sink == "" {
		fmt.Fprintln(stderr, "deadletter replay: --sink is required")
		return exitUsage
	}
	f, _, code := loadConfig("deadletter replay", []string{"--config", *path}, stderr)
	if f == nil {
		return code
	}
	log, _ := telemetry.NewLogger(stderr, f.Log.Level, f.Log.Format)
	res, err := daemon.Replay(ctx, f, *sink, log)
	fmt.Fprintf(stdout, "replayed %d event(s) from %d file(s); %d rejected again (back in the dead-letter file); %d unreadable line(s) skipped\n",
		res.Replayed, len(res.Files), res.Dead, res.Skipped)
	if err != nil {
		fmt.Fprintf(stderr, "deadletter replay: %v\n", err)
		return exitFailure
	}
	return exitOK
}
