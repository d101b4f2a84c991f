package syslog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	syslogemu "github.com/alertrelay/alertrelay/internal/emulator/syslog"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

func startEmu(t testing.TB, network string, opt syslogemu.Options) *syslogemu.Server {
	t.Helper()
	s := syslogemu.New(opt)
	var err error
	switch network {
	case NetworkUDP:
		err = s.StartUDP("127.0.0.1:0")
	default:
		err = s.Start("127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// expected returns, for each document, the message the encoder makes.
func expected(t *testing.T, s *Sink, docs [][]byte) []string {
	t.Helper()
	var out []string
	for _, d := range docs {
		m, _, err := s.enc.appendMessage(nil, d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(m))
	}
	return out
}

// TestWriteDelivers sends the sample documents over every transport,
// framing, format and body and checks what the receiver parsed, field by
// field.
func TestWriteDelivers(t *testing.T) {
	docs := sinktest.Golden[[]byte](t)
	for _, tc := range []struct {
		name    string
		network string
		framing string
		format  string
		body    string
	}{
		{"tcp octet rfc5424 cef", NetworkTCP, "", FormatRFC5424, BodyCEF},
		{"tcp lf rfc5424 cef", NetworkTCP, FramingLF, FormatRFC5424, BodyCEF},
		{"tcp octet rfc3164 cef", NetworkTCP, FramingOctetCounting, FormatRFC3164, BodyCEF},
		{"tcp lf rfc3164 json", NetworkTCP, FramingLF, FormatRFC3164, BodyJSON},
		{"tcp octet rfc5424 original", NetworkTCP, "", FormatRFC5424, BodyOriginal},
		{"udp rfc5424 cef", NetworkUDP, "", FormatRFC5424, BodyCEF},
		{"udp rfc3164 json", NetworkUDP, "", FormatRFC3164, BodyJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu := startEmu(t, tc.network, syslogemu.Options{})
			cfg := testConfig(tc.network, emu.Addr())
			cfg.Framing, cfg.Format, cfg.Body = tc.framing, tc.format, tc.body
			cfg.MaxMessageBytes = 8192
			s, _ := newSink(t, cfg)
			if err := s.Write(sinktest.Context(t), sinktest.Batch(docs...)); err != nil {
				t.Fatal(err)
			}
			if !emu.WaitCount(len(docs), 5*time.Second) {
				t.Fatalf("received %d of %d messages (malformed %d: %s)", emu.Count(), len(docs), emu.Malformed(), emu.LastError())
			}
			got := emu.Messages()
			if len(got) != len(docs) || emu.Malformed() != 0 {
				t.Fatalf("got %d messages, %d malformed, want %d", len(got), emu.Malformed(), len(docs))
			}
			want := expected(t, s, docs)
			wantFraming := syslogemu.FramingOctetCounting
			switch {
			case tc.network == NetworkUDP:
				wantFraming = syslogemu.FramingDatagram
			case tc.framing == FramingLF:
				wantFraming = syslogemu.FramingLF
			}
			for i, m := range got {
				d, err := decodeDoc(docs[i])
				if err != nil {
					t.Fatal(err)
				}
				type fields struct {
					Raw, Format, Framing, Hostname, AppName, MsgID, Timestamp, EventID, Body string
					Facility, Severity                                                       int
				}
				ts, err := time.Parse(time.RFC3339Nano, string(d.Timestamp))
				if err != nil {
					t.Fatal(err)
				}
				wantMsgID, wantTS := "", ts.Format(time.Stamp)
				if tc.format == FormatRFC5424 {
					wantMsgID, wantTS = string(d.Event.Dataset), string(d.Timestamp)
				}
				var wantBody string
				switch tc.body {
				case BodyCEF:
					wantBody = string(appendCEF(nil, d))
				case BodyJSON:
					wantBody = string(docs[i])
				case BodyOriginal:
					wantBody = string(d.Event.Original)
					if wantBody == "" {
						wantBody = string(docs[i])
					}
				}
				wantID := string(d.Event.ID)
				if tc.format == FormatRFC3164 && tc.body == BodyOriginal {
					wantID = ""
				}
				w := fields{want[i], tc.format, wantFraming, "relay01", "alertrelay", wantMsgID, wantTS, wantID, wantBody, 20, syslogSeverity(d)}
				g := fields{string(m.Raw), m.Format, m.Framing, m.Hostname, m.AppName, m.MsgID, m.Timestamp, m.EventID, string(m.Msg), m.Facility, m.Severity}
				if diff := cmp.Diff(w, g); diff != "" {
					t.Errorf("message %d (-want +got):\n%s", i, diff)
				}
				if tc.format == FormatRFC5424 {
					if v, _ := m.Param("alertrelay@32473", "provider"); v != string(d.Event.Provider) {
						t.Errorf("message %d: SD provider %q, want %q", i, v, d.Event.Provider)
					}
				}
			}
		})
	}
}

// TestBadDocumentIsDeadLettered: a document that is not JSON cannot be
// encoded; it is named Permanent in a PartialError and the rest is sent.
func TestBadDocumentIsDeadLettered(t *testing.T) {
	emu := startEmu(t, NetworkTCP, syslogemu.Options{})
	s, _ := newSink(t, testConfig(NetworkTCP, emu.Addr()))
	b := sinktest.Batch(syntheticDoc("a1"), []byte(`not json`), syntheticDoc("a3"), []byte(`[1,2]`))
	err := s.Write(sinktest.Context(t), b)
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a PartialError", err)
	}
	var got []int
	for _, it := range pe.Items {
		if !it.Permanent || !pipeline.IsPermanent(it.Err) {
			t.Errorf("item %d not permanent: %v", it.Index, it.Err)
		}
		got = append(got, it.Index)
	}
	if diff := cmp.Diff([]int{1, 3}, got); diff != "" {
		t.Errorf("indexes (-want +got):\n%s", diff)
	}
	if !emu.WaitCount(2, 5*time.Second) {
		t.Fatalf("received %d", emu.Count())
	}
	if diff := cmp.Diff(map[string]int{"a1": 1, "a3": 1}, emu.IDs()); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}

// TestAllBadIsPartialWithoutSending: a batch of nothing but undecodable
// documents is dead-lettered without connecting.
func TestAllBadIsPartialWithoutSending(t *testing.T) {
	emu := startEmu(t, NetworkTCP, syslogemu.Options{})
	s, _ := newSink(t, testConfig(NetworkTCP, emu.Addr()))
	err := s.Write(sinktest.Context(t), sinktest.Batch([]byte(`x`)))
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) || len(pe.Items) != 1 || !pe.Items[0].Permanent {
		t.Fatalf("got %v", err)
	}
	if emu.Connections() != 0 {
		t.Errorf("connected %d times for nothing to send", emu.Connections())
	}
}

func TestUDPTruncates(t *testing.T) {
	emu := startEmu(t, NetworkUDP, syslogemu.Options{})
	cfg := testConfig(NetworkUDP, emu.Addr())
	cfg.Body = BodyOriginal
	s, logs := newSink(t, cfg)
	long := `{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"big","kind":"alert","original":"` + strings.Repeat("x", 5000) + `"}}`
	if err := s.Write(sinktest.Context(t), sinktest.Batch([]byte(long), syntheticDoc("small"))); err != nil {
		t.Fatal(err)
	}
	if !emu.WaitCount(2, 5*time.Second) {
		t.Fatalf("received %d", emu.Count())
	}
	msgs := emu.Messages()
	if len(msgs[0].Raw) != DefaultMaxMessageBytesUDP {
		t.Errorf("first message is %d bytes, want %d", len(msgs[0].Raw), DefaultMaxMessageBytesUDP)
	}
	if s.Truncated() != 1 {
		t.Errorf("Truncated() = %d, want 1", s.Truncated())
	}
	if !strings.Contains(logs.String(), "truncated") || !strings.Contains(logs.String(), "first_event_id=big") {
		t.Errorf("no truncation warning in logs:\n%s", logs)
	}
}

// TestReceiverDownIsRetryable: while the receiver is down Write fails
// with a retryable error; once it is back the next Write reconnects.
func TestReceiverDownIsRetryable(t *testing.T) {
	emu := startEmu(t, NetworkTCP, syslogemu.Options{})
	s, _ := newSink(t, testConfig(NetworkTCP, emu.Addr()))
	ctx := sinktest.Context(t)
	if err := s.Write(ctx, sinktest.Batch(syntheticDoc("d1"))); err != nil {
		t.Fatal(err)
	}
	if err := emu.SetDown(true); err != nil {
		t.Fatal(err)
	}
	err := s.Write(ctx, sinktest.Batch(syntheticDoc("d2")))
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable error", err)
	}
	if err := s.Check(ctx); err == nil {
		t.Error("Check succeeded with the receiver down")
	}
	if err := emu.SetDown(false); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}
	if err := s.Write(ctx, sinktest.Batch(syntheticDoc("d2"))); err != nil {
		t.Fatal(err)
	}
	if !emu.WaitCount(2, 5*time.Second) {
		t.Fatalf("received %d", emu.Count())
	}
	if diff := cmp.Diff(map[string]int{"d1": 1, "d2": 1}, emu.IDs()); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}

// TestReceiverCrashBetweenBatches: a receiver that dropped the idle
// connection is noticed before the next batch, which goes on a new one.
func TestReceiverCrashBetweenBatches(t *testing.T) {
	emu := startEmu(t, NetworkTCP, syslogemu.Options{})
	s, logs := newSink(t, testConfig(NetworkTCP, emu.Addr()))
	ctx := sinktest.Context(t)
	if err := s.Write(ctx, sinktest.Batch(syntheticDoc("c1"))); err != nil {
		t.Fatal(err)
	}
	emu.WaitCount(1, 5*time.Second)
	emu.DropConnections()
	// The receiver's close reaches the sink asynchronously: poll Write
	// until it succeeds (it must not report success for a lost batch).
	var err error
	for i := 0; i < 50; i++ {
		if err = s.Write(ctx, sinktest.Batch(syntheticDoc("c2"))); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if !emu.WaitCount(2, 5*time.Second) || emu.IDs()["c2"] == 0 {
		t.Fatalf("c2 lost: %v", emu.IDs())
	}
	if emu.Connections() != 2 {
		t.Errorf("%d connections, want 2", emu.Connections())
	}
	if !strings.Contains(logs.String(), "reconnecting") {
		t.Errorf("no reconnect logged:\n%s", logs)
	}
}

// TestRestartMidStream writes a stream of batches with a loop that
// retries each until Write returns nil, as the delivery loop does, while
// the receiver restarts on the same address between batches: some
// restarts while the sink is idle (the sink must notice the dead
// connection by itself), some with the receiver staying down for a few
// attempts. No event may be lost.
//
// The receiver does not restart in the middle of a batch here: over TCP
// syslog a receiver that stops while bytes it already acknowledged sit
// unread in its socket loses them, and no sender can tell (see the
// package documentation).
func TestRestartMidStream(t *testing.T) {
	emu := startEmu(t, NetworkTCP, syslogemu.Options{IDsOnly: true})
	s, _ := newSink(t, testConfig(NetworkTCP, emu.Addr()))
	ctx := sinktest.Context(t)

	const batches, per = 40, 250
	var want []string
	failures := 0
	for i := 0; i < batches; i++ {
		switch {
		case i%10 == 3: // restart while idle
			if err := emu.SetDown(true); err != nil {
				t.Fatal(err)
			}
			if err := emu.SetDown(false); err != nil {
				t.Fatal(err)
			}
		case i%10 == 7: // down for the next attempts
			if err := emu.SetDown(true); err != nil {
				t.Fatal(err)
			}
		}
		b := event.NewBatch(per, 600)
		for j := 0; j < per; j++ {
			id := fmt.Sprintf("r%03d-%03d", i, j)
			want = append(want, id)
			b.Append(syntheticDoc(id))
		}
		for attempt := 0; ; attempt++ {
			err := s.Write(ctx, b)
			if err == nil {
				break
			}
			if pipeline.IsPermanent(err) || ctx.Err() != nil || attempt > 20 {
				t.Fatalf("batch %d attempt %d: %v", i, attempt, err)
			}
			failures++
			if attempt == 2 {
				if err := emu.SetDown(false); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if failures != 3*(batches/10) {
		t.Errorf("%d failed writes, want %d (3 per outage, none for idle restarts)", failures, 3*(batches/10))
	}
	emu.WaitCount(len(want), 5*time.Second) // the receiver reads asynchronously
	ids := emu.IDs()
	var lost []string
	for _, id := range want {
		if ids[id] == 0 {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d events lost (of %d), first %v", len(lost), len(want), lost[:min(5, len(lost))])
	}
	if n := emu.Count(); n != len(want) {
		t.Errorf("received %d messages, want %d (no duplicates expected)", n, len(want))
	}
	if got, wantConns := emu.Connections(), 1+2*(batches/10); got != wantConns {
		t.Errorf("%d connections, want %d", got, wantConns)
	}
}

// TestWriteTimeout: a receiver that accepts but never reads makes Write
// fail once Timeout passes, with a retryable error.
func TestWriteTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	cfg := testConfig(NetworkTCP, ln.Addr().String())
	cfg.Timeout = 300 * time.Millisecond
	cfg.Body, cfg.Severity = BodyJSON, "info"
	s, _ := newSink(t, cfg)
	b := event.NewBatch(4000, 8<<10)
	big := `{"event":{"id":"x"},"pad":"` + strings.Repeat("p", 8000) + `"}`
	for i := 0; i < 4000; i++ { // 32 MB: more than the socket buffers hold
		b.Append([]byte(big))
	}
	start := time.Now()
	err = s.Write(context.Background(), b)
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable timeout", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Write took %s with a 300ms timeout", el)
	}
}

func TestWriteHonoursContext(t *testing.T) {
	emu := startEmu(t, NetworkTCP, syslogemu.Options{})
	s, _ := newSink(t, testConfig(NetworkTCP, emu.Addr()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, sinktest.Batch(syntheticDoc("x"))); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestCloseIdempotentAndNilSafe(t *testing.T) {
	var nilSink *Sink
	if err := nilSink.Close(context.Background()); err != nil {
		t.Error(err)
	}
	emu := startEmu(t, NetworkTCP, syslogemu.Options{})
	s, _ := newSink(t, testConfig(NetworkTCP, emu.Addr()))
	if err := s.Write(sinktest.Context(t), sinktest.Batch(syntheticDoc("x"))); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Write(sinktest.Context(t), sinktest.Batch(syntheticDoc("y"))); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := s.Check(sinktest.Context(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("Check after Close: %v", err)
	}
}

func TestEmptyBatch(t *testing.T) {
	s, _ := newSink(t, testConfig(NetworkTCP, "127.0.0.1:1"))
	if err := s.Write(sinktest.Context(t), event.NewBatch(0, 0)); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	s, err := New(Config{}, pipeline.Deps{})
	if err == nil || s != nil {
		t.Fatalf("New(Config{}) = %v, %v", s, err)
	}
	if !strings.Contains(err.Error(), "address: is required") {
		t.Errorf("error %q does not name the missing address", err)
	}
}
