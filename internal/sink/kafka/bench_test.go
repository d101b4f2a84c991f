package kafka

import (
	"context"
	"testing"

	kafkaemu "github.com/alertrelay/alertrelay/internal/emulator/kafka"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

// BenchmarkWrite produces batches of 1000 documents of about 1 KB to the
// emulator (3 partitions, records acknowledged and discarded) over
// loopback, one Write at a time as the delivery loop does.
func BenchmarkWrite(b *testing.B) {
	batch := sinktest.Detections(1000)
	for _, codec := range []string{CompressionNone, CompressionLZ4, CompressionZstd, CompressionGzip} {
		b.Run(codec, func(b *testing.B) {
			c := kafkaemu.New(kafkaemu.Options{DiscardRecords: true})
			if err := c.Start(); err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			var cfg Config
			cfg.SetDefaults()
			cfg.Brokers, cfg.Compression = c.Addrs(), codec
			s, err := New(cfg, pipeline.Deps{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(context.Background())
			ctx := context.Background()
			if err := s.Write(ctx, batch); err != nil { // connect, load metadata
				b.Fatal(err)
			}
			wire0 := c.BytesOnWire()
			events := sinktest.WriteLoop(b, b.N, batch, s.Write)
			b.ReportMetric(float64(c.BytesOnWire()-wire0)/events, "wire-B/event")
		})
	}
}
