package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertrelay/alertrelay/internal/config"
	kafkaemu "github.com/alertrelay/alertrelay/internal/emulator/kafka"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
	"github.com/alertrelay/alertrelay/internal/testcert"
)

func startCluster(t testing.TB, opt kafkaemu.Options) *kafkaemu.Cluster {
	t.Helper()
	c := kafkaemu.New(opt)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// defaults is a Config for c with defaults and a short timeout.
func defaults(c *kafkaemu.Cluster) Config {
	var cfg Config
	cfg.SetDefaults()
	cfg.Brokers = c.Addrs()
	cfg.Timeout = 5 * time.Second
	return cfg
}

// fastOpts shorten franz-go's back-offs so that retries inside a Write take
// milliseconds (production keeps the defaults).
var fastOpts = []kgo.Opt{
	kgo.MetadataMinAge(50 * time.Millisecond),
	kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
}

func newTestSink(t testing.TB, cfg Config) (*Sink, *sinktest.LogBuffer) {
	t.Helper()
	return sinktest.NewSink(t, nil, func(d pipeline.Deps) (*Sink, error) { return newSink(cfg, d, fastOpts...) })
}

// synth returns n small documents with ids prefix-0..n-1.
func synth(prefix string, n int) [][]byte {
	docs := make([][]byte, n)
	for i := range docs {
		docs[i] = fmt.Appendf(nil, `{"@timestamp":"2025-03-01T08:01:%02d.%03dZ","event":{"id":"%s-%d","dataset":"cybertrace.detection","provider":"ct"},"message":"%s"}`,
			i%60, i%1000, prefix, i, strings.Repeat("detection ", 20))
	}
	return docs
}

func idOf(t testing.TB, doc []byte) string {
	m, ok := event.ReadMeta(doc)
	if !ok || m.ID == nil {
		t.Fatalf("no event.id in %s", doc)
	}
	return string(event.Unquote(nil, m.ID))
}

func readIDs(t testing.TB, c *kafkaemu.Cluster) map[string]int {
	t.Helper()
	ids, err := c.ReadIDs(sinktest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func wantIDs(t testing.TB, docs [][]byte, times int) map[string]int {
	want := map[string]int{}
	for _, d := range docs {
		want[idOf(t, d)] += times
	}
	return want
}

func TestWriteRecordsFieldByField(t *testing.T) {
	c := startCluster(t, kafkaemu.Options{Topics: []string{"alerts"}, Partitions: 4})
	cfg := defaults(c)
	cfg.Topic = "alerts"
	cfg.Headers = map[string]string{"origin": "relay-1", "env": "test"}
	s, _ := newTestSink(t, cfg)

	docs := append(sinktest.Golden[[]byte](t), synth("spread", 40)...)
	b := sinktest.Batch(docs...)
	ctx := sinktest.Context(t)
	// Twice: the same key must land on the same partition both times.
	for range 2 {
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := c.Records(ctx, "alerts")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2*len(docs) {
		t.Fatalf("got %d records, want %d", len(recs), 2*len(docs))
	}
	byKey := map[string][]kafkaemu.Record{}
	partitions := map[int32]bool{}
	for _, r := range recs {
		byKey[string(r.Key)] = append(byKey[string(r.Key)], r)
		partitions[r.Partition] = true
	}
	for _, d := range docs {
		id := idOf(t, d)
		got := byKey[id]
		if len(got) != 2 {
			t.Errorf("key %s: %d records, want 2", id, len(got))
			continue
		}
		if got[0].Partition != got[1].Partition {
			t.Errorf("key %s: partitions %d and %d, want one", id, got[0].Partition, got[1].Partition)
		}
		m, _ := event.ReadMeta(d)
		wantTS, err := time.Parse(time.RFC3339Nano, string(m.Timestamp))
		if err != nil {
			t.Fatal(err)
		}
		want := struct {
			Value   string
			TS      time.Time
			Headers []kgo.RecordHeader
		}{string(d), wantTS, []kgo.RecordHeader{
			{Key: "dataset", Value: event.Unquote(nil, m.Dataset)},
			{Key: "env", Value: []byte("test")},
			{Key: "origin", Value: []byte("relay-1")},
		}}
		for _, r := range got {
			have := struct {
				Value   string
				TS      time.Time
				Headers []kgo.RecordHeader
			}{string(r.Value), r.Timestamp.UTC(), r.Headers}
			if diff := cmp.Diff(want, have); diff != "" {
				t.Errorf("record %s (-want +got):\n%s", id, diff)
			}
		}
	}
	if len(partitions) < 2 {
		t.Errorf("%d records all on partition(s) %v: keys are not spread", len(recs), partitions)
	}
}

func TestWriteWithoutIDOrTimestamp(t *testing.T) {
	c := startCluster(t, kafkaemu.Options{Partitions: 1})
	s, _ := newTestSink(t, defaults(c))
	docs := [][]byte{[]byte(`{"message":"no event object"}`), []byte(`{"@timestamp":"yesterday","event":{"id":"x\u0041"}}`)}
	before := time.Now().Add(-time.Second)
	if err := s.Write(sinktest.Context(t), sinktest.Batch(docs...)); err != nil {
		t.Fatal(err)
	}
	recs, err := c.Records(sinktest.Context(t), DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("got %d records, want 2", len(recs))
	}
	if recs[0].Key != nil || recs[0].Headers != nil || recs[0].Timestamp.Before(before) {
		t.Errorf("record without meta: key %q, headers %v, timestamp %s (want none, none, now)", recs[0].Key, recs[0].Headers, recs[0].Timestamp)
	}
	if string(recs[1].Key) != "xA" || recs[1].Timestamp.Before(before) {
		t.Errorf("escaped id: key %q (want xA), timestamp %s (want now)", recs[1].Key, recs[1].Timestamp)
	}
}

func TestTopicTemplate(t *testing.T) {
	c := startCluster(t, kafkaemu.Options{Topics: []string{"placeholder"}, Partitions: 2, AutoCreateTopics: true})
	cfg := defaults(c)
	cfg.Topic = "siem.{source}.{dataset}"
	cfg.AutoCreateTopics = true
	s, _ := newTestSink(t, cfg)
	docs := sinktest.Golden[[]byte](t)
	docs = append(docs,
		[]byte(`{"event":{"id":"odd-1","provider":"a b/c","dataset":"x"}}`),
		[]byte(`{"event":{"id":"odd-2"}}`))
	if err := s.Write(sinktest.Context(t), sinktest.Batch(docs...)); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{} // topic -> ids
	for _, topic := range c.Topics() {
		recs, err := c.Records(sinktest.Context(t), topic)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			got[topic] = append(got[topic], string(r.Key))
		}
	}
	want := map[string][]string{}
	for _, d := range docs[:len(docs)-2] {
		m, _ := event.ReadMeta(d)
		topic := "siem." + string(m.Provider) + "." + string(m.Dataset)
		want[topic] = append(want[topic], idOf(t, d))
	}
	want["siem.a_b_c.x"] = []string{"odd-1"}
	want["siem.unknown.unknown"] = []string{"odd-2"}
	sortAll := func(m map[string][]string) {
		for _, v := range m {
			slicesSort(v)
		}
	}
	sortAll(got)
	sortAll(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ids per topic (-want +got):\n%s", diff)
	}
	if len(want) < 4 {
		t.Errorf("the golden documents cover %d topics, want at least 4", len(want))
	}
}

func slicesSort(v []string) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

func TestTopicTemplateInvalidNameIsPermanent(t *testing.T) {
	c := startCluster(t, kafkaemu.Options{Partitions: 1})
	cfg := defaults(c)
	cfg.Topic = "{source}"
	s, _ := newTestSink(t, cfg)
	long := strings.Repeat("p", 300)
	docs := [][]byte{
		[]byte(`{"event":{"id":"ok","provider":"alertrelay"}}`),
		[]byte(`{"event":{"id":"long","provider":"` + long + `"}}`),
		[]byte(`{"event":{"id":"dot","provider":"."}}`),
	}
	err := s.Write(sinktest.Context(t), sinktest.Batch(docs...))
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("Write: %v, want a PartialError", err)
	}
	var got []int
	for _, it := range pe.Items {
		if !it.Permanent || !pipeline.IsPermanent(it.Err) || !strings.Contains(it.Err.Error(), "invalid topic name") {
			t.Errorf("item %d: %v (permanent %v), want a permanent invalid topic error", it.Index, it.Err, it.Permanent)
		}
		got = append(got, it.Index)
	}
	if diff := cmp.Diff([]int{1, 2}, got); diff != "" {
		t.Errorf("failed indexes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"ok": 1}, readIDs(t, c)); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

func TestCompressionRoundTrip(t *testing.T) {
	c := startCluster(t, kafkaemu.Options{
		Topics: []string{"none", "gzip", "snappy", "lz4", "zstd"}, Partitions: 1,
	})
	for _, codec := range []string{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		t.Run(codec, func(t *testing.T) {
			cfg := defaults(c)
			cfg.Topic, cfg.Compression = codec, codec
			s, _ := newTestSink(t, cfg)
			docs := synth(codec, 50)
			if err := s.Write(sinktest.Context(t), sinktest.Batch(docs...)); err != nil {
				t.Fatal(err)
			}
			recs, err := c.Records(sinktest.Context(t), codec)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != len(docs) {
				t.Fatalf("got %d records, want %d", len(recs), len(docs))
			}
			for i, r := range recs {
				if r.Codec != codec {
					t.Errorf("record %d stored with codec %s, want %s", i, r.Codec, codec)
				}
				if !bytes.Equal(r.Value, docs[i]) {
					t.Errorf("record %d: value %q, want %q", i, r.Value, docs[i])
				}
			}
		})
	}
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{SASLPlain, SASLScramSHA256, SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel() // mostly waiting for the wrong password's timeout
			c := startCluster(t, kafkaemu.Options{SASLMechanism: mech, User: "relay", Password: "right-secret", Partitions: 1})
			cfg := defaults(c)
			cfg.SASL = &SASLConfig{Mechanism: strings.ToLower(mech), Username: "relay", Password: config.NewSecret("right-secret")}
			s, _ := newTestSink(t, cfg)
			docs := synth("sasl", 5)
			if err := s.Check(sinktest.Context(t)); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if err := s.Write(sinktest.Context(t), sinktest.Batch(docs...)); err != nil {
				t.Fatalf("Write: %v", err)
			}

			bad := defaults(c)
			bad.Timeout = time.Second
			bad.SASL = &SASLConfig{Mechanism: mech, Username: "relay", Password: config.NewSecret("wrong-secret")}
			bs, logs := newTestSink(t, bad)
			werr := bs.Write(sinktest.Context(t), sinktest.Batch(synth("refused", 3)...))
			cerr := bs.Check(sinktest.Context(t))
			for what, err := range map[string]error{"Write": werr, "Check": cerr} {
				var pe *pipeline.PartialError
				switch {
				case err == nil:
					t.Errorf("%s with a wrong password: no error", what)
					continue
				case pipeline.IsPermanent(err) || errors.As(err, &pe):
					t.Errorf("%s: %v: want one retryable error for the whole batch", what, err)
				}
				// kfake answers a wrong PLAIN password as Kafka does;
				// for SCRAM it closes the connection.
				want := "authentication failed"
				if mech != SASLPlain {
					want = "check the sasl settings"
				}
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s: %v: want %q in the message", what, err, want)
				}
				if strings.Contains(err.Error(), "wrong-secret") {
					t.Errorf("%s: the error reveals the password: %v", what, err)
				}
			}
			if strings.Contains(logs.String(), "secret") {
				t.Errorf("the logs reveal the password:\n%s", logs)
			}
			if diff := cmp.Diff(wantIDs(t, docs, 1), readIDs(t, c)); diff != "" {
				t.Errorf("delivered (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	pki := testcert.NewT(t)
	for _, tc := range []struct {
		name          string
		requireClient bool
		tls           *TLSConfigForTest
		wantErr       string // "" = delivered
	}{
		{"CA", false, &TLSConfigForTest{CA: true}, ""},
		{"no CA", false, &TLSConfigForTest{}, "TLS handshake failed"},
		{"insecure", false, &TLSConfigForTest{Insecure: true}, ""},
		{"mTLS", true, &TLSConfigForTest{CA: true, Cert: true}, ""},
		{"mTLS without cert", true, &TLSConfigForTest{CA: true}, "TLS handshake failed"},
		{"plaintext to TLS", false, nil, "is TLS missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // the failing cases mostly wait for their timeout
			c := startCluster(t, kafkaemu.Options{Partitions: 1, TLS: pki.ServerTLS(tc.requireClient), ClientTLS: pki.ClientTLS(true)})
			cfg := defaults(c)
			if tc.wantErr != "" {
				cfg.Timeout = time.Second
			}
			if tc.tls != nil {
				cfg.TLS = tc.tls.build(pki)
			}
			s, logs := newTestSink(t, cfg)
			docs := synth("tls", 3)
			err := s.Write(sinktest.Context(t), sinktest.Batch(docs...))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(wantIDs(t, docs, 1), readIDs(t, c)); diff != "" {
					t.Errorf("delivered (-want +got):\n%s", diff)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || pipeline.IsPermanent(err) {
					t.Errorf("Write: %v, want a retryable error with %q", err, tc.wantErr)
				}
				if n := c.Count(); n != 0 {
					t.Errorf("%d records stored", n)
				}
			}
			if insecure := strings.Contains(logs.String(), "VERIFICATION IS DISABLED"); insecure != (tc.tls != nil && tc.tls.Insecure) {
				t.Errorf("insecure warning logged: %v", insecure)
			}
		})
	}
}

// TLSConfigForTest picks the parts of the test PKI a tls block uses.
type TLSConfigForTest struct{ CA, Cert, Insecure bool }

func (c *TLSConfigForTest) build(pki *testcert.PKI) *TLSConfig {
	out := &TLSConfig{InsecureSkipVerify: c.Insecure}
	if c.CA {
		out.CAFile = pki.CAFile
	}
	if c.Cert {
		out.CertFile, out.KeyFile = pki.ClientCertFile, pki.ClientKeyFile
	}
	return out
}

func TestBrokerErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       *kerr.Error
		count     int // produce requests failed (-1: all)
		topic     string
		wantNil   bool // franz-go retries and delivers within the Write
		permanent bool // else: retryable
		wantMsg   string
	}{
		{"not leader: retried inside the Write", kerr.NotLeaderForPartition, 2, "", true, false, ""},
		{"not enough replicas: retried inside the Write", kerr.NotEnoughReplicas, 1, "", true, false, ""},
		{"message too large: permanent", kerr.MessageTooLarge, 1, "cynet", false, true, "larger than max_message_bytes"},
		{"invalid record: permanent", kerr.InvalidRecord, 1, "cynet", false, true, "INVALID_RECORD"},
		{"invalid timestamp: permanent", kerr.InvalidTimestamp, 1, "cynet", false, true, "INVALID_TIMESTAMP"},
		{"topic authorization: retryable", kerr.TopicAuthorizationFailed, -1, "cynet", false, false, "authorization failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, kafkaemu.Options{Topics: []string{"ct", "cynet"}, Partitions: 2})
			cfg := defaults(c)
			cfg.Topic = "{source}"
			cfg.Timeout = 2 * time.Second
			s, _ := newTestSink(t, cfg)
			// Even indexes go to topic ct, odd ones to cynet.
			var docs [][]byte
			for i := range 10 {
				src := "ct"
				if i%2 == 1 {
					src = "cynet"
				}
				docs = append(docs, fmt.Appendf(nil, `{"event":{"id":"e%d","provider":"%s"}}`, i, src))
			}
			if err := c.FailNext(tc.count, tc.topic, tc.err); err != nil {
				t.Fatal(err)
			}
			err := s.Write(sinktest.Context(t), sinktest.Batch(docs...))
			if tc.wantNil {
				if err != nil {
					t.Fatalf("Write: %v, want nil", err)
				}
				if diff := cmp.Diff(wantIDs(t, docs, 1), readIDs(t, c)); diff != "" {
					t.Errorf("delivered (-want +got):\n%s", diff)
				}
				return
			}
			var pe *pipeline.PartialError
			if !errors.As(err, &pe) {
				t.Fatalf("Write: %v, want a PartialError", err)
			}
			var idx []int
			for _, it := range pe.Items {
				idx = append(idx, it.Index)
				if it.Permanent != tc.permanent || pipeline.IsPermanent(it.Err) != tc.permanent {
					t.Errorf("item %d: permanent %v (%v), want %v", it.Index, it.Permanent, it.Err, tc.permanent)
				}
				if !strings.Contains(it.Err.Error(), tc.wantMsg) || !strings.Contains(it.Err.Error(), `topic "cynet"`) {
					t.Errorf("item %d: %v: want %q and the topic in the message", it.Index, it.Err, tc.wantMsg)
				}
			}
			if diff := cmp.Diff([]int{1, 3, 5, 7, 9}, idx); diff != "" {
				t.Errorf("failed indexes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantIDs(t, [][]byte{docs[0], docs[2], docs[4], docs[6], docs[8]}, 1), readIDs(t, c)); diff != "" {
				t.Errorf("delivered (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAllRecordsRetryableIsOneError(t *testing.T) {
	c := startCluster(t, kafkaemu.Options{Partitions: 2})
	cfg := defaults(c)
	cfg.Timeout = time.Second
	s, _ := newTestSink(t, cfg)
	if err := c.FailNext(-1, "", kerr.TopicAuthorizationFailed); err != nil {
		t.Fatal(err)
	}
	err := s.Write(sinktest.Context(t), sinktest.Batch(synth("denied", 6)...))
	var pe *pipeline.PartialError
	if err == nil || errors.As(err, &pe) || pipeline.IsPermanent(err) {
		t.Fatalf("Write: %v, want one retryable error", err)
	}
	if !strings.Contains(err.Error(), "none of the 6 events was delivered") || !strings.Contains(err.Error(), "authorization failed") {
		t.Errorf("Write: %v: want the count and the cause", err)
	}
}

func TestRecordTooLargeForClient(t *testing.T) {
	c := startCluster(t, kafkaemu.Options{Partitions: 1})
	cfg := defaults(c)
	cfg.MaxMessageBytes = 2048
	cfg.Compression = CompressionNone
	s, _ := newTestSink(t, cfg)
	big := fmt.Appendf(nil, `{"event":{"id":"big"},"blob":"%s"}`, strings.Repeat("x", 4096))
	docs := [][]byte{[]byte(`{"event":{"id":"small-0"}}`), big, []byte(`{"event":{"id":"small-2"}}`)}
	err := s.Write(sinktest.Context(t), sinktest.Batch(docs...))
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("Write: %v, want a PartialError", err)
	}
	if len(pe.Items) != 1 || pe.Items[0].Index != 1 || !pe.Items[0].Permanent {
		t.Fatalf("items %+v, want index 1 permanent", pe.Items)
	}
	if diff := cmp.Diff(map[string]int{"small-0": 1, "small-2": 1}, readIDs(t, c)); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

func TestThrottling(t *testing.T) {
	c := startCluster(t, kafkaemu.Options{Partitions: 1})
	s, logs := newTestSink(t, defaults(c))
	ctx := sinktest.Context(t)
	if err := s.Write(ctx, sinktest.Batch(synth("warm", 1)...)); err != nil {
		t.Fatal(err)
	}
	const d = 300 * time.Millisecond
	if err := c.ThrottleNext(1, d); err != nil {
		t.Fatal(err)
	}
	docs := synth("throttled", 10)
	begin := time.Now()
	err := s.Write(ctx, sinktest.Batch(docs...))
	if err != nil {
		t.Fatalf("Write: %v: throttling is waited out inside the client", err)
	}
	if el := time.Since(begin); el < d {
		t.Errorf("Write took %s, want at least the throttle %s", el, d)
	}
	if !strings.Contains(logs.String(), "throttles this client") {
		t.Errorf("no throttling warning in the logs:\n%s", logs)
	}
	want := wantIDs(t, docs, 1)
	want["warm-0"] = 1
	if diff := cmp.Diff(want, readIDs(t, c)); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

// TestTimeoutCopiesBatch: a Write that times out with a request in flight
// returns a retryable error at once, the caller may then reuse the batch,
// and the records still in flight keep the original bytes.
func TestTimeoutCopiesBatch(t *testing.T) {
	c := startCluster(t, kafkaemu.Options{Partitions: 1})
	cfg := defaults(c)
	cfg.Timeout = 300 * time.Millisecond
	s, _ := newTestSink(t, cfg)
	ctx := sinktest.Context(t)
	// Connect and load metadata first (the first Write can need more than
	// 300ms under the race detector).
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		err := s.Write(ctx, sinktest.Batch(synth("warm", 1)...))
		if err == nil {
			break
		}
		if attempt == 10 {
			t.Fatalf("warm-up: %v", err)
		}
	}
	c.SetLatency(time.Second)
	docs := synth("slow", 20)
	b := sinktest.Batch(docs...)
	begin := time.Now()
	err := s.Write(ctx, b)
	if el := time.Since(begin); el > 900*time.Millisecond {
		t.Errorf("Write took %s with a 300ms timeout", el)
	}
	var pe *pipeline.PartialError
	if err == nil || errors.As(err, &pe) || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("Write: %v, want one retryable timeout error", err)
	}
	// The delivery loop may now release the batch: scribble over it.
	buf := b.NDJSON()
	for i := range buf {
		buf[i] = 'X'
	}
	c.SetLatency(0)
	// The next Writes wait behind the slow request, then go through, as
	// the delivery loop's retries would.
	for attempt := 0; ; attempt++ {
		err := s.Write(ctx, sinktest.Batch(docs...))
		if err == nil {
			break
		}
		if attempt == 10 {
			t.Fatalf("Write after the timeout: %v", err)
		}
	}
	recs, err := c.Records(ctx, DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{string(synth("warm", 1)[0]): true}
	for _, d := range docs {
		want[string(d)] = true
	}
	counts := map[string]int{}
	for _, r := range recs {
		if !want[string(r.Value)] {
			t.Errorf("record %s has value %.60q...: not a document that was sent", r.Key, r.Value)
		}
		counts[string(r.Key)]++
	}
	for _, d := range docs {
		// Once by the Write that timed out (its request was in flight),
		// at most once more by the retries, which wait for it.
		if n := counts[idOf(t, d)]; n < 1 || n > 2 {
			t.Errorf("%s stored %d times, want 1 or 2 (at-least-once)", idOf(t, d), n)
		}
	}
}

// TestRestartMidStream: the brokers go down and come back on the same
// ports; a delivery loop that retries Write until nil loses nothing.
func TestRestartMidStream(t *testing.T) {
	c := startCluster(t, kafkaemu.Options{Partitions: 3})
	cfg := defaults(c)
	cfg.Timeout = time.Second
	s, _ := newTestSink(t, cfg)
	ctx := sinktest.Context(t)
	var all [][]byte
	failures := 0
	for i := range 12 {
		docs := synth(fmt.Sprintf("b%d", i), 50)
		all = append(all, docs...)
		b := sinktest.Batch(docs...)
		switch i {
		case 4:
			if err := c.SetDown(true); err != nil {
				t.Fatal(err)
			}
		case 8:
			if err := c.Restart(); err != nil { // a quick bounce, no pause
				t.Fatal(err)
			}
		}
		for attempt := 0; ; attempt++ {
			begin := time.Now()
			err := s.Write(ctx, b)
			t.Logf("batch %d attempt %d: %s: %v", i, attempt, time.Since(begin).Round(time.Millisecond), err)
			if err == nil {
				break
			}
			var pe *pipeline.PartialError
			if pipeline.IsPermanent(err) || (errors.As(err, &pe) && hasPermanent(pe)) {
				t.Fatalf("batch %d: permanent failure %v", i, err)
			}
			failures++
			if attempt == 1 && i == 4 {
				if err := c.SetDown(false); err != nil {
					t.Fatal(err)
				}
			}
			if attempt > 20 {
				t.Fatalf("batch %d: still failing after %d attempts: %v", i, attempt, err)
			}
			if errors.As(err, &pe) { // retry only what failed
				var retry [][]byte
				for _, it := range pe.Items {
					retry = append(retry, b.Doc(it.Index))
				}
				b = sinktest.Batch(retry...)
			}
		}
	}
	if failures == 0 {
		t.Error("no Write failed while the brokers were down")
	}
	ids := readIDs(t, c)
	dups := 0
	for _, d := range all {
		id := idOf(t, d)
		switch n := ids[id]; {
		case n == 0:
			t.Errorf("%s lost", id)
		case n > 1:
			dups += n - 1
		}
	}
	if len(ids) != len(all) {
		t.Errorf("%d distinct ids stored, want %d", len(ids), len(all))
	}
	t.Logf("%d events, %d failed Writes, %d duplicates", len(all), failures, dups)
}

func hasPermanent(pe *pipeline.PartialError) bool {
	for _, it := range pe.Items {
		if it.Permanent {
			return true
		}
	}
	return false
}

func TestCheck(t *testing.T) {
	c := startCluster(t, kafkaemu.Options{Topics: []string{"alerts"}, Partitions: 1})
	ctx := sinktest.Context(t)
	for _, tc := range []struct {
		name    string
		topic   string
		auto    bool
		wantErr string
	}{
		{"existing topic", "alerts", false, ""},
		{"missing topic", "nope", false, `topic "nope"): the topic does not exist`},
		{"missing topic, auto-create", "nope", true, ""},
		{"template", "x.{source}", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaults(c)
			cfg.Topic, cfg.AutoCreateTopics = tc.topic, tc.auto
			s, _ := newTestSink(t, cfg)
			err := s.Check(ctx)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Check: %v, want %q", err, tc.wantErr)
			}
			if n := c.Count(); n != 0 {
				t.Errorf("Check produced %d records", n)
			}
		})
	}
	t.Run("down", func(t *testing.T) {
		d := startCluster(t, kafkaemu.Options{})
		s, _ := newTestSink(t, defaults(d))
		d.Close()
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := s.Check(cctx); err == nil {
			t.Error("Check against a stopped cluster: nil")
		}
	})
}

func TestCloseAndErrClosed(t *testing.T) {
	c := startCluster(t, kafkaemu.Options{Partitions: 1})
	s, err := New(defaults(c), pipeline.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Write(sinktest.Context(t), sinktest.Batch(synth("late", 1)...)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if err := s.Check(sinktest.Context(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("Check after Close: %v, want ErrClosed", err)
	}
	var nilSink *Sink
	if err := nilSink.Close(context.Background()); err != nil {
		t.Errorf("Close on nil: %v", err)
	}
	if _, err := New(Config{}, pipeline.Deps{}); err == nil {
		t.Error("New with an empty config: no error")
	}
	// An empty batch and a cancelled context send nothing.
	s2, _ := newTestSink(t, defaults(c))
	if err := s2.Write(sinktest.Context(t), event.NewBatch(0, 0)); err != nil {
		t.Errorf("empty batch: %v", err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s2.Write(cctx, sinktest.Batch(synth("cancelled", 1)...)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	if n := c.Count(); n != 0 {
		t.Errorf("%d records stored", n)
	}
}
