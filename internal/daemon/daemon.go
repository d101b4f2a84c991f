// Package daemon assembles a running alertrelay from a config: sources,
// one queue and delivery loop per sink, the routes between them, dead-letter
// files and the admin endpoints; and it stops them in order.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/deadletter"
	"github.com/alertrelay/alertrelay/internal/delivery"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/queue"
	"github.com/alertrelay/alertrelay/internal/queue/disk"
	"github.com/alertrelay/alertrelay/internal/sink/stdout"
	"github.com/alertrelay/alertrelay/internal/state"
	"github.com/alertrelay/alertrelay/internal/telemetry"
)

// Options are what the daemon takes from its caller rather than the config.
type Options struct {
	Log    *slog.Logger
	Stdout io.Writer // where stdout sinks write
	Now    func() time.Time
	IDs    *event.IDGen // nil: a fresh random prefix
}

func (o *Options) fill() {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.IDs == nil {
		o.IDs = event.NewIDGen()
	}
}

// env is what component constructors share.
type env struct {
	deps     pipeline.Deps
	metrics  *telemetry.Metrics
	health   *telemetry.Health
	stdout   io.Writer
	stateDir string
	dead     []*deadletter.File
	state    *state.Store // opened by the first source that needs it
}

// stateStore opens <state_dir>/state.db once, for every source that keeps
// cursors.
func (e *env) stateStore() (*state.Store, error) {
	if e.state == nil {
		st, err := state.Open(filepath.Join(e.stateDir, "state.db"), state.Options{Now: e.deps.Now})
		if err != nil {
			return nil, err
		}
		e.state = st
	}
	return e.state, nil
}

// depsFor returns the shared deps with a logger naming the component.
func (e *env) depsFor(kind, name string) pipeline.Deps {
	d := e.deps
	d.Log = d.Log.With("component", kind, kind, name)
	return d
}

func (e *env) deadLetter(kind, name string, events bool) (*deadletter.File, error) {
	path := filepath.Join(e.stateDir, "deadletter", kind+"-"+name+".ndjson")
	d, err := deadletter.Open(path, kind+" "+name, events, e.deps.Now)
	if err != nil {
		return nil, err
	}
	e.dead = append(e.dead, d)
	return d, nil
}

// Daemon is a built pipeline, ready to Run once.
type Daemon struct {
	cfg     *config.File
	log     *slog.Logger
	env     *env
	sources []*runSource
	sinks   []*runSink
	admin   *telemetry.Admin
	lock    *stateLock

	ready      atomic.Bool   // sources run and every sink passed its check once
	checkEvery time.Duration // sink re-check interval (checkInterval; tests shorten it)
}

// Ready reports what /readyz reports: the sources run and every sink that
// can check its destination has passed once.
func (d *Daemon) Ready() bool { return d.ready.Load() }

// Health is the daemon's component health (/healthz).
func (d *Daemon) Health() *telemetry.Health { return d.env.health }

type runSource struct {
	name   string
	src    pipeline.Source
	router *router
}

type runSink struct {
	name  string
	sink  pipeline.Sink
	queue queue.Queue
	loop  *delivery.Loop
	stop  chan struct{} // closed at shutdown: deliver no further batch
}

// durable reports whether the sink's queue keeps events across restarts.
func (s *runSink) durable() bool { _, ok := s.queue.(*disk.Disk); return ok }

// openQueue opens a sink's buffer: a disk queue under
// <state_dir>/queue/<sink>, recovering what a crash left, or a memory queue.
func (d *Daemon) openQueue(name string, b BufferConfig) (queue.Queue, error) {
	drop := b.WhenFull == "drop_newest"
	if b.Type == "memory" {
		return queue.NewMemory(b.MaxBytes, drop), nil
	}
	log := d.log.With("component", "queue", "sink", name)
	q, rec, err := disk.Open(filepath.Join(d.cfg.StateDir, "queue", name), disk.Options{
		MaxBytes: b.MaxBytes, WhenFullDrop: drop, Now: d.env.deps.Now, Log: log,
	})
	if err != nil {
		return nil, err
	}
	st := q.Stats()
	log.Info("disk queue opened", "pending_events", st.Events, "pending_bytes", st.Bytes)
	if rec != nil && rec.Damaged() {
		log.Warn("disk queue was damaged and has been repaired; nothing is blocked",
			"corrupt_regions", rec.Corrupt, "corrupt_bytes", rec.CorruptBytes, "torn_bytes", rec.TornBytes,
			"position_missing", rec.PositionMissing, "position_invalid", rec.PositionInvalid,
			"quarantined", rec.Quarantined, "problems", rec.Problems)
	}
	return q, nil
}

// New builds a daemon from a validated config. Nothing runs until Run.
func New(f *config.File, opt Options) (*Daemon, error) {
	var errs config.Errors
	sources, sinks := decode(f, &errs)
	if len(errs) > 0 {
		return nil, errs.Sorted()
	}
	opt.fill()
	d := &Daemon{cfg: f, log: opt.Log, checkEvery: checkInterval}
	lock, err := lockStateDir(f.StateDir)
	if err != nil {
		return nil, err
	}
	d.lock = lock
	d.env = &env{
		deps:     pipeline.Deps{Log: opt.Log, StateDir: f.StateDir, Now: opt.Now, IDs: opt.IDs},
		metrics:  telemetry.NewMetrics(),
		health:   telemetry.NewHealth(),
		stdout:   stdout.NewSyncWriter(opt.Stdout),
		stateDir: f.StateDir,
	}
	ok := false
	defer func() {
		if !ok {
			d.closeAll(context.Background())
		}
	}()
	st, kt := sourceTypes(), sinkTypes()
	routes := map[string][]*runSink{}
	for _, s := range sinks {
		sink, err := kt[s.Type].build(s.Name, s.cfg, d.env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Path, err)
		}
		rs := &runSink{name: s.Name, sink: sink}
		d.sinks = append(d.sinks, rs) // closed by closeAll from here on
		if rs.queue, err = d.openQueue(s.Name, s.sink.Buffer); err != nil {
			return nil, fmt.Errorf("%s.buffer: %w", s.Path, err)
		}
		dl, err := d.env.deadLetter("sink", s.Name, true)
		if err != nil {
			return nil, err
		}
		rs.stop = make(chan struct{})
		rs.loop = &delivery.Loop{
			Name: s.Name, Queue: rs.queue, Sink: sink, Dead: dl, Cfg: s.sink.Config,
			Log: opt.Log.With("component", "sink", "sink", s.Name), M: d.env.metrics.Sink(s.Name),
			Stop: rs.stop,
		}
		inputs := s.sink.Inputs
		if len(inputs) == 0 {
			for _, src := range sources {
				inputs = append(inputs, src.Name)
			}
		}
		for _, in := range inputs {
			routes[in] = append(routes[in], rs)
		}
	}
	for _, s := range sources {
		src, err := st[s.Type].build(s.Name, s.cfg, d.env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Path, err)
		}
		r := &router{source: s.Name, log: opt.Log, limiter: telemetry.NewLogLimiter(10 * time.Second)}
		for _, rs := range routes[s.Name] {
			r.queues = append(r.queues, rs.queue)
			r.names = append(r.names, rs.name)
			r.metrics = append(r.metrics, rs.loop.M)
		}
		if len(r.queues) == 0 {
			opt.Log.Warn("source feeds no sink; its events are dropped", "source", s.Name)
		}
		d.sources = append(d.sources, &runSource{name: s.Name, src: src, router: r})
	}
	if f.Admin.Listen != "" {
		d.admin = telemetry.NewAdmin(d.env.metrics, d.env.health, opt.Log, f.Admin.Pprof)
	}
	ok = true
	return d, nil
}

// Metrics is the daemon's metrics registry.
func (d *Daemon) Metrics() *telemetry.Metrics { return d.env.metrics }

// SourceAddr returns the address a listening source bound, waiting until
// it has; for tests and the demo, where sources listen on port 0.
func (d *Daemon) SourceAddr(ctx context.Context, name string) (net.Addr, error) {
	for _, s := range d.sources {
		if s.name != name {
			continue
		}
		l, ok := s.src.(interface {
			Addr(context.Context) (net.Addr, error)
		})
		if !ok {
			return nil, fmt.Errorf("source %s does not listen", name)
		}
		return l.Addr(ctx)
	}
	return nil, fmt.Errorf("no source %s", name)
}

// Run runs until ctx ends, then shuts down in order: sources stop and hand
// over what they read; queues close; delivery loops drain them into the
// sinks within shutdown_timeout; sinks and files close. It returns nil on a
// clean stop, or the first fatal error of a source.
func (d *Daemon) Run(ctx context.Context) error {
	srcCtx, stopSources := context.WithCancel(ctx)
	defer stopSources()
	sinkCtx, stopSinks := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSinks()

	var adminErr chan error
	if d.admin != nil {
		adminErr = make(chan error, 1)
		ln, err := net.Listen("tcp", d.cfg.Admin.Listen)
		if err != nil {
			return fmt.Errorf("admin listener: %w", err)
		}
		d.log.Info("admin endpoints listening", "addr", ln.Addr().String())
		go func() { adminErr <- d.admin.Serve(sinkCtx, ln) }()
	}

	var sinkWG sync.WaitGroup
	for _, s := range d.sinks {
		sinkWG.Add(1)
		go func() {
			defer sinkWG.Done()
			if err := s.loop.Run(sinkCtx); err != nil && !errors.Is(err, context.Canceled) {
				d.log.Error("delivery stopped", "sink", s.name, "err", err)
			}
		}()
	}

	var srcWG sync.WaitGroup
	fatal := make(chan error, len(d.sources))
	for _, s := range d.sources {
		srcWG.Add(1)
		go func() {
			defer srcWG.Done()
			if err := s.src.Run(srcCtx, s.router); err != nil {
				d.log.Error("source failed", "source", s.name, "err", err)
				fatal <- err
				stopSources()
			}
		}()
	}
	// Ready once the sources run and every sink reached its destination.
	checksDone := make(chan struct{})
	go func() {
		defer close(checksDone)
		d.watchSinks(sinkCtx, d.checkEvery, func() {
			d.ready.Store(true)
			if d.admin != nil {
				d.admin.SetReady(true)
			}
		})
	}()
	gaugeCtx, stopGauges := context.WithCancel(sinkCtx)
	gaugesDone := make(chan struct{})
	go func() { defer close(gaugesDone); d.queueGauges(gaugeCtx) }()
	srcWG.Wait()
	var runErr error
	select {
	case runErr = <-fatal:
	default:
	}
	d.log.Info("sources stopped; draining queues", "timeout", d.cfg.ShutdownTimeout)

	// Memory queues are drained into their sinks; disk queues keep what is
	// not yet delivered for the next start, so their loops only finish the
	// batch in hand.
	for _, s := range d.sinks {
		if s.durable() {
			close(s.stop)
		} else {
			s.queue.Close()
		}
	}
	drained := make(chan struct{})
	go func() { sinkWG.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(d.cfg.ShutdownTimeout):
		d.log.Warn("shutdown_timeout reached; undelivered events in memory queues are lost, disk queues keep theirs")
		stopSinks()
		<-drained
	}
	stopGauges()
	<-gaugesDone
	stopSinks() // ends the sink checks; the loops are done
	<-checksDone
	closeCtx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	d.closeAll(closeCtx)
	stopSinks()
	if adminErr != nil {
		if err := <-adminErr; err != nil && runErr == nil {
			runErr = err
		}
	}
	d.log.Info("stopped")
	return runErr
}

// queueGauges keeps every sink's queue depth and oldest-event age current
// (once a second), also while nothing is delivered, as in a SIEM outage.
func (d *Daemon) queueGauges(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for _, s := range d.sinks {
			m := s.loop.M
			if q, ok := s.queue.(interface{ Stats() queue.Stats }); ok {
				st := q.Stats()
				m.QueueEvents.Set(float64(st.Events))
				m.QueueBytes.Set(float64(st.Bytes))
			}
			if q, ok := s.queue.(*disk.Disk); ok {
				age := 0.0
				if old := q.Detail().Oldest; !old.IsZero() {
					age = time.Since(old).Seconds()
				}
				m.QueueAge.Set(age)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Daemon) closeAll(ctx context.Context) {
	for _, s := range d.sinks {
		if s.queue != nil {
			if err := s.queue.Close(); err != nil {
				d.log.Error("closing queue", "sink", s.name, "err", err)
			}
		}
		if s.sink != nil {
			if err := s.sink.Close(ctx); err != nil {
				d.log.Error("closing sink", "sink", s.name, "err", err)
			}
		}
	}
	for _, f := range d.env.dead {
		if err := f.Close(); err != nil {
			d.log.Error("closing dead-letter file", "path", f.Path(), "err", err)
		}
	}
	if d.env.state != nil {
		if err := d.env.state.Close(); err != nil {
			d.log.Error("closing state store", "err", err)
		}
	}
	d.lock.release()
}

// router is a source's BatchWriter: it pushes every batch into the queue of
// each sink that takes the source, in config order.
type router struct {
	source  string
	queues  []queue.Queue
	names   []string
	metrics []*telemetry.SinkMetrics
	log     *slog.Logger
	limiter *telemetry.LogLimiter
}

// WriteBatch implements pipeline.BatchWriter. A queue with when_full:
// drop_newest that is full drops the batch for that sink only (logged,
// rate-limited); any other error is returned.
func (r *router) WriteBatch(ctx context.Context, b *event.Batch) error {
	for i, q := range r.queues {
		err := q.Push(ctx, b)
		switch {
		case err == nil:
		case errors.Is(err, queue.ErrFull):
			r.metrics[i].Dropped.Add(float64(b.Len()))
			if n, ok := r.limiter.Allow(r.names[i]); ok {
				r.log.Warn("queue full; dropping newest events (when_full: drop_newest)", "source", r.source, "sink", r.names[i], "events", b.Len(), "suppressed", n)
			}
		default:
			return fmt.Errorf("queue of sink %s: %w", r.names[i], err)
		}
	}
	return nil
}
