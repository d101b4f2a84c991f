package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/emulator/httpsink"
	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/queue/disk"
)

func run(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = Run(ctx, args, &o, &e)
	return code, o.String(), e.String()
}

func TestValidate(t *testing.T) {
	code, _, stderr := run(t, context.Background(), "validate", "--config", "testdata/bad.yaml")
	if code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	want := `testdata/bad.yaml: 3 problem(s):
  line 6: sources.ct.format: want auto, kv, cef or template, got "xml"
  line 8: sources.ct.idle_timout: unknown key (did you mean "idle_timeout"?)
  line 13: sinks.out.inputs: entry 1: no source named "nope"
`
	if d := cmp.Diff(want, stderr); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestValidateExamples(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	envRef := regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}`)
	for _, f := range files {
		// Certificate files of the examples are not read by validate (they
		// are read at start), so every example must pass once the
		// environment variables it names hold something.
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range envRef.FindAllStringSubmatch(string(text), -1) {
			v := "example-" + strings.ToLower(m[1])
			if strings.HasSuffix(m[1], "_TENANT_ID") || strings.HasSuffix(m[1], "_CLIENT_ID") {
				v = "72f988bf-86f1-41af-91ab-2d7cd011db47" // Entra IDs are GUIDs
			}
			t.Setenv(m[1], v)
		}
		code, out, errOut := run(t, context.Background(), "validate", "--config", f)
		if code != exitOK || !strings.Contains(out, "OK") {
			t.Errorf("%s: exit %d: %s%s", f, code, out, errOut)
		}
	}
}

func TestUsageAndHelp(t *testing.T) {
	if code, _, _ := run(t, context.Background()); code != exitUsage {
		t.Errorf("no args: exit %d", code)
	}
	if code, out, _ := run(t, context.Background(), "--help"); code != exitOK || !strings.Contains(out, "simulate") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
	for _, c := range []string{"run", "validate", "demo", "version"} {
		if code, _, errOut := run(t, context.Background(), c, "--help"); code != exitOK || !strings.Contains(errOut, "Usage: alertrelay "+c) {
			t.Errorf("%s --help: exit %d, %q", c, code, errOut)
		}
	}
	if code, _, errOut := run(t, context.Background(), "simulate", "cybertrace", "--help"); code != exitOK || !strings.Contains(errOut, "--count") && !strings.Contains(errOut, "-count") {
		t.Errorf("simulate cybertrace --help: exit %d, %q", code, errOut)
	}
	if code, _, _ := run(t, context.Background(), "bogus"); code != exitUsage {
		t.Errorf("bogus: exit %d", code)
	}
	if code, out, _ := run(t, context.Background(), "version"); code != exitOK || !strings.HasPrefix(out, "alertrelay ") {
		t.Errorf("version: %d %q", code, out)
	}
}

// TestDemo runs the demo for a moment and checks that every event the
// emulator sent was printed as a valid document and written to the file.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, out, errOut := run(t, ctx, "demo", "--duration", "1500ms", "--rate", "200", "--state-dir", dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	printed := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var doc map[string]any
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			t.Fatalf("printed line is not JSON: %q", sc.Text())
		}
		printed++
	}
	file, err := os.ReadFile(filepath.Join(dir, "events.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	written := bytes.Count(file, []byte("\n"))
	var sent, cynet int
	for _, l := range strings.Split(errOut, "\n") {
		if strings.HasPrefix(l, "final: emulator sent ") {
			sent = atoiPrefix(strings.TrimPrefix(l, "final: emulator sent "))
			if i := strings.Index(l, "| cynet "); i >= 0 {
				cynet = atoiPrefix(l[i+len("| cynet "):])
			}
		}
	}
	// Both sources side by side: the CyberTrace lines and the Cynet
	// backlog (3 alerts) plus whatever the generator added.
	if sent < 50 || cynet < 3 || printed != sent+cynet || written != sent+cynet {
		t.Fatalf("cybertrace %d + cynet %d, printed %d, written %d; stderr:\n%s", sent, cynet, printed, written, errOut)
	}
}

func TestRunStopsCleanlyOnCancel(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("state_dir: "+dir+"\nsources: {ct: {type: cybertrace, listen: 127.0.0.1:0}}\nsinks: {out: {type: file, path: "+dir+"/o.ndjson}}\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	code, _, errOut := run(t, ctx, "run", "--config", cfg)
	if code != exitOK || !strings.Contains(errOut, "msg=stopped") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func atoiPrefix(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func TestQueueVerifyAndRepair(t *testing.T) {
	state := t.TempDir()
	dir := filepath.Join(state, "queue", "siem")
	q, _, err := disk.Open(dir, disk.Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	b := event.NewBatch(10, 32)
	for i := 0; i < 10; i++ {
		b.Append([]byte(`{"event":{"id":"` + strings.Repeat("x", i+1) + `"}}`))
	}
	if err := q.Push(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	q.Close()
	code, out, _ := run(t, context.Background(), "queue", "verify", "--state-dir", state)
	if code != exitOK || !strings.Contains(out, "siem") {
		t.Fatalf("verify of a healthy queue: exit %d\n%s", code, out)
	}
	// Flip a byte inside the third record's payload.
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	var seg string
	for _, s := range segs {
		if fi, _ := os.Stat(s); fi.Size() > 0 {
			seg = s
		}
	}
	data, _ := os.ReadFile(seg)
	i := bytes.Index(data, []byte(`"xxx"`))
	data[i+1] = 'Y'
	os.WriteFile(seg, data, 0o600)

	code, out, _ = run(t, context.Background(), "queue", "verify", "--state-dir", state)
	if code != exitFailure || !strings.Contains(out, "damage found") {
		t.Fatalf("verify of a damaged queue: exit %d\n%s", code, out)
	}
	code, out, errOut := run(t, context.Background(), "queue", "repair", "--state-dir", state)
	if code != exitOK || !strings.Contains(out, "kept for inspection") {
		t.Fatalf("repair: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run(t, context.Background(), "queue", "verify", "--state-dir", state)
	if code != exitOK {
		t.Fatalf("verify after repair: exit %d\n%s", code, out)
	}
	q, _, err = disk.Open(dir, disk.Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if st := q.Stats(); st.Events != 9 {
		t.Fatalf("%d events kept after repair, want the 9 good ones", st.Events)
	}
}

// TestDemoSinks runs `demo --sink NAME` for every emulated SIEM and checks
// that the emulator holds every event the sources produced, and that the
// demo printed the last one as the emulator stored it.
func TestDemoSinks(t *testing.T) {
	for _, name := range demoTargetNames() {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			code, out, errOut := run(t, ctx, "demo", "--sink", name, "--duration", "1500ms", "--rate", "100", "--state-dir", t.TempDir())
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var final string
			for _, l := range strings.Split(errOut, "\n") {
				if strings.HasPrefix(l, "final: ") {
					final = l
				}
			}
			var sent, cynet, held int
			if i := strings.Index(final, "emulator sent "); i >= 0 {
				sent = atoiPrefix(final[i+len("emulator sent "):])
			}
			if i := strings.Index(final, "| cynet "); i >= 0 {
				cynet = atoiPrefix(final[i+len("| cynet "):])
			}
			if i := strings.LastIndex(final, " holds "); i >= 0 {
				held = atoiPrefix(final[i+len(" holds "):])
			}
			if sent < 50 || cynet < 3 || held != sent+cynet {
				t.Fatalf("cybertrace %d + cynet %d, the emulated %s holds %d; stderr:\n%s", sent, cynet, name, held, errOut)
			}
			if !strings.Contains(out, "the last event as ") {
				t.Errorf("no sample of what the emulator stored; stdout:\n%s", out)
			}
		})
	}
}

// TestValidateConnect: --connect reaches the sink's destination; a refused
// token makes the command fail, naming the sink.
func TestValidateConnect(t *testing.T) {
	recv := httpsink.New(httpsink.Options{BearerToken: "right"})
	if err := recv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	for _, tc := range []struct {
		token string
		code  int
		want  string
	}{
		{"right", exitOK, "sink siem: reachable"},
		{"wrong", exitFailure, "sink siem: FAILED"},
	} {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "c.yaml")
		os.WriteFile(cfg, []byte("state_dir: "+dir+"\nsources: {ct: {type: cybertrace, listen: 127.0.0.1:0}}\n"+
			"sinks: {siem: {type: http, url: "+recv.URL()+"/in, auth: {bearer_token: "+tc.token+"}}}\n"), 0o600)
		code, out, errOut := run(t, context.Background(), "validate", "--config", cfg, "--connect")
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("token %s: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.token, code, out, errOut, tc.code, tc.want)
		}
	}
}
