package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/emulator/cybertrace"
	cynetemu "github.com/alertrelay/alertrelay/internal/emulator/cynet"
	"github.com/alertrelay/alertrelay/internal/emulator/httpsink"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/telemetry"
)

var update = flag.Bool("update", false, "rewrite golden files")

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// start builds and runs a daemon from cfg (with %s for the state dir) and
// returns it, its state dir and a stop function that waits for Run.
func start(t *testing.T, cfg string, opt Options) (*Daemon, string, func()) {
	t.Helper()
	return startWith(t, cfg, opt, nil)
}

// startWith is start with a hook that adjusts the daemon before it runs.
func startWith(t *testing.T, cfg string, opt Options, adjust func(*Daemon)) (*Daemon, string, func()) {
	t.Helper()
	dir := t.TempDir()
	f, errs := CheckBytes([]byte(strings.ReplaceAll(cfg, "$DIR", dir)))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	opt.Log = testLogger(t)
	if opt.Stdout == nil {
		opt.Stdout = &bytes.Buffer{}
	}
	d, err := New(f, opt)
	if err != nil {
		t.Fatal(err)
	}
	if adjust != nil {
		adjust(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("daemon did not stop")
		}
	}
	t.Cleanup(func() { cancel() })
	return d, dir, stop
}

func addrOf(t *testing.T, d *Daemon, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := d.SourceAddr(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return a.String()
}

// TestEndToEnd sends the awkward cases over one real TCP connection and
// checks the exact documents written and the dead letters.
func TestEndToEnd(t *testing.T) {
	recv := time.Date(2025, 3, 1, 8, 1, 5, 0, time.UTC)
	d, dir, stop := start(t, `
state_dir: $DIR
sources:
  ct:
    type: cybertrace
    listen: 127.0.0.1:0
    max_line_bytes: 1024
    include_original: true
sinks:
  out:
    type: file
    path: $DIR/events.ndjson
    batch: {timeout: 10ms}
`, Options{Now: func() time.Time { return recv }, IDs: event.NewIDGenSeed(7)})

	seed := cybertrace.SeedLines()
	var stream bytes.Buffer
	stream.WriteString("X-KF-SendFinishedEventX-KF-ReplyBack") // flags glued to the first event
	stream.WriteString(seed[0] + "\n")
	stream.WriteString(seed[1] + "\r\n")                                                  // CRLF
	stream.WriteString("category=KL_Malicious_URL " + strings.Repeat("x=y ", 400) + "\n") // oversize: 1600 bytes
	stream.WriteString(seed[2] + "\n")
	stream.WriteString("- category=KL_IP_Reputation matchedIndicator=192.0.2.9 usrName=b\xffad\xc3 confidence=100\n") // invalid UTF-8
	stream.WriteString("hello, this is not an event\n")
	stream.WriteString("\n\r\n") // empty lines are skipped
	stream.WriteString("Mar 01 08:00:00 alert=KL_ALERT_UpdatedFeed feed=Malicious_URL_Data_Feed.json\n")
	stream.WriteString(seed[3]) // last line without LF, then EOF

	c, err := net.Dial("tcp", addrOf(t, d, "ct"))
	if err != nil {
		t.Fatal(err)
	}
	// Split writes at awkward offsets: inside a flag, inside a line, inside
	// a CRLF and inside a multi-byte sequence.
	b := stream.Bytes()
	for _, cut := range []int{7, 23, 300, 301, 700, 702, 1500, 2500, 4000} {
		if cut >= len(b) {
			break
		}
		if _, err := c.Write(b[:cut]); err != nil {
			t.Fatal(err)
		}
		b = b[cut:]
		time.Sleep(2 * time.Millisecond)
	}
	c.Write(b)
	c.Close()
	waitFor(t, func() bool { return telemetry.Value(d.Metrics().Sink("out").Sent) >= 6 })
	stop()

	got, err := os.ReadFile(filepath.Join(dir, "events.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/end_to_end.golden.ndjson", got)

	dl, _ := os.ReadFile(filepath.Join(dir, "deadletter", "source-ct.ndjson"))
	lines := strings.Split(strings.TrimSpace(string(dl)), "\n")
	if len(lines) != 2 ||
		!strings.Contains(lines[0], `"reason":"line longer than max_line_bytes","line":"category=KL_Malicious_URL x=y`) ||
		!strings.Contains(lines[1], `"reason":"no key=value pairs","line":"hello, this is not an event"`) {
		t.Errorf("dead letters:\n%s", dl)
	}
	m := d.Metrics().Source("ct")
	for name, want := range map[string]float64{"oversize": 1, "invalid": 1, "repaired": 1, "events": 6} {
		var v float64
		switch name {
		case "oversize":
			v = telemetry.Value(m.Oversize)
		case "invalid":
			v = telemetry.Value(m.Invalid)
		case "repaired":
			v = telemetry.Value(m.Repaired)
		case "events":
			v = telemetry.Value(m.Events)
		}
		if v != want {
			t.Errorf("metric %s = %v, want %v", name, v, want)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s (-want +got):\n%s", path, d)
	}
}

// TestManyConnections pushes from several emulated CyberTrace connections
// and checks every line arrives exactly once.
func TestManyConnections(t *testing.T) {
	d, dir, stop := start(t, `
state_dir: $DIR
sources:
  ct: {type: cybertrace, listen: 127.0.0.1:0}
sinks:
  out: {type: file, path: $DIR/out.ndjson, batch: {timeout: 10ms}}
`, Options{})
	const n = 20000
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := cybertrace.Push(ctx, cybertrace.PushConfig{Addr: addrOf(t, d, "ct"), Count: n, Conns: 8, CRLFEvery: 3, Gen: cybertrace.DefaultGenOptions(), Seed: 3})
	if err != nil || st.Lines != n {
		t.Fatalf("push: %d lines, %v", st.Lines, err)
	}
	waitFor(t, func() bool { return telemetry.Value(d.Metrics().Sink("out").Sent) >= n })
	stop()
	b, _ := os.ReadFile(filepath.Join(dir, "out.ndjson"))
	if got := bytes.Count(b, []byte("\n")); got != n {
		t.Fatalf("%d documents written, want %d", got, n)
	}
	ids := map[string]bool{}
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		i := bytes.Index(l, []byte(`"id":"`))
		ids[string(l[i+6:i+30])] = true
	}
	if len(ids) != n {
		t.Fatalf("%d distinct event IDs, want %d", len(ids), n)
	}
}

func TestConnectionLimitsAndAllowlist(t *testing.T) {
	d, _, stop := start(t, `
state_dir: $DIR
sources:
  open: {type: cybertrace, listen: 127.0.0.1:0, max_connections: 1}
  closed: {type: cybertrace, listen: 127.0.0.1:0, allow_cidrs: [192.0.2.0/24]}
sinks:
  out: {type: file, path: $DIR/out.ndjson}
`, Options{})
	defer stop()
	c1, err := net.Dial("tcp", addrOf(t, d, "open"))
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	waitFor(t, func() bool { return telemetry.Value(d.Metrics().Source("open").ConnActive) == 1 })
	for name, metric := range map[string]func() float64{
		"open":   func() float64 { return telemetry.Value(d.Metrics().Source("open").ConnRefused) },
		"closed": func() float64 { return telemetry.Value(d.Metrics().Source("closed").ConnDenied) },
	} {
		c, err := net.Dial("tcp", addrOf(t, d, name))
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s: refused connection was not closed", name)
		}
		c.Close()
		waitFor(t, func() bool { return metric() == 1 })
	}
}

func TestValidateReportsAllErrors(t *testing.T) {
	_, errs := CheckBytes([]byte(`state_dir: ./d
sources:
  ct:
    type: cybertrace
    listen: nowhere
    format: xml
    max_line_bytes: 10
    idle_timout: 5m
  other:
    type: kafka
sinks:
  out:
    type: file
    inputs: [ct, nope]
    max_files: 0
    buffer: {when_full: explode}
`))
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		`line 5: sources.ct.listen: want host:port, got "nowhere"`,
		`line 6: sources.ct.format: want auto, kv, cef or template, got "xml"`,
		`line 7: sources.ct.max_line_bytes: want 256 to 67108864, got 10`,
		`line 8: sources.ct.idle_timout: unknown key (did you mean "idle_timeout"?)`,
		`line 10: sources.other.type: unknown source type "kafka" (known: cybertrace, cynet)`,
		`line 13: sinks.out.path: is required`,
		`line 14: sinks.out.inputs: entry 1: no source named "nope"`,
		`line 15: sinks.out.max_files: must be between 1 and 1024, got 0`,
		`line 16: sinks.out.buffer.when_full: want block or drop_newest, got "explode"`,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestStateDirLock(t *testing.T) {
	dir := t.TempDir()
	cfg := strings.ReplaceAll("state_dir: $DIR\nsources: {ct: {type: cybertrace, listen: 127.0.0.1:0}}\nsinks: {out: {type: file, path: $DIR/o.ndjson}}\n", "$DIR", dir)
	f, _ := CheckBytes([]byte(cfg))
	d, err := New(f, Options{Log: testLogger(t), Stdout: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	if !StateDirInUse(dir) {
		t.Error("StateDirInUse = false while a daemon holds it")
	}
	if _, err := New(f, Options{Log: testLogger(t), Stdout: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), "in use by another alertrelay") {
		t.Fatalf("second daemon on the same state_dir: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if StateDirInUse(dir) {
		t.Error("lock still held after Run returned")
	}
}

// TestBackPressure fills a small disk queue while the SIEM is down: the
// listener must stop reading (the sender blocks) rather than buffer, and
// everything must arrive once the SIEM is back.
func TestBackPressure(t *testing.T) {
	recv := httpsink.New(httpsink.Options{IDsOnly: true})
	if err := recv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	recv.SetDown(true)
	d, _, stop := start(t, `
state_dir: $DIR
sources:
  ct: {type: cybertrace, listen: 127.0.0.1:0}
sinks:
  siem:
    type: http
    url: `+recv.URL()+`
    buffer: {type: disk, max_bytes: 2097152}
    retry: {initial: 50ms, max: 200ms}
`, Options{})
	defer stop()
	const n = 50000 // ~50 MB of documents against a 2 MiB queue
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		st, err := cybertrace.Push(ctx, cybertrace.PushConfig{Addr: addrOf(t, d, "ct"), Count: n, Conns: 2, Gen: cybertrace.DefaultGenOptions(), Seed: 4})
		if err == nil && st.Lines != n {
			err = fmt.Errorf("pushed %d", st.Lines)
		}
		done <- err
	}()
	time.Sleep(2 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("the sender finished (%v) although the queue was full: no back-pressure", err)
	default:
	}
	queued := telemetry.Value(d.Metrics().Source("ct").Events)
	if queued >= n {
		t.Fatalf("%v events queued into a 2 MiB queue", queued)
	}
	recv.SetDown(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return recv.Distinct() == n })
	t.Logf("queue held %v events while the SIEM was down; all %d delivered after", queued, n)
}

// TestTwoCynetTenants runs two cynet sources at once, each with its own
// credentials, client_id, cursor and metrics.
func TestTwoCynetTenants(t *testing.T) {
	api := cynetemu.New(cynetemu.Options{ClientIDs: []string{"1042", "2077"},
		Users: map[string]string{"acme-key": "acme-secret", "beta-key": "beta-secret"}})
	api.AddAlertsAt(300, time.Now().Add(-time.Hour))
	if err := api.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	d, dir, stop := start(t, `
state_dir: $DIR
sources:
  acme: {type: cynet, base_url: `+api.URL()+`, username: acme-key, password: acme-secret, client_id: "1042", page_size: 100, max_requests_per_second: 100}
  beta: {type: cynet, base_url: `+api.URL()+`, username: beta-key, password: beta-secret, client_id: "2077", page_size: 70, max_requests_per_second: 100}
sinks:
  out: {type: file, path: $DIR/out.ndjson, batch: {timeout: 10ms}}
`, Options{})
	waitFor(t, func() bool { return telemetry.Value(d.Metrics().Sink("out").Sent) >= 600 })
	stop()
	b, _ := os.ReadFile(filepath.Join(dir, "out.ndjson"))
	per := map[string]int{}
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var doc struct{ Event struct{ Provider string } }
		json.Unmarshal(l, &doc)
		per[doc.Event.Provider]++
	}
	if per["acme"] != 300 || per["beta"] != 300 {
		t.Fatalf("documents per tenant: %v, want 300 each", per)
	}
}
