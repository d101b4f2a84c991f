// Package queuetest is the conformance suite every queue.Queue passes.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/queue"
)

// New makes an empty queue that holds at most maxBytes.
type New func(t *testing.T, maxBytes int64) queue.Queue

func batch(docs ...string) *event.Batch {
	b := event.NewBatch(len(docs), 16)
	for _, d := range docs {
		b.Append([]byte(d))
	}
	return b
}

func docs(b *event.Batch) []string {
	out := make([]string, b.Len())
	for i := range out {
		out[i] = string(b.Doc(i))
	}
	return out
}

var fast = queue.Limits{MaxEvents: 1000, MaxBytes: 1 << 20, Linger: time.Millisecond}

// Run runs every conformance test against queues made by newQueue.
func Run(t *testing.T, newQueue New) {
	t.Run("FIFOAcrossPushes", func(t *testing.T) {
		q := newQueue(t, 1<<20)
		ctx := context.Background()
		if err := q.Push(ctx, batch(`{"n":1}`, `{"n":2}`)); err != nil {
			t.Fatal(err)
		}
		if err := q.Push(ctx, batch(`{"n":3}`)); err != nil {
			t.Fatal(err)
		}
		l, err := q.Pop(ctx, fast)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff([]string{`{"n":1}`, `{"n":2}`, `{"n":3}`}, docs(l.Batch)); d != "" {
			t.Error(d)
		}
		l.Ack()
	})
	t.Run("PooledBatchReturnsAfterAck", func(t *testing.T) {
		q := newQueue(t, 1<<20)
		ctx := context.Background()
		pool := event.NewBatchPool(4, 16, 2)
		b := pool.Get()
		b.Append([]byte("pooled"))
		if err := q.Push(ctx, b); err != nil {
			t.Fatal(err)
		}
		b.Release() // the pusher's reference
		l, err := q.Pop(ctx, fast)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff([]string{"pooled"}, docs(l.Batch)); d != "" {
			t.Fatal(d) // still intact: the queue held a reference
		}
		l.Ack()
		l.Ack() // idempotent
	})
	t.Run("LimitsSplitBatches", func(t *testing.T) {
		q := newQueue(t, 1<<20)
		ctx := context.Background()
		if err := q.Push(ctx, batch("a1", "a2", "a3", "a4", "a5")); err != nil {
			t.Fatal(err)
		}
		var got [][]string
		for _, lim := range []queue.Limits{{MaxEvents: 2, MaxBytes: 100}, {MaxEvents: 10, MaxBytes: 6}, {MaxEvents: 10, MaxBytes: 1}} {
			lim.Linger = time.Millisecond
			l, err := q.Pop(ctx, lim)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, docs(l.Batch))
			l.Ack()
		}
		// MaxBytes counts NDJSON bytes ("a3\n" is 3). MaxBytes 1 still
		// returns one document: a batch is never empty.
		if d := cmp.Diff([][]string{{"a1", "a2"}, {"a3", "a4"}, {"a5"}}, got); d != "" {
			t.Error(d)
		}
	})
	t.Run("LingerReturnsPartialBatch", func(t *testing.T) {
		q := newQueue(t, 1<<20)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := q.Push(ctx, batch("x")); err != nil {
			t.Fatal(err)
		}
		l, err := q.Pop(ctx, queue.Limits{MaxEvents: 100, MaxBytes: 1 << 20, Linger: 20 * time.Millisecond})
		if err != nil {
			t.Fatalf("Pop did not return the partial batch after linger: %v", err)
		}
		if l.Batch.Len() != 1 {
			t.Errorf("got %d docs", l.Batch.Len())
		}
	})
	t.Run("FullBlocksUntilAck", func(t *testing.T) {
		q := newQueue(t, 11)
		ctx := context.Background()
		if err := q.Push(ctx, batch("0123456789")); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- q.Push(ctx, batch("abc")) }()
		select {
		case err := <-done:
			t.Fatalf("Push into a full queue returned %v, want it to block", err)
		case <-time.After(50 * time.Millisecond):
		}
		l, err := q.Pop(ctx, fast)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("Push returned %v before the popped batch was acked", err)
		case <-time.After(50 * time.Millisecond):
		}
		l.Ack()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Push still blocked after Ack")
		}
	})
	t.Run("BlockedPushHonoursContext", func(t *testing.T) {
		q := newQueue(t, 5)
		if err := q.Push(context.Background(), batch("full")); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		if err := q.Push(ctx, batch("more")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
	})
	t.Run("OversizeBatchIntoEmptyQueue", func(t *testing.T) {
		q := newQueue(t, 4)
		if err := q.Push(context.Background(), batch("much larger than four bytes")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("CloseDrainsThenEOF", func(t *testing.T) {
		q := newQueue(t, 1<<20)
		ctx := context.Background()
		if err := q.Push(ctx, batch("a", "b")); err != nil {
			t.Fatal(err)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		if err := q.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := q.Push(ctx, batch("c")); !errors.Is(err, queue.ErrClosed) {
			t.Fatalf("Push after Close = %v, want ErrClosed", err)
		}
		l, err := q.Pop(ctx, queue.Limits{MaxEvents: 100, MaxBytes: 1 << 20, Linger: time.Hour})
		if err != nil {
			t.Fatalf("Pop after Close must return what is left without lingering: %v", err)
		}
		if d := cmp.Diff([]string{"a", "b"}, docs(l.Batch)); d != "" {
			t.Error(d)
		}
		l.Ack()
		if _, err := q.Pop(ctx, fast); !errors.Is(err, io.EOF) {
			t.Fatalf("Pop on a closed, empty queue = %v, want EOF", err)
		}
	})
	t.Run("CloseWakesWaitingPop", func(t *testing.T) {
		q := newQueue(t, 1<<20)
		done := make(chan error, 1)
		go func() { _, err := q.Pop(context.Background(), fast); done <- err }()
		time.Sleep(20 * time.Millisecond)
		q.Close()
		select {
		case err := <-done:
			if !errors.Is(err, io.EOF) {
				t.Fatalf("err = %v, want EOF", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Pop still waiting after Close")
		}
	})
	t.Run("AcksOutOfOrder", func(t *testing.T) {
		q := newQueue(t, 1<<20)
		ctx := context.Background()
		if err := q.Push(ctx, batch("a", "b", "c", "d")); err != nil {
			t.Fatal(err)
		}
		two := queue.Limits{MaxEvents: 2, MaxBytes: 1 << 20, Linger: time.Millisecond}
		l1, err := q.Pop(ctx, two)
		if err != nil {
			t.Fatal(err)
		}
		l2, err := q.Pop(ctx, two)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff([]string{"c", "d"}, docs(l2.Batch)); d != "" {
			t.Fatal(d)
		}
		l2.Ack()
		l1.Ack()
		if err := q.Push(ctx, batch("e")); err != nil {
			t.Fatal(err)
		}
		l, err := q.Pop(ctx, fast)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff([]string{"e"}, docs(l.Batch)); d != "" {
			t.Errorf("acked documents handed out again (-want +got):\n%s", d)
		}
	})
	t.Run("PopHonoursContext", func(t *testing.T) {
		q := newQueue(t, 1<<20)
		if err := q.Push(context.Background(), batch()); err != nil {
			t.Fatalf("empty batch: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		if l, err := q.Pop(ctx, fast); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Pop on an empty queue = %v, %v; want deadline exceeded", l, err)
		}
	})
	t.Run("HugeDocumentRoundTrip", func(t *testing.T) {
		q := newQueue(t, 1<<20)
		ctx := context.Background()
		huge := strings.Repeat("h", 3<<20) // larger than the queue: accepted into an empty one
		if err := q.Push(ctx, batch(huge, "small")); err != nil {
			t.Fatal(err)
		}
		l, err := q.Pop(ctx, queue.Limits{MaxEvents: 10, MaxBytes: 1024, Linger: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if l.Batch.Len() != 1 || string(l.Batch.Doc(0)) != huge {
			t.Fatalf("got %d documents, first %d bytes; want the huge one alone", l.Batch.Len(), len(l.Batch.Doc(0)))
		}
		l.Ack()
		if l, err = q.Pop(ctx, fast); err != nil || !cmp.Equal(docs(l.Batch), []string{"small"}) {
			t.Fatalf("second Pop = %v, %v", l, err)
		}
	})
	t.Run("ConcurrentPushersKeepTheirOrder", func(t *testing.T) {
		q := newQueue(t, 4096)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		const writers, perWriter = 4, 500
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perWriter; i++ {
					if err := q.Push(ctx, batch(fmt.Sprintf("%d:%d", w, i))); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		go func() { wg.Wait(); q.Close() }()
		next := make([]int, writers)
		total := 0
		for {
			l, err := q.Pop(ctx, queue.Limits{MaxEvents: 64, MaxBytes: 1 << 20, Linger: time.Millisecond})
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range docs(l.Batch) {
				var w, i int
				fmt.Sscanf(d, "%d:%d", &w, &i)
				if i != next[w] {
					t.Fatalf("writer %d: got %d, want %d", w, i, next[w])
				}
				next[w]++
				total++
			}
			l.Ack()
		}
		if total != writers*perWriter {
			t.Fatalf("popped %d, want %d", total, writers*perWriter)
		}
	})
}
