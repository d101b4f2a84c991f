package http

import (
	"context"
	"testing"

	"github.com/alertrelay/alertrelay/internal/emulator/httpsink"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

// BenchmarkWrite sends batches of 1000 documents of about 1 KB to the
// emulator over loopback, one Write at a time as the delivery loop does.
func BenchmarkWrite(b *testing.B) {
	batch := sinktest.Detections(1000)
	for _, compression := range []string{CompressionNone, CompressionGzip} {
		b.Run(compression, func(b *testing.B) {
			srv := sinktest.Start(b, httpsink.New(httpsink.Options{DiscardDocs: true}))
			cfg := defaults(srv.URL())
			cfg.Compression = compression
			s, err := New(cfg, pipeline.Deps{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(context.Background())
			events := sinktest.WriteLoop(b, b.N, batch, s.Write)
			b.ReportMetric(float64(srv.BytesOnWire())/events, "wire-B/event")
		})
	}
}
