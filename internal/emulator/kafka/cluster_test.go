package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertrelay/alertrelay/internal/testcert"
)

func start(t *testing.T, opt Options) *Cluster {
	t.Helper()
	c := New(opt)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// producer returns a kgo client for c with extra options.
func producer(t *testing.T, c *Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(c.Addrs()...), kgo.DefaultProduceTopic(DefaultTopic),
		kgo.MetadataMinAge(50 * time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// doc is a document with a compressible padding, so that the producer
// keeps its compression (franz-go sends a batch uncompressed when
// compressing does not make it smaller).
func doc(id string) []byte {
	return fmt.Appendf(nil, `{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":%q,"dataset":"cybertrace.detection"},"pad":"%s"}`,
		id, strings.Repeat("abcd", 64))
}

func produce(ctx context.Context, cl *kgo.Client, ids ...string) error {
	var recs []*kgo.Record
	for _, id := range ids {
		recs = append(recs, &kgo.Record{Key: []byte(id), Value: doc(id)})
	}
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

func TestProduceAndRead(t *testing.T) {
	ctx := testCtx(t)
	c := start(t, Options{})
	cl := producer(t, c, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err := produce(ctx, cl, "a", "b", "c", "a"); err != nil {
		t.Fatal(err)
	}
	ids, err := c.ReadIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"a": 2, "b": 1, "c": 1}, ids); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
	recs, err := c.Records(ctx, DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Fatalf("got %d records, want 4", len(recs))
	}
	for _, r := range recs {
		if r.Codec != "zstd" {
			t.Errorf("record %s: codec %s, want zstd", r.Key, r.Codec)
		}
		if string(r.Value) != string(doc(string(r.Key))) {
			t.Errorf("record %s: value %s", r.Key, r.Value)
		}
	}
	if got := c.Count(); got != 4 {
		t.Errorf("Count = %d, want 4", got)
	}
	if c.Requests() < 1 || c.BytesOnWire() < 4*int64(len(doc("a")))/2 {
		t.Errorf("Requests = %d, BytesOnWire = %d: too low", c.Requests(), c.BytesOnWire())
	}
	if got := c.Distinct(); got != 3 {
		t.Errorf("Distinct = %d, want 3", got)
	}
}

func TestRestartKeepsDataAndPorts(t *testing.T) {
	ctx := testCtx(t)
	c := start(t, Options{})
	addrs := c.Addrs()
	cl := producer(t, c)
	if err := produce(ctx, cl, "1", "2"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetDown(true); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.DialTimeout("tcp", addrs[0], time.Second); err == nil {
		conn.Close()
		t.Fatal("a stopped broker accepted a connection")
	}
	if got := c.Count(); got != 0 {
		t.Errorf("Count while down = %d, want 0", got)
	}
	if err := c.SetDown(false); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(addrs, c.Addrs()); diff != "" {
		t.Errorf("addresses changed (-before +after):\n%s", diff)
	}
	if err := produce(ctx, cl, "3"); err != nil {
		t.Fatalf("producing after the restart: %v", err)
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	ids, err := c.ReadIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"1": 1, "2": 1, "3": 1}, ids); diff != "" {
		t.Errorf("IDs after restarts (-want +got):\n%s", diff)
	}
}

func TestFailNext(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     *kerr.Error
		wantErr *kerr.Error // nil: the client retries and succeeds
	}{
		{"retriable", kerr.NotLeaderForPartition, nil},
		{"message too large", kerr.MessageTooLarge, kerr.MessageTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			c := start(t, Options{Partitions: 1})
			cl := producer(t, c)
			if err := c.FailNext(1, "", tc.err); err != nil {
				t.Fatal(err)
			}
			err := produce(ctx, cl, "x")
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("produce: %v, want %v", err, tc.wantErr)
			}
			want := map[string]int{"x": 1}
			if tc.wantErr != nil {
				want = map[string]int{}
			}
			ids, err := c.ReadIDs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, ids); diff != "" {
				t.Errorf("IDs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestThrottleNext(t *testing.T) {
	ctx := testCtx(t)
	c := start(t, Options{Partitions: 1})
	cl := producer(t, c)
	if err := produce(ctx, cl, "warm-up"); err != nil {
		t.Fatal(err)
	}
	const d = 300 * time.Millisecond
	if err := c.ThrottleNext(1, d); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := produce(ctx, cl, "t"); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(begin); el < d {
		t.Errorf("produce took %s, want at least the throttle %s", el, d)
	}
	if got := c.Count(); got != 2 {
		t.Errorf("Count = %d, want 2", got)
	}
}

func TestSASL(t *testing.T) {
	// PLAIN: the emulator answers a wrong password as Kafka does. SCRAM:
	// kfake closes the connection, so the client sees EOF until it times
	// out.
	for _, mech := range []string{SASLPlain, SASLScramSHA256, SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			ctx := testCtx(t)
			c := start(t, Options{SASLMechanism: mech, User: "relay", Password: "s3cret"})
			good := producer(t, c, kgo.SASL(saslMechanism(mech, "relay", "s3cret")))
			if err := produce(ctx, good, "ok"); err != nil {
				t.Fatalf("with the right password: %v", err)
			}
			bad := producer(t, c, kgo.SASL(saslMechanism(mech, "relay", "wrong")), kgo.RecordDeliveryTimeout(time.Second))
			err := produce(ctx, bad, "no")
			switch {
			case err == nil:
				t.Error("with a wrong password: no error")
			case mech == SASLPlain && !errors.Is(err, kerr.SaslAuthenticationFailed):
				t.Errorf("with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
			case mech == SASLPlain && !strings.Contains(err.Error(), plainFailure):
				t.Errorf("with a wrong password: %v, want Kafka's message %q", err, plainFailure)
			}
			if got := c.Count(); got != 1 {
				t.Errorf("Count = %d, want 1", got)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	ctx := testCtx(t)
	pki := testcert.NewT(t)
	c := start(t, Options{TLS: pki.ServerTLS(true), ClientTLS: pki.ClientTLS(true)})
	cl := producer(t, c, kgo.DialTLSConfig(pki.ClientTLS(true)))
	if err := produce(ctx, cl, "tls"); err != nil {
		t.Fatal(err)
	}
	ids, err := c.ReadIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"tls": 1}, ids); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
}

func TestDiscardRecords(t *testing.T) {
	ctx := testCtx(t)
	c := start(t, Options{DiscardRecords: true})
	cl := producer(t, c)
	if err := produce(ctx, cl, "a", "b"); err != nil {
		t.Fatal(err)
	}
	if got := c.Count(); got != 2 {
		t.Errorf("Count = %d, want 2", got)
	}
	recs, err := c.Records(ctx, DefaultTopic)
	if err != nil || len(recs) != 0 {
		t.Errorf("Records = %d records, %v; want none", len(recs), err)
	}
}

func TestLifecycleErrors(t *testing.T) {
	c := New(Options{})
	if err := c.SetDown(true); err == nil {
		t.Error("SetDown before Start: no error")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err == nil {
		t.Error("second Start: no error")
	}
	c.Close()
	c.Close()
	if err := c.Restart(); err == nil {
		t.Error("Restart after Close: no error")
	}
	if err := c.FailNext(1, "", kerr.NotLeaderForPartition); err == nil {
		t.Error("FailNext after Close: no error")
	}
}
