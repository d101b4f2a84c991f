package cybertrace

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	ctemu "github.com/alertrelay/alertrelay/internal/emulator/cybertrace"
	"github.com/alertrelay/alertrelay/internal/event"
)

// countWriter discards batches, counting documents; done is closed once
// target documents arrived.
type countWriter struct {
	n      atomic.Int64
	target int64
	done   chan struct{}
}

func (w *countWriter) WriteBatch(_ context.Context, b *event.Batch) error {
	if w.n.Add(int64(b.Len())) >= w.target && w.target > 0 {
		select {
		case <-w.done:
		default:
			close(w.done)
		}
	}
	return nil
}

// BenchmarkServe pushes b.N realistic lines (the emulator's default mix)
// through loopback TCP connections into the source, with a writer that
// discards the documents.
func BenchmarkServe(b *testing.B) {
	const poolLines = 4096
	g := ctemu.NewGenerator(1, ctemu.DefaultGenOptions())
	var pool []byte
	ends := make([]int, 0, poolLines)
	for range poolLines {
		pool = append(g.Next(pool), '\n')
		ends = append(ends, len(pool))
	}
	avg := len(pool) / poolLines

	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			cfg := testConfig()
			cfg.IncludeOriginal = false
			cfg.MaxLineBytes = 1 << 20
			w := &countWriter{target: int64(b.N), done: make(chan struct{})}
			r := startSourceLog(b, cfg, w, discardLogger())
			cs := make([]interface {
				Write([]byte) (int, error)
				Close() error
			}, conns)
			for i := range cs {
				cs[i] = r.dial(b)
			}
			errs := make(chan error, conns)
			b.SetBytes(int64(avg))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i, c := range cs {
				n := b.N / conns
				if i < b.N%conns {
					n++
				}
				go func() {
					defer c.Close()
					for ; n >= poolLines; n -= poolLines {
						if _, err := c.Write(pool); err != nil {
							errs <- err
							return
						}
					}
					if n > 0 {
						if _, err := c.Write(pool[:ends[n-1]]); err != nil {
							errs <- err
							return
						}
					}
					errs <- nil
				}()
			}
			for range cs {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-w.done:
			case <-time.After(time.Minute):
				b.Fatalf("%d of %d lines arrived", w.n.Load(), b.N)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "lines/s")
			r.waitServed(b, conns)
			if m := metricsOf(r.m); m.Invalid != 0 || m.Events != float64(b.N) {
				b.Fatalf("metrics %+v, want %d events", m, b.N)
			}
		})
	}
}
