package sentinel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/config"
	emu "github.com/alertrelay/alertrelay/internal/emulator/sentinel"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

// cfgFor is a config pointing endpoint and authority at srv, with its
// credentials, DCR and stream.
func cfgFor(srv *emu.Server) Config {
	o := srv.Options()
	var c Config
	c.SetDefaults()
	c.Endpoint, c.Authority = srv.URL(), srv.URL()
	c.DCRImmutableID, c.Stream = o.DCRImmutableID, o.Stream
	c.TenantID, c.ClientID, c.ClientSecret = o.TenantID, o.ClientID, config.NewSecret(o.ClientSecret)
	c.Timeout = 5 * time.Second
	return c
}

func newSink(t *testing.T, cfg Config) (*Sink, *sinktest.LogBuffer) {
	t.Helper()
	return newSinkNow(t, cfg, nil)
}

func newSinkNow(t *testing.T, cfg Config, now func() time.Time) (*Sink, *sinktest.LogBuffer) {
	t.Helper()
	return sinktest.NewSink(t, now, func(d pipeline.Deps) (*Sink, error) { return New(cfg, d) })
}

// docs returns n documents of size bytes with IDs prefix-<i>.
func docs(prefix string, n, size int) [][]byte {
	return sinktest.Docs[[]byte](n, size, func(i int) string {
		return fmt.Sprintf(`{"@timestamp":"2025-03-01T08:00:%02d.000Z","event":{"id":"%s-%04d","kind":"alert","dataset":"cybertrace.detection","provider":"ct"},"message":"`, i%60, prefix, i)
	})
}

func idOf(t testing.TB, doc []byte) string {
	m, ok := event.ReadMeta(doc)
	if !ok {
		t.Fatalf("no meta in %s", doc)
	}
	return string(event.Unquote(nil, m.ID))
}

// checkRows compares the rows srv received with the documents, field by
// field and in order.
func checkRows(t *testing.T, srv *emu.Server, ds [][]byte) {
	t.Helper()
	rows := srv.Rows()
	if len(rows) != len(ds) {
		t.Fatalf("received %d rows, want %d", len(rows), len(ds))
	}
	for i, raw := range rows {
		var got rowFields
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if diff := cmp.Diff(wantFields(t, ds[i], fixedNow), got); diff != "" {
			t.Errorf("row %d (-want +got):\n%s", i, diff)
		}
	}
}

func TestWriteGoldenDocuments(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for _, compression := range []string{CompressionNone, CompressionGzip} {
		t.Run(compression, func(t *testing.T) {
			srv := sinktest.Start(t, emu.New(emu.Options{}))
			cfg := cfgFor(srv)
			cfg.Compression = compression
			s, _ := newSinkNow(t, cfg, func() time.Time { return fixedNow })
			ds := sinktest.Golden[[]byte](t)
			b := sinktest.Batch(ds...)
			if err := s.Write(sinktest.Context(t), b); err != nil {
				t.Fatal(err)
			}
			checkRows(t, srv, ds)
			for _, d := range ds {
				if srv.IDs()[idOf(t, d)] != 1 {
					t.Errorf("event %s received %d times", idOf(t, d), srv.IDs()[idOf(t, d)])
				}
			}
			h := srv.LastHeader()
			if got := h.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if !strings.HasPrefix(h.Get("Authorization"), "Bearer ") {
				t.Errorf("Authorization %q", h.Get("Authorization"))
			}
			if id := h.Get("x-ms-client-request-id"); !uuid.MatchString(id) {
				t.Errorf("x-ms-client-request-id %q is not a v4 UUID", id)
			}
			// The rows are bigger than the documents; with gzip they
			// travel compressed, and the emulator decoded them (the rows
			// above are the decompressed ones).
			raw := int64(b.Size())
			if compression == CompressionGzip {
				if h.Get("Content-Encoding") != "gzip" {
					t.Errorf("Content-Encoding %q, want gzip", h.Get("Content-Encoding"))
				}
				if w := srv.BytesOnWire(); w*2 >= raw {
					t.Errorf("BytesOnWire %d, want well under the raw %d", w, raw)
				}
			} else {
				if h.Get("Content-Encoding") != "" {
					t.Errorf("Content-Encoding %q, want none", h.Get("Content-Encoding"))
				}
				if w := srv.BytesOnWire(); w <= raw {
					t.Errorf("BytesOnWire %d, want more than the documents' %d", w, raw)
				}
			}
			if srv.Requests() != 1 || srv.TokenRequests() != 1 {
				t.Errorf("Requests %d TokenRequests %d, want 1 and 1", srv.Requests(), srv.TokenRequests())
			}
		})
	}
}

func TestEmptyBatch(t *testing.T) {
	srv := sinktest.Start(t, emu.New(emu.Options{}))
	s, _ := newSink(t, cfgFor(srv))
	if err := s.Write(sinktest.Context(t), event.NewBatch(0, 0)); err != nil {
		t.Fatal(err)
	}
	if srv.Requests() != 0 || srv.TokenRequests() != 0 {
		t.Errorf("an empty batch sent %d requests and %d token requests", srv.Requests(), srv.TokenRequests())
	}
}

func TestSplitInOrder(t *testing.T) {
	srv := sinktest.Start(t, emu.New(emu.Options{}))
	cfg := cfgFor(srv)
	cfg.MaxBodyBytes = MinMaxBodyBytes
	s, _ := newSinkNow(t, cfg, func() time.Time { return fixedNow })
	ds := docs("split", 100, 1000)
	if err := s.Write(sinktest.Context(t), sinktest.Batch(ds...)); err != nil {
		t.Fatal(err)
	}
	checkRows(t, srv, ds)
	// About 1.1 KB a row, 16 KiB a request: 14 rows each.
	if got := srv.Requests(); got != 8 {
		t.Errorf("%d requests, want 8", got)
	}
}

func indexes(lo, hi int, kind string) []string {
	var out []string
	for i := lo; i < hi; i++ {
		out = append(out, fmt.Sprintf("%d:%s", i, kind))
	}
	return out
}

func TestPartialFailure(t *testing.T) {
	// 1000-byte documents, 16 KiB requests: requests of 14 rows, the
	// second one holding documents 14-27.
	const perRequest = 14
	for _, tc := range []struct {
		name  string
		setup func(*emu.Server)
		want  []string
		delay time.Duration // want a RetryAfterError too
		rows  int           // rows recorded
	}{
		{
			name:  "second request rejected: its documents are dead-lettered, the rest delivered",
			setup: func(s *emu.Server) { s.RejectMatching("p-0020", nethttp.StatusBadRequest, "InvalidPayload") },
			want:  indexes(perRequest, 2*perRequest, "P"),
			rows:  40 - perRequest,
		},
		{
			name:  "second request throttled: it and the rest are retried",
			setup: func(s *emu.Server) { s.FailAfter(1, 1, nethttp.StatusTooManyRequests, "3") },
			want:  indexes(perRequest, 40, "R"),
			delay: 3 * time.Second,
			rows:  perRequest,
		},
		{
			name: "rejected then down: permanent items and retryable ones",
			setup: func(s *emu.Server) {
				s.RejectMatching("p-0000", nethttp.StatusBadRequest, "InvalidPayload")
				s.FailAfter(1, 1, nethttp.StatusInternalServerError, "")
			},
			want: append(indexes(0, perRequest, "P"), indexes(perRequest, 40, "R")...),
			rows: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := sinktest.Start(t, emu.New(emu.Options{}))
			cfg := cfgFor(srv)
			cfg.MaxBodyBytes = MinMaxBodyBytes
			s, _ := newSink(t, cfg)
			tc.setup(srv)
			err := s.Write(sinktest.Context(t), sinktest.Batch(docs("p", 40, 1000)...))
			if diff := cmp.Diff(tc.want, sinktest.Items(t, err)); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			var ra *pipeline.RetryAfterError
			if got := errors.As(err, &ra); got != (tc.delay > 0) || (got && ra.Delay != tc.delay) {
				t.Errorf("RetryAfterError %v (%v), want delay %v", got, ra, tc.delay)
			}
			if srv.Count() != tc.rows {
				t.Errorf("%d rows recorded, want %d", srv.Count(), tc.rows)
			}
		})
	}
}

func TestFirstRequestRetryableIsWholeBatch(t *testing.T) {
	srv := sinktest.Start(t, emu.New(emu.Options{}))
	cfg := cfgFor(srv)
	cfg.MaxBodyBytes = MinMaxBodyBytes
	s, _ := newSink(t, cfg)
	srv.FailNext(1, nethttp.StatusBadGateway, "")
	err := s.Write(sinktest.Context(t), sinktest.Batch(docs("f", 40, 1000)...))
	var pe *pipeline.PartialError
	if err == nil || pipeline.IsPermanent(err) || errors.As(err, &pe) {
		t.Fatalf("err %v, want a plain retryable error", err)
	}
	if srv.Requests() != 1 {
		t.Errorf("%d requests; the sink must stop at the first failure", srv.Requests())
	}
}

func TestThrottlingAndServerErrors(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		delay      time.Duration
	}{
		{"429 seconds", 429, "7", 7 * time.Second},
		{"429 http-date", 429, now.Add(90 * time.Second).Format(nethttp.TimeFormat), 90 * time.Second},
		{"429 huge", 429, "86400", MaxRetryAfter},
		{"429 without", 429, "", 0},
		{"503 seconds", 503, "5", 5 * time.Second},
		{"500 ignores Retry-After", 500, "3", 0},
		{"502", 502, "", 0},
		{"408", 408, "", 0},
		{"405 (not an ingestion endpoint)", 405, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := sinktest.Start(t, emu.New(emu.Options{}))
			s, _ := newSinkNow(t, cfgFor(srv), func() time.Time { return now })
			srv.FailNext(1, tc.status, tc.retryAfter)
			b := sinktest.Batch(docs("t", 5, 300)...)
			err := s.Write(sinktest.Context(t), b)
			if err == nil || pipeline.IsPermanent(err) {
				t.Fatalf("err %v, want retryable", err)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(tc.status)) {
				t.Errorf("error %q does not name the status", err)
			}
			var ra *pipeline.RetryAfterError
			if got := errors.As(err, &ra); got != (tc.delay > 0) || (got && ra.Delay != tc.delay) {
				t.Errorf("RetryAfterError %v %v, want delay %v", got, ra, tc.delay)
			}
			if err := s.Write(sinktest.Context(t), b); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if srv.Count() != 5 {
				t.Errorf("%d rows, want 5", srv.Count())
			}
		})
	}
}

func TestAuthenticationFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		setup  func(*emu.Server)
		fix    func(*emu.Server) // nil: a config error, not fixed by the server
		want   []string          // in the message
		auth   bool              // wraps ErrAuthentication
	}{
		{
			name:  "wrong secret",
			setup: func(s *emu.Server) { s.SetClientSecret("rotated-secret") },
			fix:   func(s *emu.Server) { s.SetClientSecret(s.Options().ClientSecret) },
			want:  []string{"authentication failed", "401 Unauthorized", "invalid_client", "AADSTS7000215", "client_secret"},
			auth:  true,
		},
		{
			name:   "unknown client",
			modify: func(c *Config) { c.ClientID = "00000000-dead-beef-0000-000000000000" },
			want:   []string{"authentication failed", "400 Bad Request", "unauthorized_client", "AADSTS700016"},
			auth:   true,
		},
		{
			name:   "unknown tenant",
			modify: func(c *Config) { c.TenantID = "contoso.onmicrosoft.com" },
			want:   []string{"authentication failed", "invalid_request", "AADSTS90002"},
			auth:   true,
		},
		{
			name:   "wrong scope",
			modify: func(c *Config) { c.Scope = "https://monitor.azure.us//.default" },
			want:   []string{"authentication failed", "invalid_scope", "AADSTS70011"},
			auth:   true,
		},
		{
			name:  "no role on the DCR",
			setup: func(s *emu.Server) { s.SetForbidden(true) },
			fix:   func(s *emu.Server) { s.SetForbidden(false) },
			want:  []string{"authentication failed", "403 Forbidden OperationFailed", "Monitoring Metrics Publisher"},
			auth:  true,
		},
		{
			name:  "token endpoint unavailable",
			setup: func(s *emu.Server) { s.FailTokenNext(1, nethttp.StatusServiceUnavailable) },
			fix:   func(*emu.Server) {},
			want:  []string{"token request", "503", "temporarily_unavailable"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := sinktest.Start(t, emu.New(emu.Options{}))
			cfg := cfgFor(srv)
			if tc.modify != nil {
				tc.modify(&cfg)
			}
			if tc.setup != nil {
				tc.setup(srv)
			}
			s, logs := newSink(t, cfg)
			b := sinktest.Batch(docs("auth", 3, 200)...)
			err := s.Write(sinktest.Context(t), b)
			if err == nil || pipeline.IsPermanent(err) {
				t.Fatalf("err %v, want a retryable error (the events stay queued)", err)
			}
			var pe *pipeline.PartialError
			if errors.As(err, &pe) {
				t.Errorf("PartialError %v, want the whole batch retried", err)
			}
			if got := errors.Is(err, ErrAuthentication); got != tc.auth {
				t.Errorf("errors.Is(ErrAuthentication) = %v, want %v: %v", got, tc.auth, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, secret := range []string{srv.Options().ClientSecret, "rotated-secret"} {
				if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
					t.Errorf("the secret leaked: %v\n%s", err, logs)
				}
			}
			if tc.fix == nil {
				if srv.Count() != 0 {
					t.Errorf("%d rows recorded", srv.Count())
				}
				return
			}
			tc.fix(srv)
			if err := s.Write(sinktest.Context(t), b); err != nil {
				t.Fatalf("after the fix: %v", err)
			}
			if srv.Count() != 3 {
				t.Errorf("%d rows recorded, want 3", srv.Count())
			}
		})
	}
}

func TestExpiredTokenIsRenewedOnce(t *testing.T) {
	srv := sinktest.Start(t, emu.New(emu.Options{}))
	s, logs := newSink(t, cfgFor(srv))
	b := sinktest.Batch(docs("x", 2, 200)...)
	if err := s.Write(sinktest.Context(t), b); err != nil {
		t.Fatal(err)
	}
	srv.ExpireTokens() // revoked, or expired early: the next request gets 401
	if err := s.Write(sinktest.Context(t), b); err != nil {
		t.Fatalf("after the token expired: %v", err)
	}
	if srv.TokenRequests() != 2 || srv.Requests() != 3 {
		t.Errorf("TokenRequests %d Requests %d, want 2 and 3 (one 401, one retry)", srv.TokenRequests(), srv.Requests())
	}
	if !strings.Contains(logs.String(), "fetching a new one") {
		t.Errorf("the renewal was not logged:\n%s", logs)
	}
}

func TestPersistent401(t *testing.T) {
	// Tokens come from another emulator, so the ingestion endpoint never
	// accepts them (a token for the wrong tenant or audience).
	ingest := sinktest.Start(t, emu.New(emu.Options{}))
	authority := sinktest.Start(t, emu.New(emu.Options{}))
	cfg := cfgFor(ingest)
	cfg.Authority = authority.URL()
	s, _ := newSink(t, cfg)
	err := s.Write(sinktest.Context(t), sinktest.Batch(docs("y", 2, 200)...))
	if err == nil || pipeline.IsPermanent(err) || !errors.Is(err, ErrAuthentication) ||
		!strings.Contains(err.Error(), "401 Unauthorized InvalidToken") {
		t.Fatalf("err %v, want a retryable authentication error naming the 401", err)
	}
	if authority.TokenRequests() != 2 || ingest.Requests() != 2 {
		t.Errorf("TokenRequests %d Requests %d, want 2 and 2 (one renewal, one retry)", authority.TokenRequests(), ingest.Requests())
	}
}

func TestConfigurationErrorsAreRetryable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"wrong stream", func(c *Config) { c.Stream = "Custom-Other_CL" }, "400 Bad Request InvalidStream"},
		{"unknown DCR", func(c *Config) { c.DCRImmutableID = "dcr-ffffffffffffffffffffffffffffffff" }, "404 Not Found NotFound"},
		{"malformed DCR", func(c *Config) { c.DCRImmutableID = "dcr-abc" }, "400 Bad Request InvalidDcrImmutableId"},
		{"api version", func(c *Config) { c.APIVersion = "2021-11-01-preview" }, "400 Bad Request UnsupportedApiVersion"},
		{"endpoint path", func(c *Config) { c.Endpoint += "/somewhere" }, "404 Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := sinktest.Start(t, emu.New(emu.Options{}))
			cfg := cfgFor(srv)
			tc.modify(&cfg)
			s, logs := newSink(t, cfg)
			err := s.Write(sinktest.Context(t), sinktest.Batch(docs("c", 3, 200)...))
			if err == nil || pipeline.IsPermanent(err) {
				t.Fatalf("err %v, want retryable", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "configuration error") {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if !strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("not logged at ERROR:\n%s", logs)
			}
		})
	}
}

func TestRejectedRowsArePermanent(t *testing.T) {
	srv := sinktest.Start(t, emu.New(emu.Options{}))
	s, _ := newSink(t, cfgFor(srv))
	srv.RejectMatching(`"EventId"`, nethttp.StatusBadRequest, "InvalidPayload")
	err := s.Write(sinktest.Context(t), sinktest.Batch(docs("r", 3, 200)...))
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "InvalidPayload") {
		t.Fatalf("err %v, want a permanent error naming InvalidPayload", err)
	}
}

func TestTooLargeIsSplit(t *testing.T) {
	// The service's limit is lower than the sink's: 413, halves, 413,
	// quarters, accepted.
	srv := sinktest.Start(t, emu.New(emu.Options{MaxBodyBytes: 20000}))
	cfg := cfgFor(srv)
	cfg.MaxBodyBytes = 60000
	s, logs := newSinkNow(t, cfg, func() time.Time { return fixedNow })
	ds := docs("big", 40, 1000)
	if err := s.Write(sinktest.Context(t), sinktest.Batch(ds...)); err != nil {
		t.Fatal(err)
	}
	checkRows(t, srv, ds)
	if !strings.Contains(logs.String(), "413") {
		t.Errorf("the split was not logged:\n%s", logs)
	}

	// A document whose row alone is over the service's limit is
	// dead-lettered; the others are delivered.
	srv.Reset()
	ds = docs("one", 5, 1000)
	ds[3] = docs("huge", 1, 25000)[0]
	err := s.Write(sinktest.Context(t), sinktest.Batch(ds...))
	if diff := cmp.Diff([]string{"3:P"}, sinktest.Items(t, err)); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if srv.Count() != 4 {
		t.Errorf("%d rows, want 4", srv.Count())
	}
}

func TestUnsendableDocumentsAreDeadLettered(t *testing.T) {
	srv := sinktest.Start(t, emu.New(emu.Options{}))
	cfg := cfgFor(srv)
	cfg.MaxBodyBytes = MinMaxBodyBytes
	s, _ := newSink(t, cfg)
	ds := docs("u", 5, 200)
	ds[1] = []byte(`{"event":{"id":"broken"`)
	ds[3] = docs("toolarge", 1, MinMaxBodyBytes)[0]
	err := s.Write(sinktest.Context(t), sinktest.Batch(ds...))
	if diff := cmp.Diff([]string{"1:P", "3:P"}, sinktest.Items(t, err)); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"u-0000": 1, "u-0002": 1, "u-0004": 1}, srv.IDs()); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

func TestServerDownThenUp(t *testing.T) {
	srv := sinktest.Start(t, emu.New(emu.Options{IDsOnly: true}))
	s, _ := newSink(t, cfgFor(srv))
	var all [][]byte
	for i := range 10 {
		ds := docs(fmt.Sprintf("batch%d", i), 50, 300)
		all = append(all, ds...)
		b := sinktest.Batch(ds...)
		if i == 4 {
			if err := srv.SetDown(true); err != nil {
				t.Fatal(err)
			}
			if err := s.Write(sinktest.Context(t), b); err == nil || pipeline.IsPermanent(err) {
				t.Fatalf("write while down: %v, want a retryable error", err)
			}
			if err := srv.SetDown(false); err != nil {
				t.Fatal(err)
			}
		}
		// The delivery loop's part: retry until accepted.
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := s.Write(sinktest.Context(t), b)
			if err == nil {
				break
			}
			if pipeline.IsPermanent(err) || time.Now().After(deadline) {
				t.Fatalf("batch %d: %v", i, err)
			}
		}
	}
	want := map[string]int{}
	for _, d := range all {
		want[idOf(t, d)] = 1
	}
	if diff := cmp.Diff(want, srv.IDs()); diff != "" {
		t.Errorf("events received (-want +got):\n%s", diff)
	}
}

func TestTokenCachedAndRefreshedAhead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lifetime time.Duration
		before   time.Duration // still the first token at this age
		after    time.Duration // a second token by this age
	}{
		{"one hour: 5 minutes early", time.Hour, 54*time.Minute + 59*time.Second, 55*time.Minute + time.Second},
		{"four minutes: at half-life", 4 * time.Minute, 119 * time.Second, 121 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The emulator checks expiry on the real clock; the sink's
			// clock is moved by hand.
			srv := sinktest.Start(t, emu.New(emu.Options{TokenLifetime: tc.lifetime}))
			var clock atomic.Int64
			start := time.Now()
			now := func() time.Time { return start.Add(time.Duration(clock.Load())) }
			s, _ := newSinkNow(t, cfgFor(srv), now)
			b := sinktest.Batch(docs("c", 2, 200)...)
			for _, step := range []struct {
				age    time.Duration
				tokens int
			}{{0, 1}, {time.Minute, 1}, {tc.before, 1}, {tc.after, 2}, {tc.after + time.Second, 2}} {
				clock.Store(int64(step.age))
				if err := s.Write(sinktest.Context(t), b); err != nil {
					t.Fatal(err)
				}
				if got := srv.TokenRequests(); got != step.tokens {
					t.Errorf("at %v: %d token requests, want %d", step.age, got, step.tokens)
				}
			}
		})
	}
}

func TestFailedRefreshKeepsValidToken(t *testing.T) {
	srv := sinktest.Start(t, emu.New(emu.Options{}))
	var clock atomic.Int64
	start := time.Now()
	s, logs := newSinkNow(t, cfgFor(srv), func() time.Time { return start.Add(time.Duration(clock.Load())) })
	b := sinktest.Batch(docs("k", 2, 200)...)
	if err := s.Write(sinktest.Context(t), b); err != nil {
		t.Fatal(err)
	}
	clock.Store(int64(56 * time.Minute)) // due for refresh, still valid
	srv.FailTokenNext(1, nethttp.StatusServiceUnavailable)
	if err := s.Write(sinktest.Context(t), b); err != nil {
		t.Fatalf("refresh failed while the token was valid: %v", err)
	}
	if !strings.Contains(logs.String(), "using the current one") {
		t.Errorf("the failed refresh was not logged:\n%s", logs)
	}
	clock.Store(int64(59*time.Minute + 45*time.Second)) // inside the expiry skew
	srv.FailTokenNext(1, nethttp.StatusServiceUnavailable)
	if err := s.Write(sinktest.Context(t), b); err == nil {
		t.Fatal("a token about to expire was used after a failed refresh")
	}
}

func TestOneTokenRequestInFlight(t *testing.T) {
	var requests atomic.Int32
	release := make(chan struct{})
	idp := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		requests.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, `{"token_type":"Bearer","expires_in":3599,"access_token":"tok"}`)
	}))
	t.Cleanup(idp.Close)
	cfg := validConfig()
	cfg.Authority = idp.URL
	s, _ := newSink(t, cfg)

	// A caller whose context ends while it waits for the request in
	// flight gives up promptly.
	errs := make(chan error, 9)
	go func() { errs <- s.Check(sinktest.Context(t)) }()
	deadline := time.Now().Add(5 * time.Second)
	for requests.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no token request")
		}
		time.Sleep(time.Millisecond)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Check(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting caller: %v, want its deadline", err)
	}

	var started sync.WaitGroup
	for range 8 {
		started.Add(1)
		go func() {
			started.Done()
			errs <- s.Check(sinktest.Context(t))
		}()
	}
	started.Wait()
	close(release)
	for range 9 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := requests.Load(); got != 1 {
		t.Errorf("%d token requests, want 1", got)
	}
}

func TestCheck(t *testing.T) {
	srv := sinktest.Start(t, emu.New(emu.Options{}))
	s, _ := newSink(t, cfgFor(srv))
	if err := s.Check(sinktest.Context(t)); err != nil {
		t.Fatal(err)
	}
	if srv.Requests() != 0 || srv.TokenRequests() != 1 {
		t.Errorf("Check sent %d ingestion and %d token requests, want 0 and 1", srv.Requests(), srv.TokenRequests())
	}

	cfg := cfgFor(srv)
	cfg.ClientSecret = config.NewSecret("wrong")
	bad, _ := newSink(t, cfg)
	if err := bad.Check(sinktest.Context(t)); !errors.Is(err, ErrAuthentication) {
		t.Errorf("wrong secret: %v, want ErrAuthentication", err)
	}

	if err := srv.SetDown(true); err != nil {
		t.Fatal(err)
	}
	fresh, _ := newSink(t, cfgFor(srv))
	if err := fresh.Check(sinktest.Context(t)); err == nil {
		t.Error("Check with the authority down: no error")
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	var nilSink *Sink
	if err := nilSink.Close(context.Background()); err != nil {
		t.Errorf("nil Close: %v", err)
	}
	srv := sinktest.Start(t, emu.New(emu.Options{}))
	s, _ := newSink(t, cfgFor(srv))
	for range 2 {
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Write(sinktest.Context(t), sinktest.Batch(docs("z", 1, 100)...)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := s.Check(sinktest.Context(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("Check after Close: %v", err)
	}
	cfg := cfgFor(srv)
	cfg.Stream = ""
	if s, err := New(cfg, pipeline.Deps{}); err == nil || s != nil {
		t.Errorf("New with an invalid config = %v, %v", s, err)
	}
}

func TestCanceledContext(t *testing.T) {
	srv := sinktest.Start(t, emu.New(emu.Options{}))
	s, _ := newSink(t, cfgFor(srv))
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(c, sinktest.Batch(docs("q", 1, 100)...)); !errors.Is(err, context.Canceled) {
		t.Errorf("Write: %v", err)
	}
	if err := s.Check(c); !errors.Is(err, context.Canceled) {
		t.Errorf("Check: %v", err)
	}
	if srv.Requests() != 0 {
		t.Errorf("%d requests sent", srv.Requests())
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	srv := sinktest.Start(t, emu.New(emu.Options{ClientSecret: "Very~Secret.Value-123"}))
	cfg := cfgFor(srv)
	s, logs := newSink(t, cfg)
	b := sinktest.Batch(docs("s", 2, 200)...)
	var errs []error
	errs = append(errs, s.Write(sinktest.Context(t), b))
	token := strings.TrimPrefix(srv.LastHeader().Get("Authorization"), "Bearer ")
	if token == "" {
		t.Fatal("no token seen")
	}
	srv.SetForbidden(true)
	errs = append(errs, s.Write(sinktest.Context(t), b))
	srv.SetForbidden(false)
	srv.ExpireTokens()
	srv.SetClientSecret("other")
	errs = append(errs, s.Write(sinktest.Context(t), b), s.Check(sinktest.Context(t)))
	srv.RejectMatching("s-0001", nethttp.StatusBadRequest, "InvalidPayload")
	srv.SetClientSecret(srv.Options().ClientSecret)
	errs = append(errs, s.Write(sinktest.Context(t), b))
	out := logs.String()
	for _, err := range errs {
		if err != nil {
			out += "\n" + err.Error()
		}
	}
	for _, secret := range []string{"Very~Secret.Value-123", "Very%7ESecret.Value-123", token} {
		if strings.Contains(out, secret) {
			t.Errorf("%q leaked:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "invalid_client") || !strings.Contains(out, "InvalidPayload") {
		t.Errorf("the errors were not exercised:\n%s", out)
	}
}
