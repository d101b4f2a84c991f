package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/alertrelay/alertrelay/internal/daemon"
	"github.com/alertrelay/alertrelay/internal/telemetry"
)

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, path, code := loadConfig("run", args, stderr)
	if f == nil {
		return code
	}
	log, err := telemetry.NewLogger(stderr, f.Log.Level, f.Log.Format)
	if err != nil {
		fmt.Fprintf(stderr, "run: %v\n", err)
		return exitUsage
	}
	if err := os.MkdirAll(f.StateDir, 0o750); err != nil {
		log.Error("cannot create state_dir", "err", err)
		return exitFailure
	}
	tuneGC()
	d, err := daemon.New(f, daemon.Options{Log: log, Stdout: stdout})
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFailure
	}
	log.Info("starting", "version", versionString(), "config", path, "sources", len(f.Sources), "sinks", len(f.Sinks))
	if err := d.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return exitFailure
	}
	return exitOK
}

// tuneGC lowers the garbage collector's target from Go's default 100% to
// 50% unless GOGC is set. alertrelay's heap is mostly large pooled byte
// buffers with few pointers, so collecting more often costs little CPU and
// keeps the peak RSS down (bench/e2e.sh: about 75 MB -> 60 MB at the same
// throughput; docs/performance.md).
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
}
