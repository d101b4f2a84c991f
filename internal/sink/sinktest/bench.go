package sinktest

import (
	"context"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
)

// Bench is the part of *testing.B that WriteLoop uses.
type Bench interface {
	TB
	SetBytes(n int64)
	ReportAllocs()
	ResetTimer()
	StopTimer()
	Elapsed() time.Duration
	ReportMetric(n float64, unit string)
}

// WriteLoop is the measured part of a sink's BenchmarkWrite: with the
// timer running only around them, it makes n calls write(ctx, batch) (n is
// b.N), one at a time as the delivery loop does, and fails b on the first
// error. Then it stops the timer, reports events/s and raw-B/event (the
// mean document size) and returns how many events were written, for the
// caller's own per-event metrics (wire-B/event).
func WriteLoop(b Bench, n int, batch *event.Batch, write func(context.Context, *event.Batch) error) (events float64) {
	b.Helper()
	ctx := context.Background()
	b.SetBytes(int64(batch.Size()))
	b.ReportAllocs()
	b.ResetTimer()
	for range n {
		if err := write(ctx, batch); err != nil {
			b.Fatal(err)
			return 0
		}
	}
	b.StopTimer()
	events = float64(n * batch.Len())
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(batch.Size())/float64(batch.Len()), "raw-B/event")
	return events
}
