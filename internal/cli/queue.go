package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"

	"github.com/alertrelay/alertrelay/internal/daemon"
	"github.com/alertrelay/alertrelay/internal/queue/disk"
)

func queueCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	usage := "Usage: alertrelay queue verify|repair --state-dir DIR [--sink NAME]"
	if len(args) == 0 || (args[0] != "verify" && args[0] != "repair") {
		fmt.Fprintln(stderr, usage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return exitOK
		}
		return exitUsage
	}
	action := args[0]
	fs := newFlags("queue "+action, "queue "+action+" --state-dir DIR [--sink NAME]", stderr)
	stateDir := fs.String("state-dir", "", "the daemon's state_dir")
	only := fs.String("sink", "", "only this sink's queue")
	if code, ok := parse(fs, args[1:]); !ok {
		return code
	}
	if *stateDir == "" {
		fmt.Fprintln(stderr, "queue: --state-dir is required")
		return exitUsage
	}
	dirs, _ := filepath.Glob(filepath.Join(*stateDir, "queue", "*"))
	sort.Strings(dirs)
	if action == "repair" && daemon.StateDirInUse(*stateDir) {
		fmt.Fprintf(stderr, "queue repair: %s is in use by a running alertrelay; stop it first (it repairs its queues itself at start)\n", *stateDir)
		return exitFailure
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SINK\tSEGMENTS\tRECORDS\tBYTES\tPENDING\tPENDING BYTES\tCORRUPT\tTORN BYTES\tPOSITION")
	damaged, found := false, 0
	var notes []string
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		name := filepath.Base(dir)
		if *only != "" && name != *only {
			continue
		}
		found++
		var r disk.Report
		var err error
		if action == "verify" {
			r, err = disk.Verify(dir)
		} else {
			r, err = disk.Repair(dir)
		}
		if err != nil {
			fmt.Fprintf(stderr, "queue %s %s: %v\n", action, name, err)
			damaged = true
			continue
		}
		pos := "ok"
		switch {
		case r.PositionInvalid:
			pos = "invalid"
		case r.PositionMissing:
			pos = "missing"
		case r.PositionMoved:
			pos = "moved"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", name, len(r.Segments), r.Records, r.Bytes,
			r.Pending, r.PendingBytes, r.Corrupt, r.TornBytes, pos)
		if r.Damaged() {
			damaged = true
		}
		for _, q := range r.Quarantined {
			notes = append(notes, fmt.Sprintf("  %s: kept for inspection: %s", name, q))
		}
		for _, p := range r.Problems {
			notes = append(notes, fmt.Sprintf("  %s: %s", name, p))
		}
	}
	tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(stdout, n)
	}
	if found == 0 {
		fmt.Fprintf(stdout, "no disk queues under %s\n", filepath.Join(*stateDir, "queue"))
	}
	if action == "verify" && damaged {
		fmt.Fprintln(stdout, "damage found: `alertrelay queue repair` (or the next start) keeps every good record")
		return exitFailure
	}
	return exitOK
}
