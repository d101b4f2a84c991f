package deadletter

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
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

func TestReopensAfterRenameAndReadsBack(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sink-x.ndjson")
	d, err := Open(path, "sink x", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.DeadLetter("first", []byte(`{"n":1}`))
	if err := os.Rename(path, path+".replaying"); err != nil {
		t.Fatal(err)
	}
	d.DeadLetter("second", []byte(`{"n":2}`))
	var got []string
	for _, p := range []string{path + ".replaying", path} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		Read(f, func(r Record) error { got = append(got, r.Reason+" "+string(r.Event)); return nil }, nil)
		f.Close()
	}
	if d := cmp.Diff([]string{`first {"n":1}`, `second {"n":2}`}, got); d != "" {
		t.Error(d)
	}
}

func TestReadSkipsTornLine(t *testing.T) {
	in := strings.NewReader("{\"reason\":\"a\",\"line\":\"x\"}\n{\"reason\":\"b\",\"li")
	var reasons []string
	var bad []int
	err := Read(in, func(r Record) error { reasons = append(reasons, r.Reason); return nil }, func(n int, err error) { bad = append(bad, n) })
	if err != nil || len(reasons) != 1 || len(bad) != 1 || bad[0] != 2 {
		t.Fatalf("reasons %v bad %v err %v", reasons, bad, err)
	}
}
