package splunkhec

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	hec "github.com/alertrelay/alertrelay/internal/emulator/splunkhec"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// benchBatch returns n detection-like documents of about 1 KB: fixed field
// names, some repeated values and random hashes and addresses, so that
// compression sees what it would in production.
func benchBatch(n int) *event.Batch {
	r := rand.New(rand.NewPCG(1, 2))
	hex := func(k int) string {
		const digits = "0123456789abcdef"
		var sb strings.Builder
		for range k {
			sb.WriteByte(digits[r.IntN(16)])
		}
		return sb.String()
	}
	cats := []string{"KL_Malicious_Hash_MD5", "KL_IP_Reputation", "KL_Malicious_URL", "KL_Phishing_URL", "KL_BotnetCnC_URL"}
	b := event.NewBatch(n, 1100)
	for i := range n {
		md5, sha1, sha256 := hex(32), hex(40), hex(64)
		ip := fmt.Sprintf("%d.%d.%d.%d", r.IntN(223)+1, r.IntN(256), r.IntN(256), r.IntN(256))
		cat := cats[r.IntN(len(cats))]
		doc := fmt.Sprintf(`{"@timestamp":"2025-03-01T08:%02d:%02d.%03dZ","event":{"id":"6b1f0c2a9e%014d","kind":"alert","category":["threat"],"type":["indicator"],"dataset":"cybertrace.detection","module":"cybertrace","provider":"ct","created":"2025-03-01T08:%02d:%02d.%03dZ"},"observer":{"vendor":"Kaspersky","product":"CyberTrace"},"threat":{"feed":{"name":"%s"},"indicator":{"type":"file","name":"%s","provider":"Kaspersky CyberTrace","confidence":"High","file":{"hash":{"md5":"%s"}},"first_seen":"2015-07-10T23:53:00Z","last_seen":"2020-07-14T13:35:00Z"}},"source":{"ip":"%s"},"file":{"hash":{"md5":"%s","sha1":"%s","sha256":"%s"}},"cybertrace":{"category":"%s","matchedIndicator":"%s","md5":"%s","confidence":"100","context":{"MD5":"%s","SHA1":"%s","SHA256":"%s","file_size":"%d","popularity":"%d","threat":"HEUR:Trojan.Win32.Generic"}}}`,
			i/60%60, i%60, i%1000, i, i/60%60, i%60, i%1000, cat, md5, md5, ip, md5, sha1, sha256, cat, md5, md5, md5, sha1, sha256, r.IntN(1<<20), r.IntN(5)+1)
		b.Append([]byte(doc))
	}
	return b
}

// BenchmarkWrite sends batches of 1000 documents of about 1 KB over
// loopback, one Write at a time as the delivery loop does, to the emulator
// (which decompresses and splits every envelope but keeps nothing) or to a
// receiver that reads the body and answers Success without decoding it
// (what the sink alone costs). Both ends run in this process.
func BenchmarkWrite(b *testing.B) {
	batch := benchBatch(1000)
	discard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"text":"Success","code":0}`)
	}))
	defer discard.Close()
	for _, receiver := range []string{"emulator", "discard"} {
		for _, compression := range []string{CompressionNone, CompressionGzip} {
			b.Run(receiver+"/"+compression, func(b *testing.B) {
				srv := hec.New(hec.Options{Token: token, DiscardDocs: true})
				if err := srv.Start("127.0.0.1:0"); err != nil {
					b.Fatal(err)
				}
				defer srv.Close()
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
				ctx := context.Background()
				b.SetBytes(int64(batch.Size()))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if err := s.Write(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				events := float64(b.N * batch.Len())
				b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
				b.ReportMetric(float64(batch.Size())/float64(batch.Len()), "raw-B/event")
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
	batch := benchBatch(1000)
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
	batch := benchBatch(1000)
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
