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
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ErrClosed
		}
		if q.bytes == 0 || q.bytes+size <= q.maxBytes {
			b.Retain() // released when the lease that hands it out is acked
			q.batches = append(q.batches, b)
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

// take pops up to lim and unlocks mu. A stored batch that fits the limits
// is handed out as it is (no copy); only small batches, which a slow trickle
// of events produces, are merged into one.
func (q *Memory) take(lim Limits) *Lease {
	var out *event.Batch
	var release []*event.Batch // references to drop at ack
	b := q.batches[0]
	fits := b.Len() <= lim.MaxEvents && (b.Size() <= lim.MaxBytes || b.Len() == 1)
	small := b.Len()*8 < lim.MaxEvents && b.Size()*8 < lim.MaxBytes
	if q.next == 0 && fits && !(small && len(q.batches) > 1) {
		out = b
		release = append(release, b)
		q.batches[0] = nil
		q.batches = q.batches[1:]
	} else {
		n, size := q.measure(lim)
		out = event.NewBatch(n, size/n)
		for out.Len() < n {
			b := q.batches[0]
			for q.next < b.Len() && out.Len() < n {
				out.Append(b.Doc(q.next))
				q.next++
			}
			if q.next == b.Len() {
				b.Release() // fully copied out
				q.batches[0] = nil
				q.batches = q.batches[1:]
				q.next = 0
			}
		}
	}
	q.avail -= out.Len()
	q.availB -= out.Size()
	q.mu.Unlock()
	n, size := out.Len(), int64(out.Size())
	return &Lease{Batch: out, ack: func() {
		for _, b := range release {
			b.Release()
		}
		q.mu.Lock()
		q.bytes -= size
		q.events -= n
		q.notify()
		q.mu.Unlock()
	}}
}

// measure counts the documents and bytes the next take returns (at least
// one document). Called with mu held.
func (q *Memory) measure(lim Limits) (n, size int) {
	next := q.next
	for _, b := range q.batches {
		for ; next < b.Len(); next++ {
			d := len(b.Doc(next)) + 1 // NDJSON bytes, as Batch.Size counts
			if n >= lim.MaxEvents || (n > 0 && size+d > lim.MaxBytes) {
				return n, size
			}
			n++
			size += d
		}
		next = 0
	}
	return n, size
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
