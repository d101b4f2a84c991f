package sentinel

import (
	"context"
	"testing"

	emu "github.com/alertrelay/alertrelay/internal/emulator/sentinel"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

// BenchmarkWrite sends batches of 1000 documents of about 1 KB (split into
// 1 MiB requests) to the emulator over loopback, one Write at a time as
// the delivery loop does. The emulator checks and counts the rows (and,
// with IDsOnly, their EventIds) on the same cores.
func BenchmarkWrite(b *testing.B) {
	batch := sinktest.Detections(1000)
	for _, compression := range []string{CompressionNone, CompressionGzip} {
		b.Run(compression, func(b *testing.B) {
			srv := sinktest.Start(b, emu.New(emu.Options{IDsOnly: true}))
			cfg := cfgFor(srv)
			cfg.Compression = compression
			s, err := New(cfg, pipeline.Deps{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(context.Background())
			events := sinktest.WriteLoop(b, b.N, batch, s.Write)
			b.ReportMetric(float64(srv.BytesOnWire())/events, "wire-B/event")
			if srv.Distinct() != batch.Len() {
				b.Fatalf("emulator saw %d distinct events, want %d", srv.Distinct(), batch.Len())
			}
		})
	}
}
