package queue

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
)

// Memory is a bounded in-memory Queue. Its events are lost if the process
// dies; use it where the disk queue's cost is not worth it (stdout, demos).
type Memory struct {
	maxBytes int64
	dropNew  bool

	mu      sync.Mutex
	batches []*event.Batch // FIFO; batches[0] is read from docs[next:]
	next    int            // first document of batches[0] not yet popped
	bytes   int64          // stored, including popped but unacked
	events  int            // stored, including popped but unacked
	avail   int            // stored and not yet popped
	availB  int            // their bytes
	closed  bool
	changed chan struct{} // closed and replaced on every state change
}

// NewMemory returns a queue holding at most maxBytes of documents. With
// dropNewest a full queue refuses batches (ErrFull) instead of blocking.
func NewMemory(maxBytes int64, dropNewest bool) *Memory {
	return &Memory{maxBytes: maxBytes, dropNew: dropNewest, changed: make(chan struct{})}
}

func (q *Memory) notify() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// Push implements Queue.
func (q *Memory) Push(ctx context.Context, b *event.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	size := int64(b.Size())
	cp := event.NewBatch(b.Len(), 0)
	cp.AppendBatch(b)
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ErrClosed
		}
		if q.bytes == 0 || q.bytes+size <= q.maxBytes {
			q.batches = append(q.batches, cp)
			q.bytes += size
			q.events += b.Len()
			q.avail += b.Len()
			q.availB += b.Size()
			q.notify()
			q.mu.Unlock()
			return nil
		}
		if q.dropNew {
			q.mu.Unlock()
			return ErrFull
		}
		wait := q.changed
		q.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Pop implements Queue.
func (q *Memory) Pop(ctx context.Context, lim Limits) (*Lease, error) {
	var deadline <-chan time.Time
	for {
		q.mu.Lock()
		avail := q.avail
		switch {
		case avail > 0 && (avail >= lim.MaxEvents || q.availB >= lim.MaxBytes || q.closed):
			return q.take(lim), nil // take unlocks
		case avail == 0 && q.closed:
			q.mu.Unlock()
			return nil, io.EOF
		}
		wait := q.changed
		q.mu.Unlock()
		if avail > 0 && deadline == nil {
			t := time.NewTimer(lim.Linger)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-wait:
		case <-deadline:
			q.mu.Lock()
			if q.avail > 0 {
				return q.take(lim), nil
			}
			q.mu.Unlock()
			deadline = nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// take pops up to lim and unlocks mu.
func (q *Memory) take(lim Limits) *Lease {
	out := event.NewBatch(0, 0)
	var size int64
fill:
	for len(q.batches) > 0 {
		b := q.batches[0]
		for q.next < b.Len() {
			d := b.Doc(q.next)
			if out.Len() >= lim.MaxEvents || (out.Len() > 0 && out.Size()+len(d) > lim.MaxBytes) {
				break fill
			}
			out.Append(d)
			size += int64(len(d))
			q.next++
		}
		q.batches[0] = nil
		q.batches = q.batches[1:]
		q.next = 0
	}
	q.avail -= out.Len()
	q.availB -= out.Size()
	q.mu.Unlock()
	n := out.Len()
	return &Lease{Batch: out, ack: func() {
		q.mu.Lock()
		q.bytes -= size
		q.events -= n
		q.notify()
		q.mu.Unlock()
	}}
}

// Close implements Queue.
func (q *Memory) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		q.notify()
	}
	return nil
}

// Stats reports stored, unacked documents.
func (q *Memory) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return Stats{Events: q.events, Bytes: q.bytes}
}
