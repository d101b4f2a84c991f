package deadletter

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dl", "ct.ndjson")
	now := func() time.Time { return time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC) }
	src, err := Open(path, "source ct", false, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.DeadLetter("no key=value pairs", []byte("hello \"world\"\x00")); err != nil {
		t.Fatal(err)
	}
	src.Close()
	sink, err := Open(path, "sink siem", true, now)
	if err != nil {
		t.Fatal(err)
	}
	sink.DeadLetter("mapping error", []byte(`{"a":1}`))
	sink.DeadLetter("not json", []byte(`{"a":`))
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := sink.DeadLetter("x", nil); err == nil {
		t.Fatal("DeadLetter after Close succeeded")
	}
	b, _ := os.ReadFile(path)
	want := `{"time":"2025-03-01T08:00:00Z","component":"source ct","reason":"no key=value pairs","line":"hello \"world\"\u0000"}
{"time":"2025-03-01T08:00:00Z","component":"sink siem","reason":"mapping error","event":{"a":1}}
{"time":"2025-03-01T08:00:00Z","component":"sink siem","reason":"not json","line":"{\"a\":"}
`
	if d := cmp.Diff(want, string(b)); d != "" {
		t.Error(d)
	}
}

func TestConcurrentWritersKeepLinesWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dl.ndjson")
	d, err := Open(path, "source ct", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				d.DeadLetter("bad", []byte("some line with spaces"))
			}
		})
	}
	wg.Wait()
	d.Close()
	f, _ := os.Open(path)
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			t.Fatalf("line %d is not JSON: %q", n, sc.Text())
		}
		n++
	}
	if n != 1600 || d.Count() != 1600 {
		t.Fatalf("%d lines, count %d, want 1600", n, d.Count())
	}
}
