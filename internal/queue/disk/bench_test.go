package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/queue"
)

// benchBatch is a batch of n documents of size bytes.
func benchBatch(n, size int) *event.Batch {
	b := event.NewBatch(n, size)
	pad := strings.Repeat("x", size-21)
	for i := range n {
		b.Append(fmt.Appendf(nil, `{"n":%08d,"p":"%s"}`, i, pad))
	}
	return b
}

var benchLimits = queue.Limits{MaxEvents: 1000, MaxBytes: 4 << 20, Linger: time.Millisecond}

// benchPush pushes b.N batches of 1000 × 500-byte documents from pushers
// goroutines while one goroutine pops and acks, as the delivery loop does.
func benchPush(b *testing.B, q queue.Queue, pushers int) {
	batch := benchBatch(1000, 500)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			l, err := q.Pop(context.Background(), benchLimits)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				b.Error(err)
				return
			}
			l.Ack()
		}
	}()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range pushers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := q.Push(context.Background(), batch); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	q.Close()
	<-drained
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)*float64(batch.Len())/secs, "events/s")
	b.ReportMetric(float64(b.N)*float64(batch.Size())/secs/1e6, "MB/s")
}

func BenchmarkDiskPush(b *testing.B) {
	for _, pushers := range []int{1, 4} {
		b.Run(fmt.Sprintf("pushers=%d", pushers), func(b *testing.B) {
			q, _, err := Open(b.TempDir(), Options{MaxBytes: 256 << 20})
			if err != nil {
				b.Fatal(err)
			}
			benchPush(b, q, pushers)
		})
	}
}

func BenchmarkMemoryPush(b *testing.B) {
	for _, pushers := range []int{1, 4} {
		b.Run(fmt.Sprintf("pushers=%d", pushers), func(b *testing.B) {
			benchPush(b, queue.NewMemory(256<<20, false), pushers)
		})
	}
}

// BenchmarkDiskPopAck pops and acks batches of 1000 documents that are
// already on disk (pushed outside the timer, 64 batches at a time).
func BenchmarkDiskPopAck(b *testing.B) {
	q, _, err := Open(b.TempDir(), Options{MaxBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	batch := benchBatch(1000, 500)
	ctx := context.Background()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		chunk := min(64, b.N-done)
		for range chunk {
			if err := q.Push(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for range chunk {
			l, err := q.Pop(ctx, benchLimits)
			if err != nil {
				b.Fatal(err)
			}
			if l.Batch.Len() != 1000 {
				b.Fatalf("popped %d", l.Batch.Len())
			}
			l.Ack()
		}
		done += chunk
	}
	b.StopTimer()
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)*1000/secs, "events/s")
	b.ReportMetric(float64(b.N)*float64(batch.Size())/secs/1e6, "MB/s")
}
