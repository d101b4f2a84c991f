package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/deadletter"
	"github.com/alertrelay/alertrelay/internal/delivery"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/queue"
	"github.com/alertrelay/alertrelay/internal/telemetry"
)

// ReplayResult says what a replay did.
type ReplayResult struct {
	Files    []string // dead-letter files read
	Replayed int      // events sent again
	Skipped  int      // records without an event (torn lines)
	Dead     int      // events the sink rejected permanently again (back in the dead-letter file)
}

// Replay sends the events in sink name's dead-letter file through that sink
// again, with its configured batching and retries. The file is first
// renamed to <name>.replaying-<unix time> (the daemon, if running, starts a
// new one), and removed once every event in it was delivered or
// dead-lettered again; an interrupted replay leaves it, and the next replay
// picks it up (events already delivered are then sent twice: at least once).
func Replay(ctx context.Context, f *config.File, name string, log *slog.Logger) (ReplayResult, error) {
	var res ReplayResult
	var errs config.Errors
	_, sinks := decode(f, &errs)
	if len(errs) > 0 {
		return res, errs.Sorted()
	}
	var spec *decoded
	for i := range sinks {
		if sinks[i].Name == name {
			spec = &sinks[i]
		}
	}
	if spec == nil {
		return res, fmt.Errorf("no sink named %q in the config", name)
	}
	dir := filepath.Join(f.StateDir, "deadletter")
	active := filepath.Join(dir, "sink-"+name+".ndjson")
	if _, err := os.Stat(active); err == nil {
		moved := active + ".replaying-" + strconv.FormatInt(time.Now().Unix(), 10)
		if err := os.Rename(active, moved); err != nil {
			return res, err
		}
		time.Sleep(100 * time.Millisecond) // let a running daemon's in-flight record land
	}
	res.Files, _ = filepath.Glob(active + ".replaying-*")
	sort.Strings(res.Files)
	if len(res.Files) == 0 {
		return res, nil
	}

	e := &env{deps: pipeline.Deps{Log: log, StateDir: f.StateDir, Now: time.Now, IDs: event.NewIDGen()},
		metrics: telemetry.NewMetrics(), stdout: io.Discard, stateDir: f.StateDir}
	defer func() {
		for _, d := range e.dead {
			d.Close()
		}
	}()
	sink, err := sinkTypes()[spec.Type].build(name, spec.cfg, e)
	if err != nil {
		return res, err
	}
	defer sink.Close(context.WithoutCancel(ctx))
	dl, err := e.deadLetter("sink", name, true)
	if err != nil {
		return res, err
	}
	for _, file := range res.Files {
		n, skipped, err := replayFile(ctx, file, spec, sink, dl, e, log)
		res.Replayed += n
		res.Skipped += skipped
		if err != nil {
			return res, fmt.Errorf("%s: %w (the file is kept; run replay again)", file, err)
		}
		if err := os.Remove(file); err != nil {
			return res, err
		}
	}
	res.Dead = int(dl.Count())
	return res, nil
}

func replayFile(ctx context.Context, path string, spec *decoded, sink pipeline.Sink, dl pipeline.DeadLetterer, e *env, log *slog.Logger) (n, skipped int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	q := queue.NewMemory(spec.sink.Buffer.MaxBytes, false)
	loop := &delivery.Loop{Name: spec.Name, Queue: q, Sink: sink, Dead: dl, Cfg: spec.sink.Config,
		Log: log.With("component", "replay", "sink", spec.Name), M: e.metrics.Sink(spec.Name)}
	done := make(chan error, 1)
	go func() { done <- loop.Run(ctx) }()
	b := event.NewBatch(spec.sink.Batch.MaxEvents, 1024)
	push := func() error {
		if b.Len() == 0 {
			return nil
		}
		err := q.Push(ctx, b)
		b.Release()
		b = event.NewBatch(spec.sink.Batch.MaxEvents, 1024)
		return err
	}
	err = deadletter.Read(f, func(r deadletter.Record) error {
		if len(r.Event) == 0 {
			skipped++
			return nil
		}
		b.Append(r.Event)
		n++
		if b.Len() >= spec.sink.Batch.MaxEvents {
			return push()
		}
		return nil
	}, func(line int, err error) {
		skipped++
		log.Warn("skipping a line that is not a dead-letter record", "file", path, "line", line, "err", err)
	})
	if err == nil {
		err = push()
	}
	q.Close()
	if lerr := <-done; err == nil {
		err = lerr
	}
	return n, skipped, err
}
