package syslog

import (
	"context"
	"testing"
	"time"

	syslogemu "github.com/alertrelay/alertrelay/internal/emulator/syslog"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

// BenchmarkWrite sends batches of 1000 sample documents (CyberTrace and
// Cynet) as RFC 5424 + CEF over TCP with octet counting to the emulator,
// and reports events/s and bytes on the wire per event.
func BenchmarkWrite(b *testing.B) {
	for _, body := range []string{BodyCEF, BodyJSON} {
		b.Run(body, func(b *testing.B) {
			docs := sinktest.Golden[[]byte](b)
			emu := startEmu(b, NetworkTCP, syslogemu.Options{DiscardDocs: true})
			cfg := testConfig(NetworkTCP, emu.Addr())
			cfg.Body = body
			s, _ := newSink(b, cfg)
			const per = 1000
			batch := event.NewBatch(per, 1500)
			for i := 0; i < per; i++ {
				batch.Append(docs[i%len(docs)])
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := s.Write(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			if !emu.WaitCount(b.N*per, 10*time.Second) {
				b.Fatalf("received %d of %d", emu.Count(), b.N*per)
			}
			b.ReportMetric(float64(b.N*per)/el.Seconds(), "events/s")
			b.ReportMetric(float64(emu.BytesOnWire())/float64(b.N*per), "wire-B/event")
		})
	}
}
