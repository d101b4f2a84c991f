package elasticsearch

import (
	"context"
	"testing"

	es "github.com/alertrelay/alertrelay/internal/emulator/elasticsearch"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

// BenchmarkWrite sends batches of 1000 documents of about 1 KB to the
// emulator (DiscardDocs) over loopback, one Write at a time as the delivery
// loop does. events/s is the sink and the emulator together on one
// machine.
func BenchmarkWrite(b *testing.B) {
	for _, tc := range []struct{ mode, compression string }{
		{ModeDataStream, CompressionGzip},
		{ModeDataStream, CompressionNone},
		{ModeIndex, CompressionGzip},
	} {
		b.Run(tc.mode+"/"+tc.compression, func(b *testing.B) {
			batch := sinktest.Detections(1000)
			srv := sinktest.Start(b, es.New(es.Options{DiscardDocs: true}))
			cfg := defaults(srv.URL())
			cfg.Mode, cfg.Compression = tc.mode, tc.compression
			if tc.mode == ModeIndex {
				cfg.Index = "alertrelay-{yyyy.MM.dd}"
			}
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

// BenchmarkEncode is the sink's share alone: action lines and body, no
// compression, no network.
func BenchmarkEncode(b *testing.B) {
	batch := sinktest.Detections(1000)
	s := &Sink{dataStream: true, opPrefix: []byte(`{"create":{"_index":"logs-alertrelay-default"`)}
	b.SetBytes(int64(batch.Size()))
	b.ReportAllocs()
	for range b.N {
		s.encode(batch)
	}
	b.ReportMetric(float64(b.N*batch.Len())/b.Elapsed().Seconds(), "events/s")
}
