package cybertrace

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/telemetry"
)

// Shared helpers for the source's tests: a recording BatchWriter and
// DeadLetterer, a source started on 127.0.0.1:0, and small waiting helpers.

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// Realistic lines, as CyberTrace sends them (the vendor tutorial's output).
const (
	seed0 = "- category=KL_Malicious_Hash_MD5 matchedIndicator=776735A8CA96DB15B422879DA599F474 url=- src=- ip=- md5=776735A8CA96DB15B422879DA599F474 sha1=- sha256=- usrName=- confidence=100 MD5=776735A8CA96DB15B422879DA599F474 SHA1=3B66A1D70562E291DA023E87B349DD89DFE00213 SHA256=1963CBCBB9FDAAD45F782FAAA467EE2C115C3111C003AE14D01181880B03F6ED file_size=1431 first_seen=10.07.2015 23:53 last_seen=14.07.2020 13:35 popularity=1 threat=HEUR:Trojan.Win32.Generic"
	seed1 = "- category=KL_IP_Reputation matchedIndicator=192.0.2.1 url=- src=- ip=192.0.2.1 md5=- sha1=- sha256=- usrName=- confidence=100 category=test first_seen=01.01.2017 00:00 ip=192.0.2.1 ip_geo=ru last_seen=17.07.2020 09:02 popularity=1 threat_score=75"
	seed2 = "CEF:0|Kaspersky Lab|Kaspersky CyberTrace for ArcSight|2.0|2|CyberTrace Detection Event|8|reason=KL_IP_Reputation dst=192.0.2.7 cs1=192.0.2.7 cs1Label=matchedIndicator"
	alert = "Mar 01 08:00:00 alert=KL_ALERT_UpdatedFeed feed=Malicious_URL_Data_Feed.json"
)

// deadRec is one dead-letter record.
type deadRec struct {
	Reason string
	Data   string
}

// recDL records dead letters. It is safe for concurrent use.
type recDL struct {
	mu   sync.Mutex
	recs []deadRec
}

func (d *recDL) DeadLetter(reason string, data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recs = append(d.recs, deadRec{reason, string(data)}) // string() copies
	return nil
}

func (d *recDL) get() []deadRec {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]deadRec(nil), d.recs...)
}

func (d *recDL) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recs = d.recs[:0]
}

// recWriter records copies of every document it is handed. If gate is set,
// each WriteBatch first waits for gate to be closed (or ctx to end).
type recWriter struct {
	gate chan struct{}

	mu      sync.Mutex
	docs    [][]byte
	calls   int
	entered chan struct{} // gets a value (if room) whenever WriteBatch is entered
}

func newRecWriter() *recWriter { return &recWriter{entered: make(chan struct{}, 1)} }

func (w *recWriter) WriteBatch(ctx context.Context, b *event.Batch) error {
	w.mu.Lock()
	w.calls++
	w.mu.Unlock()
	select {
	case w.entered <- struct{}{}:
	default:
	}
	if w.gate != nil {
		select {
		case <-w.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 0; i < b.Len(); i++ {
		// The batch is reused once WriteBatch returns: copy.
		w.docs = append(w.docs, append([]byte(nil), b.Doc(i)...))
	}
	return nil
}

func (w *recWriter) get() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.docs...)
}

func (w *recWriter) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.docs)
}

func (w *recWriter) batches() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls
}

func (w *recWriter) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.docs = w.docs[:0]
	w.calls = 0
}

// originals returns event.original of every document (the sources under
// test run with include_original), failing the test on invalid JSON.
func originals(t testing.TB, docs [][]byte) []string {
	t.Helper()
	out := make([]string, 0, len(docs))
	for _, d := range docs {
		o, err := originalOf(d)
		if err != nil {
			t.Fatalf("document is not valid JSON (%v): %s", err, d)
		}
		out = append(out, o)
	}
	return out
}

func originalOf(doc []byte) (string, error) {
	var v struct {
		Event struct {
			Original *string `json:"original"`
		} `json:"event"`
	}
	if err := json.Unmarshal(doc, &v); err != nil {
		return "", err
	}
	if v.Event.Original == nil {
		return "", errNoOriginal
	}
	return *v.Event.Original, nil
}

var errNoOriginal = errors.New("document has no event.original")

// testLogger logs to t.Log. Debug level shows why connections closed.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testConfig is the base configuration: loopback, ephemeral port, the raw
// line in every document.
func testConfig() Config {
	return Config{Listen: "127.0.0.1:0", IncludeOriginal: true, MaxLineBytes: 1024}
}

var fixedNow = time.Date(2025, 3, 1, 8, 1, 5, 0, time.UTC)

// newSource builds a source named "ct" with its own metrics.
func newSource(t testing.TB, cfg Config, log *slog.Logger, dl pipeline.DeadLetterer) (*Source, *telemetry.SourceMetrics) {
	t.Helper()
	m := telemetry.NewMetrics().Source("ct")
	s, err := New("ct", cfg, pipeline.Deps{Log: log, Now: func() time.Time { return fixedNow }, IDs: event.NewIDGenSeed(1)}, dl, m)
	if err != nil {
		t.Fatal(err)
	}
	return s, m
}

// running is a source whose Run is in progress.
type running struct {
	t      testing.TB
	src    *Source
	m      *telemetry.SourceMetrics
	dl     *recDL
	w      pipeline.BatchWriter
	addr   string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// startSource starts a source with cfg and writer w (a new recWriter if
// nil). The source is stopped at cleanup at the latest.
func startSource(t testing.TB, cfg Config, w pipeline.BatchWriter) *running {
	t.Helper()
	return startSourceLog(t, cfg, w, testLogger(t))
}

func startSourceLog(t testing.TB, cfg Config, w pipeline.BatchWriter, log *slog.Logger) *running {
	t.Helper()
	if w == nil {
		w = newRecWriter()
	}
	r := &running{t: t, dl: &recDL{}, w: w, done: make(chan error, 1)}
	r.src, r.m = newSource(t, cfg, log, r.dl)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.src.Run(ctx, w) }()
	t.Cleanup(func() { r.stop() })
	actx, acancel := context.WithTimeout(context.Background(), testTimeout)
	defer acancel()
	a, err := r.src.Addr(actx)
	if err != nil {
		t.Fatalf("source did not start listening: %v", err)
	}
	r.addr = a.String()
	return r
}

// stop cancels the source and waits for Run (bounded); it returns Run's
// error. It may be called more than once.
func (r *running) stop() error {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(testTimeout):
			r.err = context.DeadlineExceeded
			r.t.Errorf("Run did not return within %s of cancel", testTimeout)
		}
	})
	return r.err
}

func (r *running) rec() *recWriter { return r.w.(*recWriter) }

// dial connects to the source over TCP.
func (r *running) dial(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", r.addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitServed waits until n connections were accepted and none is open any
// more, i.e. every accepted connection has been served and flushed.
func (r *running) waitServed(t testing.TB, n int) {
	t.Helper()
	waitFor(t, "connections served", func() bool {
		return telemetry.Value(r.m.ConnAccepted) >= float64(n) && telemetry.Value(r.m.ConnActive) == 0
	})
}

// waitFor polls cond until it holds, failing the test after testTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", testTimeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// metricsOf reads the source's line counters.
type lineMetrics struct {
	Lines, Events, Invalid, Oversize, Repaired float64
}

func metricsOf(m *telemetry.SourceMetrics) lineMetrics {
	return lineMetrics{
		Lines: telemetry.Value(m.Lines), Events: telemetry.Value(m.Events),
		Invalid: telemetry.Value(m.Invalid), Oversize: telemetry.Value(m.Oversize),
		Repaired: telemetry.Value(m.Repaired),
	}
}

// closedByPeer reports whether the server closed c within d: a read returns
// EOF or a reset rather than timing out.
func closedByPeer(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}
