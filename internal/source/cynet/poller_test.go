package cynet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alertrelay/alertrelay/internal/config"
	emu "github.com/alertrelay/alertrelay/internal/emulator/cynet"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/state"
	"github.com/alertrelay/alertrelay/internal/telemetry"
)

// recorder is a BatchWriter that keeps the event IDs it was given.
type recorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *recorder) WriteBatch(_ context.Context, b *event.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i < b.Len(); i++ {
		var doc struct{ Event struct{ ID string } }
		if err := json.Unmarshal(b.Doc(i), &doc); err != nil {
			return err
		}
		r.ids = append(r.ids, doc.Event.ID)
	}
	return nil
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

type deadRec struct {
	mu      sync.Mutex
	reasons []string
}

func (d *deadRec) DeadLetter(reason string, _ []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reasons = append(d.reasons, reason)
	return nil
}

// clock is a settable clock shared by the emulator and the source.
type clock struct{ ns atomic.Int64 }

func newClock() *clock               { c := &clock{}; c.ns.Store(time.Now().UnixNano()); return c }
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

type harness struct {
	t      *testing.T
	api    *emu.Server
	src    *Source
	rec    *recorder
	dead   *deadRec
	store  *state.Store
	health *telemetry.Health
	waits  chan time.Duration // retry waits the source asked for
	logs   *bytes.Buffer
}

func newHarness(t *testing.T, opt emu.Options, mod func(*Config)) *harness {
	t.Helper()
	api := emu.New(opt)
	if err := api.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	cfg := Config{
		BaseURL: api.URL(), Username: config.NewSecret(emu.DefaultUser), Password: config.NewSecret(emu.DefaultPassword),
		ClientID: emu.DefaultClientID, PageSize: 1000, MaxRequestsPerSecond: 1000,
		Retry: RetryConfig{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
	}
	if mod != nil {
		mod(&cfg)
	}
	st, err := state.Open(filepath.Join(t.TempDir(), "state.db"), state.Options{Now: opt.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, api: api, rec: &recorder{}, dead: &deadRec{}, store: st, health: telemetry.NewHealth(),
		waits: make(chan time.Duration, 100), logs: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: h.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	src, err := New("acme", cfg, pipeline.Deps{Log: log, Now: opt.Now}, st, h.dead, telemetry.NewMetrics().Source("acme"), h.health)
	if err != nil {
		t.Fatal(err)
	}
	// Poll intervals and back-off waits are recorded, and shortened.
	src.sleep = func(ctx context.Context, d time.Duration) error {
		if d != src.cfg.PollInterval {
			select {
			case h.waits <- d:
			default:
			}
		}
		return pipeline.Sleep(ctx, 5*time.Millisecond)
	}
	h.src = src
	return h
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.w.String() }

// run runs the source until cond holds (or fails the test after 20 s).
func (h *harness) run(cond func() bool) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.src.Run(ctx, h.rec) }()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			cancel()
			<-done
			h.t.Fatalf("condition not met; %d events; logs:\n%s", len(h.rec.snapshot()), h.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		h.t.Fatalf("Run: %v", err)
	}
}

func distinct(ids []string) (n, dups int) {
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			dups++
		}
		seen[id] = true
	}
	return len(seen), dups
}

func TestDrainsBacklogOnceAndPicksUpUpdates(t *testing.T) {
	h := newHarness(t, emu.Options{}, nil)
	h.api.AddAlertsAt(2500, time.Now().Add(-time.Hour))
	h.api.DuplicateAcrossPages(true) // offset paging over a moving set repeats rows
	h.run(func() bool { return len(h.rec.snapshot()) >= 2500 && h.api.PageRequests() >= 4 })
	if n, dups := distinct(h.rec.snapshot()); n != 2500 || dups != 0 {
		t.Fatalf("%d distinct, %d duplicates; want 2500, 0", n, dups)
	}
	if got := h.api.LastHeaders(); got.Get("access_token") == "" || got.Get("client_id") != emu.DefaultClientID {
		t.Errorf("headers sent: %v", got)
	}
	// Restart: nothing is emitted again (cursor and dedup records persist),
	// but an alert whose LastSeen moved is.
	before := len(h.rec.snapshot())
	var first int64 // ClientDbId of the first alert: IDs are cy-<ClientDbId>-<LastSeen>
	json.Unmarshal([]byte(strings.Split(h.rec.snapshot()[0], "-")[1]), &first)
	if !h.api.UpdateAlert(first) {
		t.Fatalf("no alert %d to update", first)
	}
	pages := h.api.PageRequests()
	h.run(func() bool { return h.api.PageRequests() >= pages+2 && len(h.rec.snapshot()) > before })
	got := h.rec.snapshot()[before:]
	if len(got) != 1 || !strings.HasPrefix(got[0], "cy-"+itoa(first)+"-") || got[0] == h.rec.snapshot()[0] {
		t.Fatalf("after an update, emitted %v; want the updated alert once, with a new ID", got)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestTokenRefreshAheadOfExpiryAndReauthOn401(t *testing.T) {
	clk := newClock()
	h := newHarness(t, emu.Options{Now: clk.Now}, nil)
	h.api.AddAlerts(10)
	h.run(func() bool { return len(h.rec.snapshot()) == 10 })
	if n := h.api.TokenRequests(); n != 1 {
		t.Fatalf("%d token requests for the first cycle, want 1", n)
	}
	// 56 minutes later the 60-minute token is within refresh_before (5m):
	// the source logs in again before using it, so no 401 happens.
	clk.Add(56 * time.Minute)
	h.api.AddAlerts(5)
	h.run(func() bool { return len(h.rec.snapshot()) == 15 })
	if n := h.api.TokenRequests(); n != 2 {
		t.Fatalf("%d token requests, want 2 (one refresh ahead of expiry)", n)
	}
	// A revoked token: the next page request gets 401, the source
	// re-authenticates once and carries on.
	h.api.ExpireTokens()
	h.api.AddAlerts(5)
	h.run(func() bool { return len(h.rec.snapshot()) == 20 })
	if n := h.api.TokenRequests(); n != 3 {
		t.Fatalf("%d token requests, want 3 (one re-auth after 401)", n)
	}
	if n, dups := distinct(h.rec.snapshot()); n != 20 || dups != 0 {
		t.Fatalf("%d distinct, %d dups", n, dups)
	}
}

func TestBadCredentialsStopTheSourceOnly(t *testing.T) {
	h := newHarness(t, emu.Options{}, func(c *Config) { c.Password = config.NewSecret("wrong-s3cret") })
	h.api.AddAlerts(3)
	h.run(func() bool {
		ok, body := h.health.Report()
		return !ok && strings.Contains(string(body), "authentication failed")
	})
	if len(h.rec.snapshot()) != 0 {
		t.Fatal("events emitted with bad credentials")
	}
	if strings.Contains(h.logs.String(), "wrong-s3cret") {
		t.Fatal("password in the logs")
	}
	_, body := h.health.Report()
	if strings.Contains(string(body), "wrong-s3cret") {
		t.Fatal("password in /healthz")
	}
	if n := h.api.TokenRequests(); n != 1 {
		t.Fatalf("%d token requests: bad credentials must not be hammered", n)
	}
}

func TestRateLimitAndServerErrorsAreRetried(t *testing.T) {
	h := newHarness(t, emu.Options{}, nil)
	h.api.AddAlerts(50)
	h.api.FailNext(3, 429, "7")
	h.run(func() bool { return len(h.rec.snapshot()) == 50 })
	var waits []time.Duration
	for len(h.waits) > 0 {
		waits = append(waits, <-h.waits)
	}
	if len(waits) < 3 || waits[0] < 7*time.Second {
		t.Fatalf("waits %v: want three, honouring Retry-After: 7", waits)
	}
	h.api.FailNext(2, 503, "")
	h.api.AddAlerts(5)
	h.run(func() bool { return len(h.rec.snapshot()) == 55 })
	h.api.DropNext(2) // Go retries an idempotent GET once on a dropped reused connection
	h.api.AddAlerts(5)
	h.run(func() bool { return len(h.rec.snapshot()) == 60 })
	if n, dups := distinct(h.rec.snapshot()); n != 60 || dups != 0 {
		t.Fatalf("%d distinct, %d dups", n, dups)
	}
}

func TestEnvelopeVariants(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*emu.Server)
	}{
		{"bare array", func(s *emu.Server) { s.SetBareArray(true) }},
		{"null entities", func(s *emu.Server) { s.SetNullEntities(true) }},
		{"204 no content", func(s *emu.Server) { s.SetNoContent(true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, emu.Options{}, nil)
			h.api.AddAlerts(5)
			tc.set(h.api)
			h.run(func() bool { return h.api.PageRequests() >= 2 })
			if _, ok, _ := h.store.Cursor("acme"); !ok {
				t.Error("no cursor after a valid empty/bare response")
			}
		})
	}
	t.Run("garbage", func(t *testing.T) {
		h := newHarness(t, emu.Options{}, nil)
		h.api.AddAlerts(5)
		h.api.SetGarbage(true)
		h.run(func() bool {
			_, body := h.health.Report()
			return strings.Contains(string(body), "not JSON")
		})
		h.api.SetGarbage(false)
		h.run(func() bool { return len(h.rec.snapshot()) == 5 })
	})
}

func TestConfigValidate(t *testing.T) {
	var c Config
	c.SetDefaults()
	c.DedupTTL = time.Minute
	errs := c.Validate()
	var fields []string
	for _, e := range errs {
		var fe *config.FieldError
		if errors.As(e, &fe) {
			fields = append(fields, fe.Field)
		}
	}
	want := "base_url username password client_id dedup_ttl"
	if strings.Join(fields, " ") != want {
		t.Fatalf("fields %v, want %s", fields, want)
	}
}

// blockingWriter holds WriteBatch until released, like a full queue.
type blockingWriter struct {
	recorder
	release chan struct{}
}

func (b *blockingWriter) WriteBatch(ctx context.Context, batch *event.Batch) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.recorder.WriteBatch(ctx, batch)
}

// TestBackPressureStopsPolling: while the queues do not take a page, the
// source requests no further pages (beyond the one it prefetches).
func TestBackPressureStopsPolling(t *testing.T) {
	h := newHarness(t, emu.Options{}, nil)
	h.api.AddAlertsAt(5000, time.Now().Add(-time.Hour))
	bw := &blockingWriter{release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.src.Run(ctx, bw) }()
	time.Sleep(300 * time.Millisecond)
	if n := h.api.PageRequests(); n > 2 {
		t.Fatalf("%d page requests while the pipeline was full, want at most 2", n)
	}
	close(bw.release)
	deadline := time.Now().Add(20 * time.Second)
	for len(bw.snapshot()) < 5000 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if n, dups := distinct(bw.snapshot()); n != 5000 || dups != 0 {
		t.Fatalf("%d distinct, %d dups after release", n, dups)
	}
}
