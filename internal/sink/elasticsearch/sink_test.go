package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/config"
	es "github.com/alertrelay/alertrelay/internal/emulator/elasticsearch"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

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

// docs returns n documents of size bytes with event.id prefix-<i>.
func docs(prefix string, n, size int) []string {
	return sinktest.Docs[string](n, size, func(i int) string {
		return fmt.Sprintf(`{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"%s-%04d","kind":"alert"},"message":"`, prefix, i)
	})
}

func meta(t testing.TB, doc string) (id, ts string) {
	t.Helper()
	m, ok := event.ReadMeta([]byte(doc))
	if !ok {
		t.Fatalf("bad doc %s", doc)
	}
	return string(event.Unquote(nil, m.ID)), string(m.Timestamp)
}

func TestWriteHappyPath(t *testing.T) {
	for _, tc := range []struct {
		name        string
		mode        string
		compression string
		pipeline    string
	}{
		{"data_stream gzip", ModeDataStream, CompressionGzip, ""},
		{"data_stream none", ModeDataStream, CompressionNone, "alerts-enrich"},
		{"index gzip", ModeIndex, CompressionGzip, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := sinktest.Start(t, es.New(es.Options{}))
			cfg := defaults(srv.URL())
			cfg.Mode, cfg.Compression, cfg.Pipeline = tc.mode, tc.compression, tc.pipeline
			if tc.mode == ModeIndex {
				cfg.Index = "alertrelay-{yyyy.MM.dd}"
			}
			s, _ := newSink(t, cfg)
			want := sinktest.Golden[string](t)
			b := sinktest.Batch(want...)
			if err := s.Write(sinktest.Context(t), b); err != nil {
				t.Fatal(err)
			}

			// Field by field: target, _id, source bytes.
			type stored struct{ Index, ID, EventID, Source string }
			var wantDocs, gotDocs []stored
			for _, d := range want {
				id, ts := meta(t, d)
				index := DefaultDataStream
				if tc.mode == ModeIndex {
					index = "alertrelay-" + ts[0:4] + "." + ts[5:7] + "." + ts[8:10]
				}
				wantDocs = append(wantDocs, stored{index, id, id, d})
			}
			for _, d := range srv.Docs() {
				gotDocs = append(gotDocs, stored{d.Index, d.ID, d.EventID, string(d.Source)})
			}
			if diff := cmp.Diff(wantDocs, gotDocs); diff != "" {
				t.Errorf("stored documents (-want +got):\n%s", diff)
			}

			h, q := srv.LastHeader(), srv.LastQuery()
			if h.Get("Content-Type") != "application/x-ndjson" || h.Get("User-Agent") != "alertrelay" {
				t.Errorf("headers %v", h)
			}
			if q.Get("filter_path") != filterPath || q.Get("pipeline") != tc.pipeline {
				t.Errorf("query %v", q)
			}
			if tc.compression == CompressionGzip {
				// The emulator stored the decoded documents above, and
				// fewer bytes than the body crossed the wire.
				if h.Get("Content-Encoding") != "gzip" || srv.BytesOnWire() >= int64(len(s.buf)) {
					t.Errorf("Content-Encoding %q, %d bytes on the wire for a %d-byte body", h.Get("Content-Encoding"), srv.BytesOnWire(), len(s.buf))
				}
			} else if h.Get("Content-Encoding") != "" || srv.BytesOnWire() != int64(len(s.buf)) {
				t.Errorf("Content-Encoding %q, wire %d, body %d", h.Get("Content-Encoding"), srv.BytesOnWire(), len(s.buf))
			}

			// A re-send (the delivery loop retrying after a lost reply) is
			// a success and stores nothing twice.
			if err := s.Write(sinktest.Context(t), b); err != nil {
				t.Fatalf("re-send: %v", err)
			}
			if srv.Count() != len(want) {
				t.Errorf("%d documents stored after a re-send, want %d", srv.Count(), len(want))
			}
			for id, n := range srv.IDs() {
				if n != 1 {
					t.Errorf("event %s stored %d times", id, n)
				}
			}
			if tc.mode == ModeDataStream && srv.Conflicts() != len(want) {
				t.Errorf("%d conflicts on re-send, want %d", srv.Conflicts(), len(want))
			}
			if err := s.Write(sinktest.Context(t), event.NewBatch(0, 0)); err != nil || srv.Requests() != 2 {
				t.Errorf("empty batch: %v, %d requests (want 2)", err, srv.Requests())
			}
		})
	}
}

func TestPartialFailure(t *testing.T) {
	srv := sinktest.Start(t, es.New(es.Options{}))
	s, _ := newSink(t, defaults(srv.URL()))
	ds := docs("p", 6, 200)
	ds[1] = strings.Replace(ds[1], "bbbb", "REJECT", 1)
	ds[4] = strings.Replace(ds[4], "eeee", "REJECT", 1)
	srv.RejectMatching("REJECT")
	srv.FailNextItems(1, 429) // the first item
	err := s.Write(sinktest.Context(t), sinktest.Batch(ds...))
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) || pipeline.IsPermanent(err) {
		t.Fatalf("err %v: want a PartialError, not permanent", err)
	}
	if diff := cmp.Diff([]string{"0:R", "1:P", "4:P"}, sinktest.Summary(pe.Items)); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	for _, it := range pe.Items {
		want := "document rejected (400 mapper_parsing_exception)"
		if !it.Permanent {
			want = "document not written (429 es_rejected_execution_exception)"
		}
		if !strings.Contains(it.Err.Error(), want) || pipeline.IsPermanent(it.Err) != it.Permanent {
			t.Errorf("item %d: %v, want %q", it.Index, it.Err, want)
		}
	}
	if srv.Count() != 3 {
		t.Errorf("stored %d, want 3", srv.Count())
	}
	// The loop retries the retryable item alone.
	if err := s.Write(sinktest.Context(t), sinktest.Batch(ds[:1]...)); err != nil {
		t.Fatal(err)
	}
	if srv.Count() != 4 {
		t.Errorf("stored %d, want 4", srv.Count())
	}
}

func TestItemClassification(t *testing.T) {
	s := &Sink{targets: []string{"http://x"}}
	items := []itemResult{
		{op: "create", status: 201},
		{op: "create", status: 409, typ: "version_conflict_engine_exception"},
		{op: "index", status: 409, typ: "version_conflict_engine_exception"},
		{op: "create", status: 400, typ: "mapper_parsing_exception", reason: "failed to parse field [source.ip]"},
		{op: "create", status: 400, typ: "illegal_argument_exception"},
		{op: "index", status: 200},
		{op: "create", status: 429, typ: "es_rejected_execution_exception"},
		{op: "create", status: 503, typ: "unavailable_shards_exception"},
		{op: "create", status: 500},
		{op: "create", status: 403, typ: "security_exception"},
		{op: "create", status: 404, typ: "index_not_found_exception"},
		{op: "create", status: 404, typ: "other"},
		{op: "create", status: 0},
	}
	got := s.itemErrors(items, 100)
	want := []string{
		"102:P", "103:P", "104:P",
		"106:R", "107:R", "108:R", "109:R",
		"110:R", "111:P", "112:R",
	}
	if diff := cmp.Diff(want, sinktest.Summary(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !strings.Contains(got[1].Err.Error(), "failed to parse field [source.ip]") {
		t.Errorf("reason missing: %v", got[1].Err)
	}
}

func TestWholeRequestOutcomes(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		status     int
		retryAfter string
		delay      time.Duration
		permanent  bool
		text       string
	}{
		{429, "2", 2 * time.Second, false, "429"},
		{429, now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, false, "429"},
		{503, "5", 5 * time.Second, false, "503"},
		{429, "86400", MaxRetryAfter, false, "429"},
		{429, "", 0, false, "es_rejected_execution_exception"},
		{500, "3", 0, false, "500"},
		{502, "", 0, false, "502"},
		{401, "", 0, false, "authentication failed (401)"},
		{403, "", 0, false, "authentication failed (403)"},
		{400, "", 0, true, "400"},
		{404, "", 0, true, "404"},
	} {
		t.Run(fmt.Sprintf("%d %s", tc.status, tc.retryAfter), func(t *testing.T) {
			srv := sinktest.Start(t, es.New(es.Options{}))
			s, _ := newSinkNow(t, defaults(srv.URL()), func() time.Time { return now })
			srv.FailNext(1, tc.status, tc.retryAfter)
			b := sinktest.Batch(docs("w", 4, 100)...)
			err := s.Write(sinktest.Context(t), b)
			if err == nil || pipeline.IsPermanent(err) != tc.permanent || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err %v: want permanent=%v containing %q", err, tc.permanent, tc.text)
			}
			var pe *pipeline.PartialError
			if errors.As(err, &pe) {
				t.Fatalf("a whole-request failure of a one-request batch is a PartialError: %v", err)
			}
			var ra *pipeline.RetryAfterError
			if errors.As(err, &ra) != (tc.delay != 0) || (ra != nil && ra.Delay != tc.delay) {
				t.Fatalf("RetryAfterError %v, want delay %s", ra, tc.delay)
			}
			if err := s.Write(sinktest.Context(t), b); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if srv.Count() != 4 {
				t.Errorf("stored %d, want 4", srv.Count())
			}
		})
	}
}

func TestAuth(t *testing.T) {
	const id, key, pw = "VuaCfGcBCdbkQm-e5aOx", "ui2lp2axTNmsyakw9tvNnw", "s3cr3t-pw"
	opt := es.Options{APIKeyID: id, APIKey: key, Username: "relay", Password: pw}
	for _, tc := range []struct {
		name string
		auth *AuthConfig
		ok   bool
	}{
		{"api key encoded", &AuthConfig{APIKey: config.NewSecret(opt.EncodedAPIKey())}, true},
		{"api key id:key", &AuthConfig{APIKey: config.NewSecret(id + ":" + key)}, true},
		{"basic", &AuthConfig{Username: "relay", Password: config.NewSecret(pw)}, true},
		{"wrong key", &AuthConfig{APIKey: config.NewSecret(id + ":" + "wrong-key-1234")}, false},
		{"wrong password", &AuthConfig{Username: "relay", Password: config.NewSecret("wrong-pw-1234")}, false},
		{"none", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := sinktest.Start(t, es.New(opt))
			cfg := defaults(srv.URL())
			cfg.Auth = tc.auth
			s, logs := newSink(t, cfg)
			werr := s.Write(sinktest.Context(t), sinktest.Batch(docs("a", 3, 80)...))
			cerr := s.Check(sinktest.Context(t))
			if tc.ok {
				if werr != nil || cerr != nil || srv.Count() != 3 {
					t.Fatalf("Write %v, Check %v, stored %d", werr, cerr, srv.Count())
				}
				return
			}
			for _, err := range []error{werr, cerr} {
				if err == nil || !strings.Contains(err.Error(), "authentication failed (401)") {
					t.Errorf("err %v: want authentication failed (401)", err)
				} else if pipeline.IsPermanent(err) {
					t.Errorf("auth failure is permanent; the events must stay queued: %v", err)
				}
				assertNoSecret(t, fmt.Sprint(err), key, pw, "wrong-key-1234", "wrong-pw-1234")
			}
			assertNoSecret(t, logs.String(), key, pw, "wrong-key-1234", "wrong-pw-1234")
			if srv.Count() != 0 {
				t.Errorf("stored %d", srv.Count())
			}
		})
	}
}

func assertNoSecret(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("secret %q leaked in %q", s, text)
		}
	}
}

// TestSecretsInReplies: a reply that echoes a header value is redacted.
func TestSecretsInReplies(t *testing.T) {
	const secret = "tenant-secret-123"
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"error":"bad header %s"}`, r.Header.Get("X-Tenant"))
	}))
	defer hs.Close()
	cfg := defaults(hs.URL)
	cfg.Headers = map[string]string{"X-Tenant": secret}
	s, logs := newSink(t, cfg)
	err := s.Write(sinktest.Context(t), sinktest.Batch(docs("s", 1, 80)...))
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "[redacted]") {
		t.Fatalf("err %v: want a permanent error with [redacted]", err)
	}
	assertNoSecret(t, err.Error()+logs.String(), secret)
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		opt  es.Options
		want string
	}{
		{es.Options{}, "distribution=elasticsearch version=" + es.DefaultESVersion},
		{es.Options{Distribution: es.DistOpenSearch}, "distribution=opensearch version=" + es.DefaultOSVersion},
	} {
		srv := sinktest.Start(t, es.New(tc.opt))
		s, logs := newSink(t, defaults(srv.URL()))
		if err := s.Check(sinktest.Context(t)); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), tc.want) {
			t.Errorf("log %q lacks %q", logs.String(), tc.want)
		}
		if srv.Count() != 0 || srv.Items() != 0 {
			t.Error("Check wrote documents")
		}
		if err := srv.SetDown(true); err != nil {
			t.Fatal(err)
		}
		if err := s.Check(sinktest.Context(t)); err == nil {
			t.Error("Check with the cluster down: no error")
		}
	}
	// Not a cluster (Kibana, a proxy's page).
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html>Kibana</html>")
	}))
	defer hs.Close()
	s, _ := newSink(t, defaults(hs.URL))
	if err := s.Check(sinktest.Context(t)); err == nil || !strings.Contains(err.Error(), "not Elasticsearch or OpenSearch") {
		t.Errorf("non-cluster: %v", err)
	}
}

// TestRestartMidStream: the cluster goes away and comes back on the same
// address while batches flow; a writer that retries each batch until Write
// returns nil ends with every event stored exactly once.
func TestRestartMidStream(t *testing.T) {
	srv := sinktest.Start(t, es.New(es.Options{}))
	s, _ := newSink(t, defaults(srv.URL()))
	const batches, per = 20, 50
	var all []string
	done := make(chan struct{})
	outage := make(chan error, 1)
	go func() {
		defer close(outage)
		deadline := time.Now().Add(10 * time.Second)
		for srv.Count() < 5*per { // wait until a few batches went through
			if time.Now().After(deadline) {
				outage <- errors.New("no progress before the outage")
				return
			}
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
		if err := srv.SetDown(true); err != nil {
			outage <- err
			return
		}
		time.Sleep(150 * time.Millisecond) // the outage itself
		outage <- srv.SetDown(false)
	}()
	failures := 0
	for i := range batches {
		ds := docs(fmt.Sprintf("r%02d", i), per, 150)
		all = append(all, ds...)
		b := sinktest.Batch(ds...)
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := s.Write(sinktest.Context(t), b)
			if err == nil {
				break
			}
			failures++
			if pipeline.IsPermanent(err) || time.Now().After(deadline) {
				t.Fatalf("batch %d: %v", i, err)
			}
			time.Sleep(10 * time.Millisecond) // the delivery loop's back-off
		}
	}
	close(done)
	if err := <-outage; err != nil {
		t.Fatal(err)
	}
	if failures == 0 {
		t.Error("no Write failed: the outage did not happen mid-stream")
	}
	want := map[string]int{}
	for _, d := range all {
		id, _ := meta(t, d)
		want[id] = 1
	}
	if diff := cmp.Diff(want, srv.IDs()); diff != "" {
		t.Errorf("event.id -> copies stored (-want +got):\n%s", diff)
	}
}

func TestSplitMaxBody(t *testing.T) {
	srv := sinktest.Start(t, es.New(es.Options{}))
	cfg := defaults(srv.URL())
	cfg.MaxBodyBytes = 1024
	s, _ := newSink(t, cfg)
	ds := docs("s", 15, 200) // ~270 bytes with the action line: 3 per request
	if err := s.Write(sinktest.Context(t), sinktest.Batch(ds...)); err != nil {
		t.Fatal(err)
	}
	if srv.Requests() != 5 {
		t.Errorf("%d requests, want 5", srv.Requests())
	}
	var got []string
	for _, d := range srv.Docs() {
		got = append(got, string(d.Source))
	}
	if diff := cmp.Diff(ds, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// TestSplitLaterRequestFails: the second of three requests fails with a
// retryable 429: its documents and those of the third (not sent) are
// retryable items, with the delay.
func TestSplitLaterRequestFails(t *testing.T) {
	srv := sinktest.Start(t, es.New(es.Options{}))
	cfg := defaults(srv.URL())
	cfg.MaxBodyBytes = 1024
	s, _ := newSink(t, cfg)
	ds := docs("l", 9, 200)
	// Fail request 2 only: let request 1 through first.
	if err := s.Write(sinktest.Context(t), sinktest.Batch(ds[:3]...)); err != nil {
		t.Fatal(err)
	}
	srv.Reset()
	hs := &failSecond{next: srv.URL()}
	proxy := httptest.NewServer(hs)
	defer proxy.Close()
	cfg.URL = proxy.URL
	s2, _ := newSink(t, cfg)
	err := s2.Write(sinktest.Context(t), sinktest.Batch(ds...))
	var pe *pipeline.PartialError
	var ra *pipeline.RetryAfterError
	if !errors.As(err, &pe) || !errors.As(err, &ra) || ra.Delay != 3*time.Second {
		t.Fatalf("err %v: want a PartialError with a 3s RetryAfterError", err)
	}
	want := []string{}
	for i := 3; i < 9; i++ {
		want = append(want, fmt.Sprintf("%d:R", i))
	}
	if diff := cmp.Diff(want, sinktest.Summary(pe.Items)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if srv.Count() != 3 || hs.calls != 2 {
		t.Errorf("stored %d, %d requests; want 3, 2", srv.Count(), hs.calls)
	}
}

// failSecond forwards to the emulator except the second request, which
// gets 429 with Retry-After: 3.
type failSecond struct {
	next  string
	mu    sync.Mutex
	calls int
}

func (f *failSecond) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.mu.Unlock()
	if n == 2 {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(429)
		return
	}
	req, _ := http.NewRequest(r.Method, f.next+r.URL.RequestURI(), r.Body)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.WriteHeader(502)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	_, _ = w.Write(buf.Bytes())
}

// TestTooLarge: the cluster's limit is below max_body_bytes: 413s split the
// request until it fits; a document over the limit alone is dead-lettered.
func TestTooLarge(t *testing.T) {
	srv := sinktest.Start(t, es.New(es.Options{MaxBodyBytes: 1200}))
	cfg := defaults(srv.URL())
	cfg.Compression = CompressionNone
	s, logs := newSink(t, cfg)
	ds := docs("t", 8, 200)
	ds[5] = docs("big", 1, 2000)[0]
	err := s.Write(sinktest.Context(t), sinktest.Batch(ds...))
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("err %v: want a PartialError", err)
	}
	if diff := cmp.Diff([]string{"5:P"}, sinktest.Summary(pe.Items)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !strings.Contains(pe.Items[0].Err.Error(), "413") {
		t.Errorf("item error %v does not mention 413", pe.Items[0].Err)
	}
	if srv.Count() != 7 {
		t.Errorf("stored %d, want 7", srv.Count())
	}
	if !strings.Contains(logs.String(), "too large (413)") {
		t.Error("no warning about 413")
	}
}

func TestURLsRoundRobin(t *testing.T) {
	srv := sinktest.Start(t, es.New(es.Options{}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := defaults("")
	cfg.URLs = []string{dead, srv.URL()}
	s, logs := newSink(t, cfg)
	b := sinktest.Batch(docs("rr", 3, 80)...)
	if err := s.Write(sinktest.Context(t), b); err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("first node dead: %v, want a retryable error", err)
	}
	if err := s.Write(sinktest.Context(t), b); err != nil {
		t.Fatalf("second node: %v", err)
	}
	if srv.Count() != 3 || !strings.Contains(logs.String(), "switching to the next url") {
		t.Errorf("stored %d; logs %s", srv.Count(), logs.String())
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	srv := sinktest.Start(t, es.New(es.Options{}))
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
}

func TestEncodeActionLines(t *testing.T) {
	now := func() time.Time { return time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC) }
	for _, tc := range []struct {
		mode, index, doc, want string
	}{
		{ModeDataStream, "", `{"@timestamp":"2025-03-01T08:01:05.123Z","event":{"id":"abc"}}`,
			`{"create":{"_index":"logs-alertrelay-default","_id":"abc"}}`},
		{ModeDataStream, "", `{"event":{"kind":"alert"}}`, `{"create":{"_index":"logs-alertrelay-default"}}`},
		{ModeDataStream, "", `{"event":{"id":"a\"b\u00e9\\"}}`, `{"create":{"_index":"logs-alertrelay-default","_id":"a\"bé\\"}}`},
		{ModeDataStream, "", `{"event":{"id":"` + strings.Repeat("x", 600) + `"}}`,
			`{"create":{"_index":"logs-alertrelay-default","_id":"` + sha(strings.Repeat("x", 600)) + `"}}`},
		{ModeIndex, "alertrelay-{yyyy.MM.dd}", `{"@timestamp":"2025-03-01T23:59:59.999Z","event":{"id":"i1"}}`,
			`{"index":{"_index":"alertrelay-2025.03.01","_id":"i1"}}`},
		{ModeIndex, "alerts-{yyyy-MM}-x{HH}", `{"@timestamp":"2025-12-31T08:00:00Z","event":{"id":"i1"}}`,
			`{"index":{"_index":"alerts-2025-12-x08","_id":"i1"}}`},
		{ModeIndex, "alertrelay-{yyyy.MM.dd}", `{"event":{"id":"i1"}}`, `{"index":{"_index":"alertrelay-2031.05.06","_id":"i1"}}`},
		{ModeIndex, "alertrelay-{yyyy.MM.dd}", `{"@timestamp":"garbage","event":{"id":"i1"}}`, `{"index":{"_index":"alertrelay-2031.05.06","_id":"i1"}}`},
		{ModeIndex, "static", `{"event":{"id":"i1"}}`, `{"index":{"_index":"static","_id":"i1"}}`},
	} {
		cfg := defaults("http://127.0.0.1:1")
		cfg.Mode, cfg.Index = tc.mode, tc.index
		s, _ := newSinkNow(t, cfg, now)
		s.encode(sinktest.Batch([]string{tc.doc}...))
		line, rest, _ := strings.Cut(string(s.buf), "\n")
		if line != tc.want || rest != tc.doc+"\n" {
			t.Errorf("%s:\n got %s\nwant %s", tc.doc, line, tc.want)
		}
		if !json.Valid([]byte(line)) {
			t.Errorf("invalid action line %s", line)
		}
	}
}

func sha(s string) string {
	var b []byte
	b, _ = appendID(b, []byte(s), nil)
	return string(b[1 : len(b)-1])
}

func TestParseIndexPattern(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		ok      bool
	}{
		{"alertrelay-{yyyy.MM.dd}", true},
		{"alertrelay", true},
		{"a-{yyyy}-{MM}", true},
		{"Alertrelay-{yyyy}", false},
		{"alertrelay-{yyyy.MM.dd", false},
		{"alertrelay-}", false},
		{"alertrelay-{}", false},
		{"alertrelay-{ww}", false},
		{"<alertrelay-{now/d}>", false},
		{"-alertrelay", false},
		{"alert relay", false},
		{"alert*", false},
		{"{yyyy}", true},
		{strings.Repeat("a", 256), false},
	} {
		if _, err := parseIndexPattern(tc.pattern); (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok=%v", tc.pattern, err, tc.ok)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   []string // fields with errors
	}{
		{"defaults", func(c *Config) {}, nil},
		{"no url", func(c *Config) { c.URL = "" }, []string{"url"}},
		{"url and urls", func(c *Config) { c.URLs = []string{"http://b:9200"} }, []string{"url"}},
		{"urls", func(c *Config) { c.URL = ""; c.URLs = []string{"http://a:9200", "http://b:9200"} }, nil},
		{"bad urls", func(c *Config) { c.URL = ""; c.URLs = []string{"ftp://a", "http://u:p@b"} }, []string{"urls[0]", "urls[1]"}},
		{"mixed schemes", func(c *Config) { c.URL = ""; c.URLs = []string{"https://a", "http://b"} }, []string{"urls"}},
		{"url with _bulk", func(c *Config) { c.URL = "http://a:9200/_bulk" }, []string{"url"}},
		{"url with query", func(c *Config) { c.URL = "http://a:9200/?x=1" }, []string{"url"}},
		{"bad mode", func(c *Config) { c.Mode = "stream" }, []string{"mode"}},
		{"bad data stream", func(c *Config) { c.DataStream = "Logs-X" }, []string{"data_stream"}},
		{"index in ds mode", func(c *Config) { c.Index = "x" }, []string{"index"}},
		{"index mode no index", func(c *Config) { c.Mode = ModeIndex }, []string{"index"}},
		{"index mode date math", func(c *Config) { c.Mode = ModeIndex; c.Index = "<x-{now/d}>" }, []string{"index"}},
		{"index mode", func(c *Config) { c.Mode = ModeIndex; c.Index = "alertrelay-{yyyy.MM.dd}" }, nil},
		{"compression", func(c *Config) { c.Compression = "zstd" }, []string{"compression"}},
		{"timeout", func(c *Config) { c.Timeout = -1 }, []string{"timeout"}},
		{"max body", func(c *Config) { c.MaxBodyBytes = 10 }, []string{"max_body_bytes"}},
		{"max body 0", func(c *Config) { c.MaxBodyBytes = 0 }, nil},
		{"pipeline", func(c *Config) { c.Pipeline = "a b" }, []string{"pipeline"}},
		{"api key", func(c *Config) { c.Auth = &AuthConfig{APIKey: config.NewSecret("abc")} }, nil},
		{"basic", func(c *Config) { c.Auth = &AuthConfig{Username: "u", Password: config.NewSecret("p")} }, nil},
		{"both", func(c *Config) {
			c.Auth = &AuthConfig{APIKey: config.NewSecret("k"), Username: "u", Password: config.NewSecret("p")}
		}, []string{"auth"}},
		{"empty auth", func(c *Config) { c.Auth = &AuthConfig{} }, []string{"auth"}},
		{"no password", func(c *Config) { c.Auth = &AuthConfig{Username: "u"} }, []string{"auth.password"}},
		{"no user", func(c *Config) { c.Auth = &AuthConfig{Password: config.NewSecret("p")} }, []string{"auth.username"}},
		{"colon user", func(c *Config) { c.Auth = &AuthConfig{Username: "a:b", Password: config.NewSecret("p")} }, []string{"auth.username"}},
		{"key newline", func(c *Config) { c.Auth = &AuthConfig{APIKey: config.NewSecret("a\nb")} }, []string{"auth.api_key"}},
		{"headers", func(c *Config) {
			c.Headers = map[string]string{"content-type": "x", "X-Ok": "v", "bad header": "v", "X-Ctl": "a\rb"}
		}, []string{"headers.X-Ctl", "headers.bad header", "headers.content-type"}},
		{"authorization header with auth", func(c *Config) {
			c.Auth = &AuthConfig{APIKey: config.NewSecret("k")}
			c.Headers = map[string]string{"Authorization": "x"}
		}, []string{"headers.Authorization"}},
		{"tls on http", func(c *Config) { c.TLS = &TLSConfig{CAFile: "ca.pem"} }, []string{"tls"}},
		{"tls half pair", func(c *Config) { c.URL = "https://a:9200"; c.TLS = &TLSConfig{CertFile: "c.pem"} }, []string{"tls.key_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := defaults("http://127.0.0.1:9200")
			tc.modify(&c)
			var got []string
			for _, err := range c.Validate() {
				var fe *config.FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("%v is not a FieldError", err)
				}
				got = append(got, fe.Field)
				if strings.Contains(fe.Msg, "u:p@") {
					t.Errorf("message quotes the URL: %s", fe.Msg)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseBulkReply(t *testing.T) {
	for _, tc := range []struct {
		body   string
		n      int
		errors bool
		items  []itemResult
		ok     bool
	}{
		{`{"errors":false,"items":[{"create":{"status":201}}]}`, 1, false, nil, true},
		{`{"took":3,"errors":false}`, 5, false, nil, true},
		{`{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"bad","caused_by":{"type":"x","reason":"y"}}}}]}`,
			2, true, []itemResult{{op: "create", status: 201}, {op: "create", status: 400, typ: "mapper_parsing_exception", reason: "bad: caused by x: y"}}, true},
		{`{"errors":true,"items":[{"index":{"status":429,"error":"old style"}}]}`, 1, true, []itemResult{{op: "index", status: 429, reason: "old style"}}, true},
		{`{"errors":true,"items":[{"create":{"status":201}}]}`, 2, true, nil, false},
		{`{"errors":true,"items":[{"create":{"status":201},"index":{"status":201}}]}`, 1, true, nil, false},
		{`{"items":[]}`, 0, false, nil, false},
		{`<html>`, 1, false, nil, false},
		{`{"errors":"no"}`, 1, false, nil, false},
	} {
		flag, items, err := parseBulkReply([]byte(tc.body), tc.n)
		if (err == nil) != tc.ok || (tc.ok && flag != tc.errors) {
			t.Errorf("%s: flag %v err %v", tc.body, flag, err)
			continue
		}
		if diff := cmp.Diff(tc.items, items, cmp.AllowUnexported(itemResult{})); tc.ok && diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.body, diff)
		}
	}
}

func FuzzParseBulkReply(f *testing.F) {
	f.Add([]byte(`{"errors":false,"items":[{"create":{"status":201}}]}`), 1)
	f.Add([]byte(`{"took":1,"errors":true,"items":[{"create":{"status":409,"error":{"type":"version_conflict_engine_exception"}}}]}`), 1)
	f.Add([]byte(`{"a":[{"b":"}"}],"errors":true}`), 0)
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		flag, items, err := parseBulkReply(body, n)
		if err != nil {
			return
		}
		if flag && len(items) != n {
			t.Fatalf("%d items for n=%d", len(items), n)
		}
		if !flag && items != nil {
			t.Fatal("items without errors")
		}
		// The scanner agrees with encoding/json on valid JSON.
		var v struct {
			Errors *bool `json:"errors"`
		}
		if json.Unmarshal(body, &v) == nil && v.Errors != nil && *v.Errors != flag {
			t.Fatalf("flag %v, encoding/json says %v", flag, *v.Errors)
		}
	})
}

func FuzzAppendID(f *testing.F) {
	f.Add([]byte(`abc`))
	f.Add([]byte(`a\"b\u00e9\ud83d\ude00\x`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, _ := appendID(nil, raw, nil)
		var s string
		if err := json.Unmarshal(out, &s); err != nil {
			t.Fatalf("appendID(%q) = %q: %v", raw, out, err)
		}
		if len(s) > maxIDBytes {
			t.Fatalf("id of %d bytes", len(s))
		}
	})
}

// TestSplitFirstRequestFails: nothing got through, so the whole batch is
// retried with the plain error, and the later requests are not sent.
func TestSplitFirstRequestFails(t *testing.T) {
	srv := sinktest.Start(t, es.New(es.Options{}))
	cfg := defaults(srv.URL())
	cfg.MaxBodyBytes = 1024
	s, _ := newSink(t, cfg)
	srv.FailNext(1, 503, "1")
	err := s.Write(sinktest.Context(t), sinktest.Batch(docs("f", 9, 200)...))
	var pe *pipeline.PartialError
	var ra *pipeline.RetryAfterError
	if err == nil || errors.As(err, &pe) || !errors.As(err, &ra) || pipeline.IsPermanent(err) {
		t.Fatalf("err %v: want a plain retryable RetryAfterError", err)
	}
	if srv.Requests() != 1 {
		t.Errorf("%d requests, want 1", srv.Requests())
	}
}
