package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alertrelay/alertrelay/internal/deadletter"
)

func TestReplay(t *testing.T) {
	dir := t.TempDir()
	f, errs := CheckBytes([]byte(strings.ReplaceAll(`
state_dir: $DIR
sources: {ct: {type: cybertrace, listen: 127.0.0.1:0}}
sinks: {out: {type: file, path: $DIR/out.ndjson, batch: {max_events: 2}}}
`, "$DIR", dir)))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	dlPath := filepath.Join(dir, "deadletter", "sink-out.ndjson")
	dl, err := deadletter.Open(dlPath, "sink out", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{`{"n":1}`, `{"n":2}`, `{"n":3}`} {
		dl.DeadLetter("503 service unavailable", []byte(doc))
	}
	dl.Close()
	// A torn last line, as a crash could leave.
	fh, _ := os.OpenFile(dlPath, os.O_APPEND|os.O_WRONLY, 0)
	fh.WriteString(`{"reason":"x","event":{"n":`)
	fh.Close()

	res, err := Replay(context.Background(), f, "out", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 3 || res.Skipped != 1 || res.Dead != 0 || len(res.Files) != 1 {
		t.Fatalf("result %+v", res)
	}
	out, _ := os.ReadFile(filepath.Join(dir, "out.ndjson"))
	if string(out) != "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n" {
		t.Fatalf("delivered %q", out)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "deadletter", "*"))
	for _, l := range left {
		if strings.Contains(l, "replaying") {
			t.Errorf("replayed file left behind: %s", l)
		}
	}
	// Nothing to replay: no error, nothing done.
	if res, err := Replay(context.Background(), f, "out", testLogger(t)); err != nil || res.Replayed != 0 {
		t.Fatalf("second replay: %+v %v", res, err)
	}
	if _, err := Replay(context.Background(), f, "nope", testLogger(t)); err == nil {
		t.Fatal("unknown sink accepted")
	}
}
