package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/emulator/httpsink"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

// defaults returns a Config for url with defaults and a short timeout.
func defaults(url string) Config {
	var c Config
	c.SetDefaults()
	c.URL = url
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
func docs(prefix string, n, size int) []string {
	return sinktest.Docs[string](n, size, func(i int) string {
		return fmt.Sprintf(`{"event":{"id":"%s-%04d","kind":"alert"},"message":"`, prefix, i)
	})
}

func got(s *httpsink.Server) []string {
	var out []string
	for _, d := range s.Docs() {
		out = append(out, string(d))
	}
	return out
}

func TestWriteFormats(t *testing.T) {
	for _, tc := range []struct {
		format, compression, contentType string
	}{
		{FormatNDJSON, CompressionNone, "application/x-ndjson"},
		{FormatJSONArray, CompressionNone, "application/json"},
		{FormatNDJSON, CompressionGzip, "application/x-ndjson"},
		{FormatJSONArray, CompressionGzip, "application/json"},
	} {
		t.Run(tc.format+"/"+tc.compression, func(t *testing.T) {
			srv := sinktest.Start(t, httpsink.New(httpsink.Options{}))
			cfg := defaults(srv.URL() + "/ingest")
			cfg.Format, cfg.Compression = tc.format, tc.compression
			s, _ := newSink(t, cfg)
			want := docs("b", 50, 300)
			if err := s.Write(sinktest.Context(t), sinktest.Batch(want...)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got(srv)); diff != "" {
				t.Errorf("documents (-sent +received):\n%s", diff)
			}
			h := srv.LastHeader()
			if ct := h.Get("Content-Type"); ct != tc.contentType {
				t.Errorf("Content-Type %q, want %q", ct, tc.contentType)
			}
			raw := int64(sinktest.Batch(want...).Size())
			if tc.compression == CompressionGzip {
				if h.Get("Content-Encoding") != "gzip" {
					t.Errorf("Content-Encoding %q, want gzip", h.Get("Content-Encoding"))
				}
				if w := srv.BytesOnWire(); w >= raw {
					t.Errorf("BytesOnWire %d, want less than the raw %d", w, raw)
				}
			} else if tc.format == FormatNDJSON && srv.BytesOnWire() != raw {
				t.Errorf("BytesOnWire %d, want the batch's %d", srv.BytesOnWire(), raw)
			}
			// A second batch reuses the buffers and the connection.
			want2 := docs("c", 3, 100)
			if err := s.Write(sinktest.Context(t), sinktest.Batch(want2...)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(append(want, want2...), got(srv)); diff != "" {
				t.Errorf("after a second batch (-sent +received):\n%s", diff)
			}
			if err := s.Write(sinktest.Context(t), event.NewBatch(0, 0)); err != nil {
				t.Errorf("empty batch: %v", err)
			}
			if srv.Requests() != 2 {
				t.Errorf("%d requests, want 2 (an empty batch sends nothing)", srv.Requests())
			}
		})
	}
}

func TestMethodPutAndHeaders(t *testing.T) {
	var method atomic.Value
	var header atomic.Value
	hs := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		method.Store(r.Method)
		header.Store(r.Header.Clone())
	}))
	defer hs.Close()
	cfg := defaults(hs.URL)
	cfg.Method = "put"
	cfg.Headers = map[string]string{"x-api-key": "k-123456", "Content-Type": "text/plain"}
	s, _ := newSink(t, cfg)
	if err := s.Write(sinktest.Context(t), sinktest.Batch(docs("m", 1, 50)...)); err != nil {
		t.Fatal(err)
	}
	h := header.Load().(nethttp.Header)
	if method.Load() != "PUT" || h.Get("X-Api-Key") != "k-123456" || h.Get("Content-Type") != "text/plain" || h.Get("User-Agent") != "alertrelay" {
		t.Errorf("method %v, headers %v", method.Load(), h)
	}
}

func TestAuth(t *testing.T) {
	const token = "s3cr3t-token"
	for _, tc := range []struct {
		name string
		srv  httpsink.Options
		auth *AuthConfig
		ok   bool
	}{
		{"bearer", httpsink.Options{BearerToken: token}, &AuthConfig{BearerToken: config.NewSecret(token)}, true},
		{"bearer wrong", httpsink.Options{BearerToken: token}, &AuthConfig{BearerToken: config.NewSecret("nope-nope")}, false},
		{"bearer missing", httpsink.Options{BearerToken: token}, nil, false},
		{"basic", httpsink.Options{BasicUser: "relay", BasicPassword: token}, &AuthConfig{Basic: &BasicAuth{Username: "relay", Password: config.NewSecret(token)}}, true},
		{"basic wrong", httpsink.Options{BasicUser: "relay", BasicPassword: token}, &AuthConfig{Basic: &BasicAuth{Username: "relay", Password: config.NewSecret("wrong-pw")}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := sinktest.Start(t, httpsink.New(tc.srv))
			cfg := defaults(srv.URL())
			cfg.Auth = tc.auth
			s, logs := newSink(t, cfg)
			err := s.Write(sinktest.Context(t), sinktest.Batch(docs("a", 3, 80)...))
			cerr := s.Check(sinktest.Context(t))
			if tc.ok {
				if err != nil || cerr != nil {
					t.Fatalf("Write: %v; Check: %v", err, cerr)
				}
				if srv.Count() != 3 {
					t.Errorf("received %d documents, want 3", srv.Count())
				}
				return
			}
			for _, e := range []error{err, cerr} {
				if e == nil {
					t.Fatal("no error with wrong credentials")
				}
				if !strings.Contains(e.Error(), "authentication failed (401)") {
					t.Errorf("error %q does not say authentication failed (401)", e)
				}
				assertNoSecret(t, e.Error(), token)
			}
			if pipeline.IsPermanent(err) {
				t.Errorf("auth failure is permanent; the events must stay buffered: %v", err)
			}
			if srv.Count() != 0 {
				t.Errorf("received %d documents", srv.Count())
			}
			assertNoSecret(t, logs.String(), token)
		})
	}
}

func TestCheckDoesNotSendEvents(t *testing.T) {
	srv := sinktest.Start(t, httpsink.New(httpsink.Options{}))
	s, _ := newSink(t, defaults(srv.URL()))
	if err := s.Check(sinktest.Context(t)); err != nil {
		t.Fatal(err)
	}
	if srv.Requests() != 1 || srv.Count() != 0 {
		t.Errorf("Check: %d requests, %d documents; want 1 and 0", srv.Requests(), srv.Count())
	}
	// Any answer but 401/403 means reachable.
	srv.FailNext(1, nethttp.StatusMethodNotAllowed, "")
	if err := s.Check(sinktest.Context(t)); err != nil {
		t.Errorf("405 to OPTIONS: %v, want nil", err)
	}
	srv.SetDown(true)
	if err := s.Check(sinktest.Context(t)); err == nil {
		t.Error("Check with the server down: no error")
	}
}

func TestRetryable(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		delay      time.Duration // 0: no RetryAfterError expected
	}{
		{"429 seconds", 429, "2", 2 * time.Second},
		{"429 http-date", 429, now.Add(90 * time.Second).Format(nethttp.TimeFormat), 90 * time.Second},
		{"503 seconds", 503, "5", 5 * time.Second},
		{"429 huge", 429, "86400", MaxRetryAfter},
		{"429 date in the past", 429, now.Add(-time.Hour).Format(nethttp.TimeFormat), 0},
		{"429 garbage", 429, "soon", 0},
		{"429 without", 429, "", 0},
		{"503 without", 503, "", 0},
		{"500", 500, "3", 0}, // Retry-After only counts on 429 and 503
		{"502", 502, "", 0},
		{"408", 408, "", 0},
		{"403", 403, "", 0},
		{"302", 302, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := sinktest.Start(t, httpsink.New(httpsink.Options{}))
			s, _ := newSinkNow(t, defaults(srv.URL()), func() time.Time { return now })
			srv.FailNext(1, tc.status, tc.retryAfter)
			b := sinktest.Batch(docs("r", 4, 100)...)
			err := s.Write(sinktest.Context(t), b)
			if err == nil {
				t.Fatal("no error")
			}
			if pipeline.IsPermanent(err) {
				t.Fatalf("permanent: %v", err)
			}
			var pe *pipeline.PartialError
			if errors.As(err, &pe) {
				t.Fatalf("partial error for an unsplit batch: %v", err)
			}
			var ra *pipeline.RetryAfterError
			if errors.As(err, &ra) != (tc.delay != 0) {
				t.Fatalf("RetryAfterError: %v, want one: %v (err %v)", ra != nil, tc.delay != 0, err)
			}
			if ra != nil && ra.Delay != tc.delay {
				t.Errorf("Delay %s, want %s", ra.Delay, tc.delay)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(tc.status)) {
				t.Errorf("error %q does not name the status", err)
			}
			if err := s.Write(sinktest.Context(t), b); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if srv.Count() != 4 {
				t.Errorf("received %d documents, want 4", srv.Count())
			}
		})
	}
}

func TestPermanentWithExcerpt(t *testing.T) {
	srv := sinktest.Start(t, httpsink.New(httpsink.Options{}))
	s, _ := newSink(t, defaults(srv.URL()))
	srv.RejectMatching("bad-doc", nethttp.StatusBadRequest)
	err := s.Write(sinktest.Context(t), sinktest.Batch([]string{`{"m":"bad-doc"}`}...))
	if !pipeline.IsPermanent(err) {
		t.Fatalf("400: %v, want permanent", err)
	}
	if want := `rejected (400 Bad Request): rejected: body matches "bad-doc"`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}

	for _, code := range []int{404, 413, 422} {
		srv.FailNext(1, code, "")
		if err := s.Write(sinktest.Context(t), sinktest.Batch(docs("p", 1, 50)...)); !pipeline.IsPermanent(err) {
			t.Errorf("%d: %v, want permanent", code, err)
		}
	}
}

// TestSplit: 15 documents of 200 bytes with max_body_bytes 1024 go as three
// requests of five; the second is rejected.
func TestSplitSecondPartRejected(t *testing.T) {
	for _, format := range []string{FormatNDJSON, FormatJSONArray} {
		t.Run(format, func(t *testing.T) {
			srv := sinktest.Start(t, httpsink.New(httpsink.Options{}))
			cfg := defaults(srv.URL())
			cfg.MaxBodyBytes, cfg.Format = 1024, format
			s, _ := newSink(t, cfg)
			ds := docs("s", 15, 200)
			ds[7] = strings.Replace(ds[7], "hhhh", "REJECT-ME", 1)
			srv.RejectMatching("REJECT-ME", nethttp.StatusBadRequest)
			err := s.Write(sinktest.Context(t), sinktest.Batch(ds...))
			var pe *pipeline.PartialError
			if !errors.As(err, &pe) {
				t.Fatalf("err %v, want a PartialError", err)
			}
			if pipeline.IsPermanent(err) {
				t.Error("the PartialError itself is permanent")
			}
			var idx []int
			for _, it := range pe.Items {
				idx = append(idx, it.Index)
				if !it.Permanent || !pipeline.IsPermanent(it.Err) || !strings.Contains(it.Err.Error(), "400") {
					t.Errorf("item %d: permanent %v, err %v", it.Index, it.Permanent, it.Err)
				}
			}
			if diff := cmp.Diff([]int{5, 6, 7, 8, 9}, idx); diff != "" {
				t.Errorf("failed indexes (-want +got):\n%s", diff)
			}
			want := append(append([]string{}, ds[:5]...), ds[10:]...)
			if diff := cmp.Diff(want, got(srv)); diff != "" {
				t.Errorf("received (-want +got):\n%s", diff)
			}
			if srv.Requests() != 3 {
				t.Errorf("%d requests, want 3", srv.Requests())
			}
		})
	}
}

func TestSplitSizes(t *testing.T) {
	for _, tc := range []struct {
		format string
		sizes  []int // document sizes
		max    int64
		want   [][2]int
	}{
		// NDJSON: doc + '\n'. 5×(200+1) = 1005 ≤ 1024 < 1206.
		{FormatNDJSON, []int{200, 200, 200, 200, 200, 200, 200}, 1024, [][2]int{{0, 5}, {5, 7}}},
		// Array: 1 + 5×(200+1) = 1006 ≤ 1024.
		{FormatJSONArray, []int{200, 200, 200, 200, 200, 200}, 1024, [][2]int{{0, 5}, {5, 6}}},
		// Exactly at the limit: 1024 = 4×(255+1).
		{FormatNDJSON, []int{255, 255, 255, 255, 255}, 1024, [][2]int{{0, 4}, {4, 5}}},
		// A document larger than the limit goes alone.
		{FormatNDJSON, []int{100, 3000, 100}, 1024, [][2]int{{0, 1}, {1, 2}, {2, 3}}},
		// 0: never split.
		{FormatNDJSON, []int{3000, 3000}, 0, [][2]int{{0, 2}}},
	} {
		var ds []string
		for i, n := range tc.sizes {
			ds = append(ds, docs(fmt.Sprint(i), 1, n)[0])
		}
		s := &Sink{maxBody: tc.max, array: tc.format == FormatJSONArray}
		var gotParts [][2]int
		off := 0
		b := sinktest.Batch(ds...)
		for _, p := range s.plan(b) {
			gotParts = append(gotParts, [2]int{p.lo, p.hi})
			if p.start != off || string(b.NDJSON()[p.start:p.end]) != strings.Join(ds[p.lo:p.hi], "\n")+"\n" {
				t.Errorf("%v: part %v has wrong byte range [%d,%d)", tc.sizes, p, p.start, p.end)
			}
			off = p.end
		}
		if diff := cmp.Diff(tc.want, gotParts); diff != "" {
			t.Errorf("%s %v max %d: parts (-want +got):\n%s", tc.format, tc.sizes, tc.max, diff)
		}
	}
}

// TestSplitLaterPartRetryable: a 429 with Retry-After on the second of three
// requests marks it and the unsent third retryable, and keeps the delay.
func TestSplitLaterPartRetryable(t *testing.T) {
	var n atomic.Int32
	var received atomic.Int32
	hs := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		var buf bytes.Buffer
		buf.ReadFrom(r.Body)
		if n.Add(1) == 2 {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(nethttp.StatusTooManyRequests)
			return
		}
		received.Add(int32(bytes.Count(buf.Bytes(), []byte("\n"))))
	}))
	defer hs.Close()
	cfg := defaults(hs.URL)
	cfg.MaxBodyBytes = 1024
	s, _ := newSink(t, cfg)
	err := s.Write(sinktest.Context(t), sinktest.Batch(docs("l", 15, 200)...))
	var pe *pipeline.PartialError
	var ra *pipeline.RetryAfterError
	if !errors.As(err, &pe) || !errors.As(err, &ra) || pipeline.IsPermanent(err) {
		t.Fatalf("err %v: want a PartialError and a RetryAfterError, not permanent", err)
	}
	if ra.Delay != 3*time.Second {
		t.Errorf("Delay %s, want 3s", ra.Delay)
	}
	var idx []int
	for _, it := range pe.Items {
		idx = append(idx, it.Index)
		if it.Permanent {
			t.Errorf("item %d permanent", it.Index)
		}
	}
	if diff := cmp.Diff([]int{5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, idx); diff != "" {
		t.Errorf("failed indexes (-want +got):\n%s", diff)
	}
	if n.Load() != 2 || received.Load() != 5 {
		t.Errorf("%d requests, %d documents received; want 2 and 5", n.Load(), received.Load())
	}
}

// TestSplitFirstPartRetryable: when nothing got through, the whole batch is
// retried with a plain error.
func TestSplitFirstPartRetryable(t *testing.T) {
	srv := sinktest.Start(t, httpsink.New(httpsink.Options{}))
	cfg := defaults(srv.URL())
	cfg.MaxBodyBytes = 1024
	s, _ := newSink(t, cfg)
	srv.FailNext(1, 503, "1")
	err := s.Write(sinktest.Context(t), sinktest.Batch(docs("f", 15, 200)...))
	var pe *pipeline.PartialError
	var ra *pipeline.RetryAfterError
	if err == nil || errors.As(err, &pe) || !errors.As(err, &ra) || pipeline.IsPermanent(err) {
		t.Fatalf("err %v: want a plain retryable RetryAfterError", err)
	}
	if srv.Requests() != 1 {
		t.Errorf("%d requests after the first failed, want 1", srv.Requests())
	}
}

func TestServerDownThenUp(t *testing.T) {
	srv := sinktest.Start(t, httpsink.New(httpsink.Options{}))
	s, _ := newSink(t, defaults(srv.URL()))
	var all []string
	for i := 0; i < 10; i++ {
		ds := docs(fmt.Sprintf("batch%d", i), 20, 150)
		all = append(all, ds...)
		b := sinktest.Batch(ds...)
		if i == 5 {
			if err := srv.SetDown(true); err != nil {
				t.Fatal(err)
			}
			err := s.Write(sinktest.Context(t), b)
			if err == nil || pipeline.IsPermanent(err) {
				t.Fatalf("write while down: %v, want a retryable error", err)
			}
			go func() {
				time.Sleep(100 * time.Millisecond)
				if err := srv.SetDown(false); err != nil {
					t.Error(err)
				}
			}()
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := s.Write(sinktest.Context(t), b)
			if err == nil {
				break
			}
			if pipeline.IsPermanent(err) || time.Now().After(deadline) {
				t.Fatalf("batch %d: %v", i, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ids := srv.IDs()
	for _, d := range all {
		var v struct{ Event struct{ ID string } }
		if err := json.Unmarshal([]byte(d), &v); err != nil {
			t.Fatal(err)
		}
		if ids[v.Event.ID] < 1 {
			t.Errorf("document %s never arrived", v.Event.ID)
		}
	}
	if len(ids) != len(all) {
		t.Errorf("%d distinct IDs, want %d", len(ids), len(all))
	}
}

func TestTimeoutIsRetryable(t *testing.T) {
	srv := sinktest.Start(t, httpsink.New(httpsink.Options{}))
	srv.SetLatency(2 * time.Second)
	cfg := defaults(srv.URL())
	cfg.Timeout = 100 * time.Millisecond
	s, _ := newSink(t, cfg)
	err := s.Write(sinktest.Context(t), sinktest.Batch(docs("t", 1, 50)...))
	if err == nil || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("err %v, want a retryable timeout", err)
	}
	if srv.Count() != 0 {
		t.Errorf("%d documents recorded", srv.Count())
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	srv := sinktest.Start(t, httpsink.New(httpsink.Options{}))
	s, _ := newSink(t, defaults(srv.URL()))
	for i := 0; i < 2; i++ {
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Write(sinktest.Context(t), sinktest.Batch(docs("c", 1, 50)...)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	var nilSink *Sink
	if err := nilSink.Close(context.Background()); err != nil {
		t.Errorf("Close on nil: %v", err)
	}
}

// TestSecretsNeverLeak provokes every kind of error with credentials in
// the token, the basic password, a header and the URL's query, and checks
// errors and logs.
func TestSecretsNeverLeak(t *testing.T) {
	const secret = "s3cr3t-token"
	srv := sinktest.Start(t, httpsink.New(httpsink.Options{BearerToken: secret}))
	var errs []string
	var logs []*sinktest.LogBuffer
	check := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, auth := range []*AuthConfig{
		{BearerToken: config.NewSecret(secret)},
		{Basic: &BasicAuth{Username: "u", Password: config.NewSecret(secret)}},
	} {
		cfg := defaults(srv.URL() + "/hook/" + secret + "?token=" + secret)
		cfg.Auth = auth
		cfg.Headers = map[string]string{"X-Api-Key": secret}
		cfg.TLS = nil
		s, lb := newSink(t, cfg)
		logs = append(logs, lb)
		check(s.Write(sinktest.Context(t), sinktest.Batch(docs("x", 2, 60)...)))
		check(s.Check(sinktest.Context(t)))
		// The receiver echoes part of the body, which holds the secret.
		srv.RejectMatching(secret, 400)
		check(s.Write(sinktest.Context(t), sinktest.Batch([]string{`{"m":"` + secret + `"}`}...)))
		srv.RejectMatching("", 0)
		for _, code := range []int{429, 500, 404} {
			srv.FailNext(1, code, "1")
			check(s.Write(sinktest.Context(t), sinktest.Batch(docs("y", 1, 60)...)))
		}
		srv.SetDown(true)
		check(s.Write(sinktest.Context(t), sinktest.Batch(docs("z", 1, 60)...)))
		check(s.Check(sinktest.Context(t)))
		srv.SetDown(false)
	}
	// Invalid configs.
	bad := Config{URL: "ftp://u:" + secret + "@h/" + secret, Headers: map[string]string{"X-K": secret + "\n"},
		Auth: &AuthConfig{BearerToken: config.NewSecret(secret + "\n"), Basic: &BasicAuth{Username: "a:b", Password: config.NewSecret(secret)}}}
	if _, err := New(bad, pipeline.Deps{}); err == nil {
		t.Error("New accepted a bad config")
	} else {
		check(err)
	}
	if len(errs) < 10 {
		t.Fatalf("only %d errors provoked", len(errs))
	}
	for _, e := range errs {
		assertNoSecret(t, e, secret)
	}
	for _, l := range logs {
		assertNoSecret(t, l.String(), secret)
	}
	if !strings.Contains(strings.Join(errs, "\n"), "[redacted]") {
		t.Error("the echoed secret was not redacted from the 400 excerpt")
	}
}

func assertNoSecret(t *testing.T, s, secret string) {
	t.Helper()
	if strings.Contains(s, secret) {
		t.Errorf("secret leaked in %q", s)
	}
}
