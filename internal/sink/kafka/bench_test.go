package kafka

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	kafkaemu "github.com/alertrelay/alertrelay/internal/emulator/kafka"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
)

// benchBatch returns n detection-like documents of about 1 KB (the http
// sink's benchmark documents): fixed field names, some repeated values,
// random hashes and addresses, so that compression sees what it would in
// production.
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

// BenchmarkWrite produces batches of 1000 documents of about 1 KB to the
// emulator (3 partitions, records acknowledged and discarded) over
// loopback, one Write at a time as the delivery loop does.
func BenchmarkWrite(b *testing.B) {
	batch := benchBatch(1000)
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
			b.ReportMetric(float64(c.BytesOnWire()-wire0)/events, "wire-B/event")
			b.ReportMetric(float64(batch.Size())/float64(batch.Len()), "raw-B/event")
		})
	}
}
