// Package queue buffers encoded events between the sources and one sink's
// delivery loop. Every sink has its own queue, so a slow or failed SIEM
// holds back only its own events.
//
// Memory is the in-process queue. The disk queue (package queue/disk)
// satisfies the same Queue contract and passes the same conformance suite
// (queuetest), which is the seam it plugs into.
package queue

import (
	"context"
	"errors"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
)

// ErrClosed is returned by Push after Close.
var ErrClosed = errors.New("queue closed")

// ErrFull is returned by Push with WhenFull "drop_newest" when the batch
// does not fit; the batch was not stored.
var ErrFull = errors.New("queue full")

// Queue is a FIFO of encoded documents with one reader.
//
// Push stores b. A queue that keeps the batch in memory takes a reference
// (b.Retain) and releases it when the batch is acked; the caller must not
// modify b after Push, whatever Push returns. Push returns nil once the
// batch is held as durably as the queue can hold it; while the
// queue is full it blocks (back-pressure) or, with drop_newest, returns
// ErrFull at once. A batch larger than the whole queue is accepted into an
// empty queue rather than blocking forever.
//
// Pop returns the oldest documents not yet handed out, up to the limits,
// waiting until there is at least one, or until Linger has passed since the
// first one arrived when fewer than MaxEvents are there. After Close it
// keeps returning what is left, then io.EOF. Only one goroutine may Pop.
// Documents handed out by Pop count as pending until the Lease is acked.
//
// Close stops new pushes and wakes waiters; it is idempotent.
type Queue interface {
	Push(ctx context.Context, b *event.Batch) error
	Pop(ctx context.Context, lim Limits) (*Lease, error)
	Close() error
}

// Limits bound one Pop.
type Limits struct {
	MaxEvents int
	MaxBytes  int
	Linger    time.Duration
}

// Lease is a batch handed to the reader. Ack tells the queue the batch is
// delivered (or dead-lettered) and may be forgotten; the reader must not
// use Batch after Ack.
type Lease struct {
	Batch *event.Batch
	ack   func()
}

// NewLease returns a lease of b whose first Ack calls ack. It is for Queue
// implementations outside this package, such as the disk queue.
func NewLease(b *event.Batch, ack func()) *Lease {
	return &Lease{Batch: b, ack: ack}
}

// Ack releases the batch. It is idempotent.
func (l *Lease) Ack() {
	if l.ack != nil {
		l.ack()
		l.ack = nil
	}
}

// Stats describe what a queue holds.
type Stats struct {
	Events int   // stored and not yet acked
	Bytes  int64 // their size
}
