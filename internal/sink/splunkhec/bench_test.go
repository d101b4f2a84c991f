package splunkhec

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	hec "github.com/alertrelay/alertrelay/internal/emulator/splunkhec"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

// BenchmarkWrite sends batches of 1000 documents of about 1 KB over
// loopback, one Write at a time as the delivery loop does, to the emulator
// (which decompresses and splits every envelope but keeps nothing) or to a
// receiver that reads the body and answers Success without decoding it
// (what the sink alone costs). Both ends run in this process.
func BenchmarkWrite(b *testing.B) {
	batch := sinktest.Detections(1000)
	discard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"text":"Success","code":0}`)
	}))
	defer discard.Close()
	for _, receiver := range []string{"emulator", "discard"} {
		for _, compression := range []string{CompressionNone, CompressionGzip} {
			b.Run(receiver+"/"+compression, func(b *testing.B) {
				srv := sinktest.Start(b, hec.New(hec.Options{Token: token, DiscardDocs: true}))
				url := srv.URL()
				if receiver == "discard" {
					url = discard.URL
				}
				cfg := defaults(url)
				cfg.Compression = compression
				// Default max_body_bytes: a batch is two requests (and two
				// compressions in parallel).
				s, err := New(cfg, pipeline.Deps{})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close(context.Background())
				events := sinktest.WriteLoop(b, b.N, batch, s.Write)
				if receiver == "emulator" {
					b.ReportMetric(float64(srv.BytesOnWire())/events, "wire-B/event")
					if srv.Count() != b.N*batch.Len() {
						b.Fatalf("emulator counted %d events, want %d", srv.Count(), b.N*batch.Len())
					}
				}
			})
		}
	}
}

// BenchmarkEncode measures the envelope encoding alone (no HTTP).
func BenchmarkEncode(b *testing.B) {
	batch := sinktest.Detections(1000)
	cfg := defaults("http://127.0.0.1:1")
	cfg.Index = "security"
	cfg.Fields = map[string]string{"env": "prod"}
	s, err := New(cfg, pipeline.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	b.SetBytes(int64(batch.Size()))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.encodeEvents(batch)
	}
	b.ReportMetric(float64(b.N*batch.Len())/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEncodeGzip measures encoding and compressing a batch (no HTTP)
// with the default max_body_bytes, i.e. two requests compressed in
// parallel when GOMAXPROCS allows: run with -cpu 1,2.
func BenchmarkEncodeGzip(b *testing.B) {
	batch := sinktest.Detections(1000)
	cfg := defaults("http://127.0.0.1:1")
	cfg.Compression = CompressionGzip
	s, err := New(cfg, pipeline.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	b.SetBytes(int64(batch.Size()))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.encodeEvents(batch)
		parts := s.plan()
		s.compress(parts)
		for i, p := range parts {
			if len(s.body(i, p)) == 0 {
				b.Fatal("empty body")
			}
		}
	}
	b.ReportMetric(float64(b.N*batch.Len())/b.Elapsed().Seconds(), "events/s")
}
