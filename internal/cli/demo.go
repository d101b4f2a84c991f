package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/alertrelay/alertrelay/internal/daemon"
	"github.com/alertrelay/alertrelay/internal/emulator/cybertrace"
	cynetemu "github.com/alertrelay/alertrelay/internal/emulator/cynet"
	"github.com/alertrelay/alertrelay/internal/telemetry"
)

// demoConfig runs on embedded defaults: the CyberTrace listener on a free
// loopback port, every event to stdout and to an NDJSON file.
const demoConfig = `state_dir: %q
log: {level: warn}
shutdown_timeout: 10s
sources:
  cybertrace:
    type: cybertrace
    listen: 127.0.0.1:0
    include_original: true
  cynet:
    type: cynet
    base_url: %s
    username: %s
    password: %s
    client_id: "%s"
    poll_interval: 2s
    initial_lookback: 1h
sinks:
%s
  file:
    type: file
    path: %q
    batch: {timeout: 100ms}
    buffer: {type: memory}   # the demo drains everything on exit
`

func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("demo", "demo [--duration D] [--rate R] [--state-dir DIR]", stderr)
	duration := fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	rate := fs.Float64("rate", 5, "emulated CyberTrace events per second")
	cynetRate := fs.Float64("cynet-rate", 0.5, "new emulated Cynet 360 alerts per second")
	conns := fs.Int("conns", 2, "emulated CyberTrace connections")
	stateDir := fs.String("state-dir", "", "keep state and the output file here (default: a temporary directory, removed at exit)")
	sinkName := fs.String("sink", "stdout", "where events go besides the file: stdout, or an emulated SIEM ("+strings.Join(demoTargetNames(), ", ")+")")
	pretty := fs.Bool("pretty", false, "indent the printed events")
	quiet := fs.Bool("quiet", false, "print only the summary, not the events")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	dir := *stateDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "alertrelay-demo-")
		if err != nil {
			fmt.Fprintf(stderr, "demo: %v\n", err)
			return exitFailure
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	outFile := filepath.Join(dir, "events.ndjson")
	api := cynetemu.New(cynetemu.Options{Seed: time.Now().UnixNano()})
	api.AddAlertsAt(3, time.Now().Add(-10*time.Minute))
	if err := api.Start("127.0.0.1:0"); err != nil {
		fmt.Fprintf(stderr, "demo: cynet emulator: %v\n", err)
		return exitFailure
	}
	defer api.Close()
	genCtx, stopGen := context.WithCancel(ctx)
	defer stopGen()
	api.StartGenerator(genCtx, *cynetRate, false)
	sinkYAML := fmt.Sprintf("  console:\n    type: stdout\n    pretty: %t\n    batch: {timeout: 100ms}", *pretty)
	var target *demoTarget
	if *sinkName != "stdout" {
		open, ok := demoTargets[*sinkName]
		if !ok {
			fmt.Fprintf(stderr, "demo: --sink %q: want stdout or one of %s\n", *sinkName, strings.Join(demoTargetNames(), ", "))
			return exitUsage
		}
		var err error
		if target, err = open(ctx, emuOptions{addr: "127.0.0.1:0"}); err != nil {
			fmt.Fprintf(stderr, "demo: emulated %s: %v\n", *sinkName, err)
			return exitFailure
		}
		defer target.close()
		sinkYAML = "  console:\n    type: " + *sinkName + "\n    batch: {timeout: 100ms}\n    buffer: {type: memory}\n" + target.yaml
	}
	cfgText := fmt.Sprintf(demoConfig, dir, api.URL(), cynetemu.DefaultUser, cynetemu.DefaultPassword, cynetemu.DefaultClientID, sinkYAML, outFile)
	f, errs := daemon.CheckBytes([]byte(cfgText))
	if len(errs) > 0 {
		fmt.Fprintf(stderr, "demo: built-in config: %v\n", errs)
		return exitFailure
	}
	log, _ := telemetry.NewLogger(stderr, f.Log.Level, f.Log.Format)
	events := stdout
	if *quiet {
		events = io.Discard
	}
	d, err := daemon.New(f, daemon.Options{Log: log, Stdout: events})
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return exitFailure
	}

	// The daemon outlives the emulator: it stops only after every line the
	// emulator sent has been handed over.
	dctx, stopDaemon := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDaemon()
	derr := make(chan error, 1)
	go func() { derr <- d.Run(dctx) }()
	addr, err := d.SourceAddr(ctx, "cybertrace")
	if err != nil {
		stopDaemon()
		if rerr := <-derr; rerr != nil {
			err = rerr
		}
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return exitFailure
	}

	ectx := ctx
	if *duration > 0 {
		var cancel context.CancelFunc
		ectx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	dest := "stdout"
	if target != nil {
		dest = target.what
	}
	fmt.Fprintf(stderr, "alertrelay demo: emulated CyberTrace -> %s and emulated Cynet 360 API %s -> %s and %s\n", addr, api.URL(), dest, outFile)
	fmt.Fprintf(stderr, "press Ctrl-C to stop\n")
	m := d.Metrics()
	summary := func(sent int64) string {
		src := m.Source("cybertrace")
		line := fmt.Sprintf("summary: emulator sent %d | received %d lines, %d invalid | cynet %d alerts | delivered %d to %s, %d to file",
			sent, int64(telemetry.Value(src.Lines)), int64(telemetry.Value(src.Invalid)),
			int64(telemetry.Value(m.Source("cynet").Events)),
			int64(telemetry.Value(m.Sink("console").Sent)), *sinkName, int64(telemetry.Value(m.Sink("file").Sent)))
		if target != nil {
			line += fmt.Sprintf(" | %s holds %d", target.what, target.received())
		}
		return line
	}
	var mu sync.Mutex
	var last time.Time
	st, perr := cybertrace.Push(ectx, cybertrace.PushConfig{
		Addr: addr.String(), Count: -1, Rate: *rate, Conns: *conns, Seed: time.Now().UnixNano(),
		CRLFEvery: 7, Flags: "", Gen: demoGen(), ProgressEvery: time.Second,
		OnProgress: func(sent int64) {
			mu.Lock()
			defer mu.Unlock()
			if time.Since(last) >= 5*time.Second {
				last = time.Now()
				fmt.Fprintln(stderr, summary(sent))
			}
		},
	})
	if perr != nil && ectx.Err() == nil {
		fmt.Fprintf(stderr, "demo: emulator: %v\n", perr)
	}
	stopDaemon()
	if err := <-derr; err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return exitFailure
	}
	fmt.Fprintln(stderr, strings.Replace(summary(st.Lines), "summary:", "final:", 1))
	if target != nil {
		if last := target.last(); len(last) > 0 {
			fmt.Fprintf(events, "the last event as %s stored it:\n%s\n", target.what, last)
		}
	}
	return exitOK
}

func demoGen() cybertrace.GenOptions {
	g := cybertrace.DefaultGenOptions()
	g.DateFormat = "Jan 02 15:04:05"
	g.Now = time.Now
	return g
}
