package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/queue"
	"github.com/alertrelay/alertrelay/internal/telemetry"
)

// scriptSink answers each Write with the next scripted error and records
// what it accepted.
type scriptSink struct {
	mu       sync.Mutex
	script   []func(b *event.Batch) error
	accepted []string
	calls    int
}

func (s *scriptSink) Write(ctx context.Context, b *event.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.calls < len(s.script) {
		err = s.script[s.calls](b)
	}
	s.calls++
	failed := map[int]bool{}
	var pe *pipeline.PartialError
	if errors.As(err, &pe) {
		for _, it := range pe.Items {
			failed[it.Index] = true
		}
	} else if err != nil {
		return err
	}
	for i := 0; i < b.Len(); i++ {
		if !failed[i] {
			s.accepted = append(s.accepted, string(b.Doc(i)))
		}
	}
	return err
}
func (s *scriptSink) Close(context.Context) error { return nil }

type memDead struct {
	mu   sync.Mutex
	docs []string
}

func (d *memDead) DeadLetter(reason string, data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.docs = append(d.docs, reason+": "+string(data))
	return nil
}

func run(t *testing.T, sink *scriptSink, docs ...string) (*memDead, []time.Duration) {
	t.Helper()
	q := queue.NewMemory(1<<20, false)
	b := event.NewBatch(len(docs), 8)
	for _, d := range docs {
		b.Append([]byte(d))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Push(ctx, b); err != nil {
		t.Fatal(err)
	}
	q.Close()
	dead := &memDead{}
	var waits []time.Duration
	l := &Loop{
		Name: "t", Queue: q, Sink: sink, Dead: dead, Log: slog.New(slog.DiscardHandler),
		M:     telemetry.NewMetrics().Sink("t"),
		Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil },
	}
	l.Cfg.SetDefaults()
	if err := l.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return dead, waits
}

func TestRetryUntilDelivered(t *testing.T) {
	fail := func(*event.Batch) error { return errors.New("connection refused") }
	s := &scriptSink{script: []func(*event.Batch) error{fail, fail, fail}}
	dead, waits := run(t, s, "a", "b")
	if d := cmp.Diff([]string{"a", "b"}, s.accepted); d != "" {
		t.Error(d)
	}
	if len(dead.docs) != 0 || len(waits) != 3 {
		t.Fatalf("dead %v, waits %v", dead.docs, waits)
	}
	// Exponential with jitter in [d/2, d]: 1s, 2s, 4s nominal.
	for i, w := range waits {
		nominal := time.Second << i
		if w < nominal/2 || w > nominal {
			t.Errorf("wait %d = %s, want within [%s, %s]", i, w, nominal/2, nominal)
		}
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	s := &scriptSink{script: []func(*event.Batch) error{func(*event.Batch) error {
		return &pipeline.RetryAfterError{Err: errors.New("429"), Delay: 30 * time.Second}
	}}}
	_, waits := run(t, s, "a")
	if len(waits) != 1 || waits[0] != 30*time.Second {
		t.Fatalf("waits = %v, want [30s]", waits)
	}
}

func TestPermanentGoesToDeadLetter(t *testing.T) {
	s := &scriptSink{script: []func(*event.Batch) error{func(*event.Batch) error {
		return pipeline.Permanent(errors.New("400 bad request"))
	}}}
	dead, waits := run(t, s, "a", "b")
	if d := cmp.Diff([]string{"400 bad request: a", "400 bad request: b"}, dead.docs); d != "" {
		t.Error(d)
	}
	if len(s.accepted) != 0 || len(waits) != 0 {
		t.Errorf("accepted %v, waits %v", s.accepted, waits)
	}
}

func TestPartialRetriesOnlyFailedItems(t *testing.T) {
	var second []string
	s := &scriptSink{script: []func(*event.Batch) error{
		func(*event.Batch) error {
			return &pipeline.PartialError{Items: []pipeline.ItemError{
				{Index: 1, Err: errors.New("429 es_rejected_execution")},
				{Index: 2, Err: errors.New("mapper_parsing_exception"), Permanent: true},
				{Index: 3, Err: errors.New("503")},
			}}
		},
		func(b *event.Batch) error {
			for i := 0; i < b.Len(); i++ {
				second = append(second, string(b.Doc(i)))
			}
			return nil
		},
	}}
	dead, _ := run(t, s, "a", "b", "c", "d", "e")
	if d := cmp.Diff([]string{"b", "d"}, second); d != "" {
		t.Errorf("retried (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"a", "e", "b", "d"}, s.accepted); d != "" {
		t.Errorf("accepted (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"mapper_parsing_exception: c"}, dead.docs); d != "" {
		t.Errorf("dead (-want +got):\n%s", d)
	}
}

func TestStopLeavesBatchUnacked(t *testing.T) {
	q := queue.NewMemory(1<<20, false)
	b := event.NewBatch(1, 8)
	b.Append([]byte("x"))
	q.Push(context.Background(), b)
	ctx, cancel := context.WithCancel(context.Background())
	s := &scriptSink{script: []func(*event.Batch) error{func(*event.Batch) error { cancel(); return fmt.Errorf("down") }}}
	l := &Loop{Name: "t", Queue: q, Sink: s, Dead: &memDead{}, Log: slog.New(slog.DiscardHandler), M: telemetry.NewMetrics().Sink("t")}
	l.Cfg.SetDefaults()
	if err := l.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if st := q.Stats(); st.Events != 1 {
		t.Fatalf("queue holds %d events, want the unacked 1", st.Events)
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{Batch: BatchConfig{MaxEvents: -1, MaxBytes: 10, Timeout: -1}, Retry: RetryConfig{Initial: time.Minute, Max: time.Second}}
	if errs := c.Validate(); len(errs) != 4 {
		t.Fatalf("got %d errors, want 4: %v", len(errs), errs)
	}
	var ok Config
	ok.SetDefaults()
	if errs := ok.Validate(); len(errs) != 0 {
		t.Fatal(errs)
	}
}
