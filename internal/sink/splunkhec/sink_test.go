package splunkhec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/config"
	hec "github.com/alertrelay/alertrelay/internal/emulator/splunkhec"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

const token = "5ec7e7a0-hec0-t0ken-0000-s3cr3t000001"

func startHEC(t testing.TB, opt hec.Options) *hec.Server {
	t.Helper()
	if opt.Token == "" {
		opt.Token = token
	}
	return sinktest.Start(t, hec.New(opt))
}

// defaults returns a Config for url with the defaults, the test token and
// short timeouts.
func defaults(url string) Config {
	var c Config
	c.SetDefaults()
	c.URL = url
	c.Token = config.NewSecret(token)
	c.Timeout = 5 * time.Second
	c.Ack.PollInterval = 10 * time.Millisecond
	c.Ack.Timeout = 5 * time.Second
	return c
}

func newSink(t testing.TB, cfg Config) (*Sink, *sinktest.LogBuffer) {
	t.Helper()
	return newSinkNow(t, cfg, nil)
}

func newSinkNow(t testing.TB, cfg Config, now func() time.Time) (*Sink, *sinktest.LogBuffer) {
	t.Helper()
	return sinktest.NewSink(t, now, func(d pipeline.Deps) (*Sink, error) { return New(cfg, d) })
}

// golden returns the first n documents of a normalizer golden file.
func golden(t testing.TB, name string, n int) []string {
	t.Helper()
	ds := sinktest.GoldenFile[string](t, name)
	if len(ds) < n {
		t.Fatalf("%s has fewer than %d documents", name, n)
	}
	return ds[:n]
}

// docs returns n documents of size bytes with IDs <prefix>-<i>.
func docs(prefix string, n, size int) []string {
	return sinktest.Docs[string](n, size, func(i int) string {
		return fmt.Sprintf(`{"@timestamp":"2025-03-01T08:01:%02d.%03dZ","event":{"id":"%s-%04d","dataset":"cybertrace.detection","provider":"ct"},"message":"`,
			i%60, i%1000, prefix, i)
	})
}

func idOf(t testing.TB, doc string) string {
	var v struct{ Event struct{ ID string } }
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	return v.Event.ID
}

// epoch is what HEC's time should be for an RFC 3339 timestamp.
func epoch(t testing.TB, ts string) string {
	tm, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d.%03d", tm.Unix(), tm.Nanosecond()/1e6)
}

func metaOf(t testing.TB, doc string) (ts, id, dataset, provider, original string) {
	var v struct {
		TS    string `json:"@timestamp"`
		Event struct{ ID, Dataset, Provider, Original string }
	}
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	return v.TS, v.Event.ID, v.Event.Dataset, v.Event.Provider, v.Event.Original
}

// deliverAll writes b as the delivery loop would, until every event is
// accepted: a PartialError's retryable events are written again; a
// permanent failure fails the test.
func deliverAll(t *testing.T, s *Sink, b *event.Batch) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Write(sinktest.Context(t), b)
		if err == nil {
			return
		}
		var pe *pipeline.PartialError
		switch {
		case pipeline.IsPermanent(err):
			t.Fatalf("permanent: %v", err)
		case errors.As(err, &pe):
			retry := event.NewBatch(len(pe.Items), 0)
			for _, it := range pe.Items {
				if it.Permanent {
					t.Fatalf("permanent item %d: %v", it.Index, it.Err)
				}
				retry.Append(b.Doc(it.Index))
			}
			b = retry
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered in time: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // back-off between attempts
	}
}

func TestWriteEventFieldByField(t *testing.T) {
	srv := startHEC(t, hec.Options{})
	cfg := defaults(srv.URL())
	cfg.Index, cfg.Host = "security", "relay-1"
	cfg.Fields = map[string]string{"team": "soc", "env": "prod"}
	cfg.Sources = map[string]SourceOverride{"cynet-acme": {Index: "cynet", Sourcetype: "cynet:alert"}}
	s, _ := newSink(t, cfg)

	ds := append(golden(t, "cybertrace_kv", 3), golden(t, "cynet_alerts", 2)...)
	ds = append(ds, `{"event":{"id":"bare"},"message":"no timestamp, provider or dataset"}`)
	if err := s.Write(sinktest.Context(t), sinktest.Batch(ds...)); err != nil {
		t.Fatal(err)
	}
	var want []hec.Event
	for _, d := range ds {
		ts, id, dataset, provider, _ := metaOf(t, d)
		e := hec.Event{Endpoint: "event", Host: "relay-1", Index: "security", Fields: `{"env":"prod","team":"soc"}`, Event: d, ID: id,
			Source: "alertrelay:" + provider, Sourcetype: "alertrelay:" + dataset}
		if ts != "" {
			e.Time = epoch(t, ts)
		}
		if provider == "cynet-acme" {
			e.Index, e.Sourcetype = "cynet", "cynet:alert"
		}
		if id == "bare" {
			e.Source, e.Sourcetype = "alertrelay", "alertrelay"
		}
		want = append(want, e)
	}
	if diff := cmp.Diff(want, srv.Events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	h := srv.LastHeader()
	if h.Get("Authorization") != "Splunk "+token || h.Get("Content-Type") != "application/json" ||
		h.Get("X-Splunk-Request-Channel") != "" || h.Get("Content-Encoding") != "" || h.Get("User-Agent") != "alertrelay" {
		t.Errorf("headers %v", h)
	}
	if srv.Requests() != 1 {
		t.Errorf("%d requests, want 1", srv.Requests())
	}
	// An empty batch sends nothing; a second batch reuses the buffers.
	if err := s.Write(sinktest.Context(t), event.NewBatch(0, 0)); err != nil {
		t.Errorf("empty batch: %v", err)
	}
	if err := s.Write(sinktest.Context(t), sinktest.Batch(ds[:1]...)); err != nil {
		t.Fatal(err)
	}
	if got := srv.Events(); len(got) != len(ds)+1 || got[len(ds)] != want[0] {
		t.Errorf("second batch: %d events, last %+v", len(got), got[len(got)-1])
	}
}

func TestWriteGzip(t *testing.T) {
	for _, endpoint := range []string{EndpointEvent, EndpointRaw} {
		t.Run(endpoint, func(t *testing.T) {
			srv := startHEC(t, hec.Options{})
			cfg := defaults(srv.URL())
			cfg.Compression, cfg.Endpoint = CompressionGzip, endpoint
			s, _ := newSink(t, cfg)
			ds := docs("gz", 200, 400)
			if err := s.Write(sinktest.Context(t), sinktest.Batch(ds...)); err != nil {
				t.Fatal(err)
			}
			if srv.Gzipped() != srv.Requests() || srv.Requests() == 0 {
				t.Errorf("%d gzip bodies decoded of %d requests", srv.Gzipped(), srv.Requests())
			}
			if srv.LastHeader().Get("Content-Encoding") != "gzip" {
				t.Errorf("Content-Encoding %q", srv.LastHeader().Get("Content-Encoding"))
			}
			if w, raw := srv.BytesOnWire(), int64(sinktest.Batch(ds...).Size()); w*3 > raw {
				t.Errorf("%d bytes on the wire for %d bytes of documents: not compressed", w, raw)
			}
			var got []string
			for _, e := range srv.Events() {
				got = append(got, e.Event)
			}
			if diff := cmp.Diff(ds, got); diff != "" {
				t.Errorf("events (-sent +received):\n%s", diff)
			}
		})
	}
}

func TestWriteRaw(t *testing.T) {
	srv := startHEC(t, hec.Options{})
	cfg := defaults(srv.URL())
	cfg.Endpoint, cfg.Host, cfg.Index = EndpointRaw, "relay-1", "security"
	cfg.Sources = map[string]SourceOverride{"cynet-acme": {Sourcetype: "cynet:alert", Source: "cynet"}}
	s, _ := newSink(t, cfg)
	ct := golden(t, "cybertrace_kv", 3)
	cy := golden(t, "cynet_alerts", 2)
	// Interleaved: the sink groups them into one request per metadata.
	ds := []string{ct[0], cy[0], ct[1], cy[1], ct[2]}
	if err := s.Write(sinktest.Context(t), sinktest.Batch(ds...)); err != nil {
		t.Fatal(err)
	}
	var want []hec.Event
	for _, d := range []string{ct[0], ct[1], ct[2], cy[0], cy[1]} {
		_, id, dataset, provider, original := metaOf(t, d)
		e := hec.Event{Endpoint: "raw", Channel: s.Channel(), Host: "relay-1", Index: "security",
			Source: "alertrelay:" + provider, Sourcetype: "alertrelay:" + dataset, Event: original}
		if original == "" { // Cynet: the JSON document itself
			e.Event, e.ID = d, id
			e.Source, e.Sourcetype = "cynet", "cynet:alert"
		}
		want = append(want, e)
	}
	if diff := cmp.Diff(want, srv.Events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if srv.Requests() != 2 {
		t.Errorf("%d requests, want 2 (one per metadata group)", srv.Requests())
	}
	if !IsGUID(s.Channel()) || srv.LastHeader().Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("channel %q, headers %v", s.Channel(), srv.LastHeader())
	}
}

func TestSplitByMaxBody(t *testing.T) {
	srv := startHEC(t, hec.Options{})
	cfg := defaults(srv.URL())
	cfg.MaxBodyBytes = MinMaxBodyBytes
	s, _ := newSink(t, cfg)
	ds := docs("split", 20, 300)
	ds = append(ds, docs("huge", 1, 3000)...) // larger than max_body_bytes: sent alone
	if err := s.Write(sinktest.Context(t), sinktest.Batch(ds...)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range srv.Events() {
		got = append(got, e.Event)
	}
	if diff := cmp.Diff(ds, got); diff != "" {
		t.Errorf("events (-sent +received):\n%s", diff)
	}
	// Envelopes of ~450 bytes: two per 1024-byte request, and the huge one alone.
	if srv.Requests() != 11 {
		t.Errorf("%d requests, want 11", srv.Requests())
	}
}

func TestPartialFailure(t *testing.T) {
	broken := `{"event":{"id":"broken"},"message":"truncated`
	cy := golden(t, "cynet_alerts", 2)
	for _, tc := range []struct {
		name     string
		docs     []string
		maxBody  int64
		want     []string
		delivers int // events that arrive once the retryable ones are resent
	}{
		{
			name: "invalid event in one request",
			docs: append(append(docs("a", 2, 200), broken), docs("b", 2, 200)...),
			want: []string{"0:R", "1:R", "2:P", "3:R", "4:R"},
			// The invalid event is dead-lettered, the others resent.
			delivers: 4,
		},
		{
			name:    "invalid event in the second of three requests",
			docs:    append(append(docs("c", 3, 400), broken), docs("d", 2, 400)...),
			maxBody: MinMaxBodyBytes,
			// Requests: [0 1] [2 3] [4 5]: only the second fails; the third is still sent.
			want:     []string{"2:R", "3:P"},
			delivers: 5,
		},
		{
			name: "incorrect index: every event bound for it",
			docs: []string{docs("e", 1, 200)[0], cy[0], docs("f", 1, 200)[0], cy[1]},
			want: []string{"0:R", "1:P", "2:R", "3:P"},
			// Cynet events go to the forbidden index.
			delivers: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startHEC(t, hec.Options{Indexes: []string{"main"}})
			cfg := defaults(srv.URL())
			cfg.Index = "main"
			cfg.Sources = map[string]SourceOverride{"cynet-acme": {Index: "forbidden"}}
			if tc.maxBody > 0 {
				cfg.MaxBodyBytes = tc.maxBody
			}
			s, _ := newSink(t, cfg)
			b := sinktest.Batch(tc.docs...)
			err := s.Write(sinktest.Context(t), b)
			if diff := cmp.Diff(tc.want, sinktest.Items(t, err)); diff != "" {
				t.Errorf("items (-want +got):\n%s\nerr: %v", diff, err)
			}
			var pe *pipeline.PartialError
			errors.As(err, &pe)
			for _, it := range pe.Items {
				if it.Permanent && !strings.Contains(it.Err.Error(), "rejected (400 Bad Request, HEC code") {
					t.Errorf("permanent item %d: %v", it.Index, it.Err)
				}
			}
			// Resend what is retryable, as the delivery loop does.
			retry := event.NewBatch(0, 0)
			for _, it := range pe.Items {
				if !it.Permanent {
					retry.Append(b.Doc(it.Index))
				}
			}
			if err := s.Write(sinktest.Context(t), retry); err != nil {
				t.Fatalf("resending the retryable events: %v", err)
			}
			ids := srv.IDs()
			if srv.Count() != tc.delivers || len(ids) != tc.delivers {
				t.Errorf("%d events, %d distinct, want %d once each: %v", srv.Count(), len(ids), tc.delivers, ids)
			}
		})
	}
}

func TestPermanentWholeBatch(t *testing.T) {
	srv := startHEC(t, hec.Options{})
	s, _ := newSink(t, defaults(srv.URL()))
	for _, tc := range []struct {
		status, code int
		n            int
		want         string
	}{
		{400, CodeInvalidDataFormat, 3, `rejected (400 Bad Request, HEC code 6): {"text":"Invalid data format","code":6}`},
		{400, CodeNoData, 1, `HEC code 5`},
		{400, -1, 2, `rejected (400 Bad Request): injected failure`},
		{413, -1, 1, `event too large for HEC (413 Request Entity Too Large)`},
		{422, -1, 2, `rejected (422 Unprocessable Entity)`},
	} {
		srv.FailNext(1, tc.status, tc.code, "")
		err := s.Write(sinktest.Context(t), sinktest.Batch(docs("p", tc.n, 100)...))
		if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d/%d: %v, want permanent containing %q", tc.status, tc.code, err, tc.want)
		}
		var pe *pipeline.PartialError
		if errors.As(err, &pe) {
			t.Errorf("%d/%d: a single request's rejection should not be a PartialError", tc.status, tc.code)
		}
	}
	if srv.Count() != 0 {
		t.Errorf("%d events recorded", srv.Count())
	}
}

func TestRetryable(t *testing.T) {
	fixed := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	srv := startHEC(t, hec.Options{})
	s, logs := newSinkNow(t, defaults(srv.URL()), func() time.Time { return fixed })
	for _, tc := range []struct {
		name         string
		status, code int
		retryAfter   string
		n            int
		want         string
		delay        time.Duration
	}{
		{"busy with Retry-After", 503, CodeServerBusy, "7", 2, `HEC is busy (503 Service Unavailable, HEC code 9)`, 7 * time.Second},
		{"429 with date", 429, -1, fixed.Add(90 * time.Second).Format(http.TimeFormat), 2, `HEC is busy (429 Too Many Requests)`, 90 * time.Second},
		{"unhealthy without Retry-After", 503, 18, "", 2, `HEC code 18`, 0},
		{"internal error", 500, CodeInternalError, "", 2, `server error (500 Internal Server Error, HEC code 8)`, 0},
		{"bad gateway", 502, -1, "", 2, `server error (502 Bad Gateway)`, 0},
		{"not found", 404, -1, "", 2, `check url`, 0},
		{"request too large", 413, -1, "", 2, `lower max_body_bytes`, 0},
		{"token required", 401, CodeTokenRequired, "", 2, `authentication failed (401 Unauthorized, HEC code 2)`, 0},
		{"invalid token", 403, CodeInvalidToken, "", 2, `authentication failed (403 Forbidden, HEC code 4)`, 0},
		{"token disabled", 403, CodeTokenDisabled, "", 2, `authentication failed (403 Forbidden, HEC code 1)`, 0},
		{"channel missing", 400, CodeChannelMissing, "", 2, `set ack.enabled: true`, 0},
		{"invalid channel", 400, CodeInvalidChannel, "", 2, `set channel to a GUID`, 0},
		{"ack disabled", 400, CodeAckDisabled, "", 2, `set ack.enabled: false`, 0},
		{"redirect", 302, -1, "", 2, `redirects are not followed`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.FailNext(1, tc.status, tc.code, tc.retryAfter)
			err := s.Write(sinktest.Context(t), sinktest.Batch(docs("r", tc.n, 100)...))
			if err == nil || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want a retryable error containing %q", err, tc.want)
			}
			var pe *pipeline.PartialError
			if errors.As(err, &pe) {
				t.Errorf("a single request's failure should retry the whole batch, got %v", pe)
			}
			var ra *pipeline.RetryAfterError
			if got := errors.As(err, &ra); got != (tc.delay > 0) || (got && ra.Delay != tc.delay) {
				t.Errorf("RetryAfterError %v, want delay %s", ra, tc.delay)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
	if srv.Count() != 0 {
		t.Errorf("%d events recorded", srv.Count())
	}
	if strings.Contains(logs.String(), token) {
		t.Error("logs leak the token")
	}
}

func TestSplitLaterRequestRetryable(t *testing.T) {
	srv := startHEC(t, hec.Options{})
	cfg := defaults(srv.URL())
	cfg.MaxBodyBytes = MinMaxBodyBytes
	s, _ := newSink(t, cfg)
	ds := docs("later", 6, 400) // requests [0 1] [2 3] [4 5]
	srv.FailAfter(1, 1, 503, CodeServerBusy, "3")
	err := s.Write(sinktest.Context(t), sinktest.Batch(ds...))
	want := []string{"2:R", "3:R", "4:R", "5:R"}
	if diff := cmp.Diff(want, sinktest.Items(t, err)); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	var ra *pipeline.RetryAfterError
	if !errors.As(err, &ra) || ra.Delay != 3*time.Second {
		t.Errorf("RetryAfterError %v, want 3s alongside the PartialError", ra)
	}
	if srv.Requests() != 2 || srv.Count() != 2 {
		t.Errorf("%d requests, %d events: nothing should be sent after a retryable failure", srv.Requests(), srv.Count())
	}

	// The first request failing retries the whole batch.
	srv.FailNext(1, 503, CodeServerBusy, "")
	err = s.Write(sinktest.Context(t), sinktest.Batch(ds...))
	var pe *pipeline.PartialError
	if err == nil || pipeline.IsPermanent(err) || errors.As(err, &pe) {
		t.Errorf("first request failing: %v, want a plain retryable error", err)
	}
}

func TestAuthFailureKeepsEventsQueued(t *testing.T) {
	srv := startHEC(t, hec.Options{})
	cfg := defaults(srv.URL())
	cfg.Token = config.NewSecret("wrong-token-value")
	s, logs := newSink(t, cfg)
	err := s.Write(sinktest.Context(t), sinktest.Batch(docs("auth", 3, 100)...))
	if err == nil || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "authentication failed (403 Forbidden, HEC code 4)") {
		t.Fatalf("%v, want a retryable authentication error", err)
	}
	if strings.Contains(err.Error(), "wrong-token-value") || strings.Contains(logs.String(), "wrong-token-value") {
		t.Error("the token leaked into the error or the logs")
	}
	if err := s.Check(sinktest.Context(t)); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Errorf("Check: %v, want authentication failed", err)
	}

	srv.SetTokenDisabled(true)
	good, _ := newSink(t, defaults(srv.URL()))
	if err := good.Write(sinktest.Context(t), sinktest.Batch(docs("auth", 3, 100)...)); err == nil || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "HEC code 1") {
		t.Errorf("disabled token: %v, want a retryable authentication error", err)
	}
	srv.SetTokenDisabled(false)
	if err := good.Write(sinktest.Context(t), sinktest.Batch(docs("auth", 3, 100)...)); err != nil {
		t.Errorf("once the token is enabled: %v", err)
	}
	if srv.Count() != 3 {
		t.Errorf("%d events recorded, want 3", srv.Count())
	}
}

func TestAckHappyPath(t *testing.T) {
	srv := startHEC(t, hec.Options{Ack: true, AckDelay: 30 * time.Millisecond})
	cfg := defaults(srv.URL())
	cfg.Ack.Enabled = true
	cfg.MaxBodyBytes = MinMaxBodyBytes
	s, _ := newSink(t, cfg)
	ds := docs("ack", 6, 400)
	if err := s.Write(sinktest.Context(t), sinktest.Batch(ds...)); err != nil {
		t.Fatal(err)
	}
	if srv.AckPolls() < 1 {
		t.Error("no acknowledgement poll")
	}
	if !IsGUID(s.Channel()) {
		t.Errorf("channel %q is not a GUID", s.Channel())
	}
	for _, e := range srv.Events() {
		if e.Channel != s.Channel() {
			t.Fatalf("event on channel %q, want %q", e.Channel, s.Channel())
		}
	}
	if srv.Count() != 6 {
		t.Errorf("%d events", srv.Count())
	}
}

func TestAckTimeoutResendsOnlyUnacknowledged(t *testing.T) {
	srv := startHEC(t, hec.Options{Ack: true})
	cfg := defaults(srv.URL())
	cfg.Ack.Enabled = true
	cfg.Ack.Timeout = 200 * time.Millisecond
	cfg.MaxBodyBytes = MinMaxBodyBytes
	s, _ := newSink(t, cfg)
	ds := docs("lost", 6, 400) // requests [0 1] [2 3] [4 5]
	b := sinktest.Batch(ds...)
	srv.NeverAckNext(1) // the indexer loses the first request's ack
	start := time.Now()
	err := s.Write(sinktest.Context(t), b)
	if el := time.Since(start); el < cfg.Ack.Timeout || el > 5*time.Second {
		t.Errorf("Write took %s, want about ack.timeout (%s)", el, cfg.Ack.Timeout)
	}
	if diff := cmp.Diff([]string{"0:R", "1:R"}, sinktest.Items(t, err)); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if !strings.Contains(err.Error(), "not acknowledged") {
		t.Errorf("error %v", err)
	}
	deliverAll(t, s, sinktest.Batch(ds[:2]...))
	want := map[string]int{}
	for i, d := range ds {
		want[idOf(t, d)] = 1
		if i < 2 {
			want[idOf(t, d)] = 2 // indexed, acknowledgement lost, resent: the documented duplicate
		}
	}
	if diff := cmp.Diff(want, srv.IDs()); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
}

func TestAckEnabledButTokenWithout(t *testing.T) {
	srv := startHEC(t, hec.Options{})
	cfg := defaults(srv.URL())
	cfg.Ack.Enabled = true
	s, logs := newSink(t, cfg)
	for range 2 {
		if err := s.Write(sinktest.Context(t), sinktest.Batch(docs("noack", 2, 100)...)); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "returned no ackId"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, logs.String())
	}
	if srv.AckPolls() != 0 || srv.Count() != 4 {
		t.Errorf("%d polls, %d events", srv.AckPolls(), srv.Count())
	}
}

func TestAckTokenButSinkWithout(t *testing.T) {
	srv := startHEC(t, hec.Options{Ack: true})
	s, _ := newSink(t, defaults(srv.URL()))
	err := s.Write(sinktest.Context(t), sinktest.Batch(docs("ch", 2, 100)...))
	if err == nil || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "HEC requires a channel") {
		t.Errorf("%v, want a retryable channel error", err)
	}
	if err := s.Check(sinktest.Context(t)); err == nil || !strings.Contains(err.Error(), "ack.enabled: true") {
		t.Errorf("Check: %v, want the channel error", err)
	}
}

func TestCheck(t *testing.T) {
	srv := startHEC(t, hec.Options{Ack: true})
	cfg := defaults(srv.URL())
	cfg.Ack.Enabled = true
	s, _ := newSink(t, cfg)
	if err := s.Check(sinktest.Context(t)); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if srv.Count() != 0 {
		t.Errorf("Check indexed %d events", srv.Count())
	}
	srv.SetUnhealthy(true)
	if err := s.Check(sinktest.Context(t)); err == nil || !strings.Contains(err.Error(), "HEC is not healthy (503 Service Unavailable") {
		t.Errorf("unhealthy: %v", err)
	}
	srv.SetUnhealthy(false)
	if err := srv.SetDown(true); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(sinktest.Context(t)); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("down: %v", err)
	}
	notHEC := httptest.NewServer(http.NotFoundHandler())
	defer notHEC.Close()
	other, _ := newSink(t, defaults(notHEC.URL))
	if err := other.Check(sinktest.Context(t)); err == nil || !strings.Contains(err.Error(), "check url") {
		t.Errorf("not a HEC: %v", err)
	}
}

func TestRestartMidStream(t *testing.T) {
	srv := startHEC(t, hec.Options{IDsOnly: true})
	cfg := defaults(srv.URL())
	cfg.Compression = CompressionGzip
	cfg.MaxBodyBytes = 16 << 10
	s, _ := newSink(t, cfg)
	var all []string
	failures := 0
	for i := range 20 {
		ds := docs(fmt.Sprintf("restart%02d", i), 100, 300)
		all = append(all, ds...)
		b := sinktest.Batch(ds...)
		if i == 7 || i == 14 {
			if err := srv.SetDown(true); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := s.Write(sinktest.Context(t), b)
			if err == nil {
				break
			}
			failures++
			var pe *pipeline.PartialError
			if pipeline.IsPermanent(err) || time.Now().After(deadline) {
				t.Fatalf("batch %d: %v", i, err)
			}
			if errors.As(err, &pe) {
				retry := event.NewBatch(len(pe.Items), 0)
				for _, it := range pe.Items {
					retry.Append(b.Doc(it.Index))
				}
				b = retry
			}
			// The receiver comes back on the same address.
			if err := srv.SetDown(false); err != nil {
				t.Fatal(err)
			}
		}
	}
	if failures < 2 {
		t.Errorf("%d failed writes, want at least one per restart", failures)
	}
	ids := srv.IDs()
	for _, d := range all {
		if id := idOf(t, d); ids[id] != 1 {
			t.Errorf("event %s received %d times", id, ids[id])
		}
	}
	if len(ids) != len(all) {
		t.Errorf("%d distinct IDs, want %d", len(ids), len(all))
	}
}

func TestTimeoutIsRetryable(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	cfg := defaults(slow.URL)
	cfg.Timeout = 100 * time.Millisecond
	s, _ := newSink(t, cfg)
	err := s.Write(sinktest.Context(t), sinktest.Batch(docs("t", 1, 50)...))
	if err == nil || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("%v, want a retryable timeout", err)
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"text":"bad header %s","code":6}`, r.Header.Get("Authorization"))
	}))
	defer echo.Close()
	s, logs := newSink(t, defaults(echo.URL+"/prefix"))
	err := s.Write(sinktest.Context(t), sinktest.Batch(docs("sec", 1, 50)...))
	if err == nil || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("error %v: want the echoed token redacted", err)
	}
	if strings.Contains(err.Error(), "/prefix") {
		t.Errorf("error names the URL path: %v", err)
	}
	if strings.Contains(logs.String(), token) {
		t.Error("logs leak the token")
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	srv := startHEC(t, hec.Options{})
	s, _ := newSink(t, defaults(srv.URL()))
	for range 2 {
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Write(sinktest.Context(t), sinktest.Batch(docs("c", 1, 50)...)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := s.Check(sinktest.Context(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("Check after Close: %v", err)
	}
	var nilSink *Sink
	if err := nilSink.Close(context.Background()); err != nil {
		t.Errorf("nil Close: %v", err)
	}
	if _, err := New(Config{}, pipeline.Deps{}); err == nil {
		t.Error("New accepted an empty config")
	}
}

func TestWriteRespectsContext(t *testing.T) {
	srv := startHEC(t, hec.Options{Ack: true, AckDelay: time.Hour})
	cfg := defaults(srv.URL())
	cfg.Ack.Enabled = true
	cfg.Ack.Timeout = time.Minute
	s, _ := newSink(t, cfg)
	c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := s.Write(c, sinktest.Batch(docs("ctx", 2, 100)...))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v, want the context's error while waiting for acks", err)
	}
}

// TestInvalidEventWhenHECIndexedTheOnesBefore: if splunkd indexed the
// events before the invalid one, resending them duplicates them (never
// loses them): the documented at-least-once trade-off.
func TestInvalidEventWhenHECIndexedTheOnesBefore(t *testing.T) {
	srv := startHEC(t, hec.Options{IndexBeforeInvalid: true})
	s, _ := newSink(t, defaults(srv.URL()))
	ds := append(append(docs("dup", 2, 200), `{"event":{"id":"broken"},`), docs("after", 2, 200)...)
	b := sinktest.Batch(ds...)
	err := s.Write(sinktest.Context(t), b)
	if diff := cmp.Diff([]string{"0:R", "1:R", "2:P", "3:R", "4:R"}, sinktest.Items(t, err)); diff != "" {
		t.Fatalf("items (-want +got):\n%s", diff)
	}
	deliverAll(t, s, sinktest.Batch([]string{ds[0], ds[1], ds[3], ds[4]}...))
	want := map[string]int{idOf(t, ds[0]): 2, idOf(t, ds[1]): 2, idOf(t, ds[3]): 1, idOf(t, ds[4]): 1}
	if diff := cmp.Diff(want, srv.IDs()); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
}
