// Package delivery moves events from a sink's queue to the sink: it batches,
// retries with back-off, dead-letters permanent rejects and acks the queue
// only once the sink has taken (or definitively refused) every event of a
// batch. Retry, batching and per-sink metrics live here once, so a sink only
// encodes and sends.
package delivery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/queue"
	"github.com/alertrelay/alertrelay/internal/telemetry"
)

// Config is a sink's `batch` and `retry` blocks.
type Config struct {
	Batch BatchConfig `yaml:"batch"`
	Retry RetryConfig `yaml:"retry"`
}

// BatchConfig bounds one delivery.
type BatchConfig struct {
	MaxEvents int           `yaml:"max_events"`
	MaxBytes  int           `yaml:"max_bytes"`
	Timeout   time.Duration `yaml:"timeout"` // how long to wait for a batch to fill
}

// RetryConfig shapes the exponential back-off. There is no attempt limit:
// an event is retried until it is delivered or dead-lettered.
type RetryConfig struct {
	Initial time.Duration `yaml:"initial"`
	Max     time.Duration `yaml:"max"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Batch.MaxEvents == 0 {
		c.Batch.MaxEvents = 1000
	}
	if c.Batch.MaxBytes == 0 {
		c.Batch.MaxBytes = 1 << 20
	}
	if c.Batch.Timeout == 0 {
		c.Batch.Timeout = time.Second
	}
	if c.Retry.Initial == 0 {
		c.Retry.Initial = time.Second
	}
	if c.Retry.Max == 0 {
		c.Retry.Max = time.Minute
	}
}

// Validate reports every problem; field names are relative to the sink.
func (c *Config) Validate() []error {
	var errs []error
	add := func(f, format string, args ...any) { errs = append(errs, config.Errorf(f, format, args...)) }
	if c.Batch.MaxEvents < 1 || c.Batch.MaxEvents > 1_000_000 {
		add("batch.max_events", "want 1 to 1000000, got %d", c.Batch.MaxEvents)
	}
	if c.Batch.MaxBytes < 1024 {
		add("batch.max_bytes", "want at least 1024, got %d", c.Batch.MaxBytes)
	}
	if c.Batch.Timeout <= 0 {
		add("batch.timeout", "want more than 0, got %s", c.Batch.Timeout)
	}
	if c.Retry.Initial <= 0 {
		add("retry.initial", "want more than 0, got %s", c.Retry.Initial)
	}
	if c.Retry.Max < c.Retry.Initial {
		add("retry.max", "want at least retry.initial (%s), got %s", c.Retry.Initial, c.Retry.Max)
	}
	return errs
}

// Loop delivers one sink's queue.
type Loop struct {
	Name  string
	Queue queue.Queue
	Sink  pipeline.Sink
	Dead  pipeline.DeadLetterer
	Cfg   Config
	Log   *slog.Logger
	M     *telemetry.SinkMetrics
	// Sleep waits d or until ctx ends; tests replace it. Nil: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Stop, when closed, makes Run return nil before taking another batch
	// (the batch in hand is still delivered, within ctx). Optional.
	Stop <-chan struct{}
}

// Run delivers until the queue is closed and drained (nil), or ctx ends
// (ctx.Err(); the batch in hand stays unacked, so a durable queue hands it
// out again after a restart).
func (l *Loop) Run(ctx context.Context) error {
	if l.Sleep == nil {
		l.Sleep = pipeline.Sleep
	}
	lim := queue.Limits{MaxEvents: l.Cfg.Batch.MaxEvents, MaxBytes: l.Cfg.Batch.MaxBytes, Linger: l.Cfg.Batch.Timeout}
	popCtx := ctx
	if l.Stop != nil {
		var cancel context.CancelFunc
		popCtx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-l.Stop:
				cancel()
			case <-popCtx.Done():
			}
		}()
	}
	for {
		lease, err := l.Queue.Pop(popCtx, lim)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() == nil && popCtx.Err() != nil {
				return nil // stopped between batches
			}
			return err
		}
		if err := l.deliver(ctx, lease.Batch); err != nil {
			l.Log.Warn("stopping with an undelivered batch", "events", lease.Batch.Len(), "err", err)
			return err
		}
		lease.Ack()
		if s, ok := l.Queue.(interface{ Stats() queue.Stats }); ok {
			st := s.Stats()
			l.M.QueueEvents.Set(float64(st.Events))
			l.M.QueueBytes.Set(float64(st.Bytes))
		}
	}
}

// deliver sends b until every event is accepted or dead-lettered. It
// returns only ctx's error.
func (l *Loop) deliver(ctx context.Context, b *event.Batch) error {
	backoff := l.Cfg.Retry.Initial
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err := l.Sink.Write(ctx, b)
		if err == nil {
			l.M.Latency.Observe(time.Since(start).Seconds())
			l.M.Sent.Add(float64(b.Len()))
			if attempt > 0 {
				l.Log.Info("delivered after retrying", "attempts", attempt+1, "events", b.Len())
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.M.Failed.Inc()
		var partial *pipeline.PartialError
		switch {
		case pipeline.IsPermanent(err):
			l.Log.Error("sink rejected a batch permanently; writing it to the dead-letter file", "events", b.Len(), "err", err)
			l.deadLetterAll(b, err)
			return nil
		case errors.As(err, &partial):
			retry := l.splitPartial(b, partial)
			l.M.Sent.Add(float64(b.Len() - len(partial.Items)))
			if retry == nil {
				return nil
			}
			b = retry
		}
		wait := jitter(backoff)
		var ra *pipeline.RetryAfterError
		if errors.As(err, &ra) && ra.Delay > wait {
			wait = ra.Delay
		}
		l.Log.Warn("delivery failed; retrying", "events", b.Len(), "attempt", attempt+1, "wait", wait, "err", err)
		l.M.Retried.Add(float64(b.Len()))
		if err := l.Sleep(ctx, wait); err != nil {
			return err
		}
		backoff = min(2*backoff, l.Cfg.Retry.Max)
	}
}

// splitPartial dead-letters the permanently failed items of b and returns
// a batch of the ones to retry (nil when there are none), in order.
func (l *Loop) splitPartial(b *event.Batch, p *pipeline.PartialError) *event.Batch {
	var retry *event.Batch
	for _, it := range p.Items {
		if it.Index < 0 || it.Index >= b.Len() {
			continue
		}
		if it.Permanent {
			l.deadLetter(b.Doc(it.Index), it.Err)
			continue
		}
		if retry == nil {
			retry = event.NewBatch(len(p.Items), 0)
		}
		retry.Append(b.Doc(it.Index))
	}
	return retry
}

func (l *Loop) deadLetterAll(b *event.Batch, err error) {
	for i := 0; i < b.Len(); i++ {
		l.deadLetter(b.Doc(i), err)
	}
}

func (l *Loop) deadLetter(doc []byte, cause error) {
	l.M.DeadLettered.Inc()
	if err := l.Dead.DeadLetter(cause.Error(), doc); err != nil {
		l.Log.Error("could not write the dead-letter file; event lost", "err", err)
	}
}

// jitter spreads retries of many instances: a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}
