package kv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/event"
)

var update = flag.Bool("update", false, "rewrite golden files")

// parsed is the test's view of a parsed event.
type parsed struct {
	Line   string   `json:"line"`
	Err    string   `json:"err,omitempty"`
	Kind   string   `json:"kind,omitempty"`
	Prefix string   `json:"prefix,omitempty"`
	Fields []string `json:"fields,omitempty"` // "group key=value"
}

var groupNames = map[event.Group]string{
	event.GroupTemplate: "template", event.GroupContext: "context",
	event.GroupHeader: "header", event.GroupExtension: "extension",
}

func view(line string, ev *event.Event, err error) parsed {
	p := parsed{Line: line}
	if err != nil {
		p.Err = err.Error()
		return p
	}
	p.Kind = ev.Kind.String()
	p.Prefix = string(ev.Prefix)
	for _, f := range ev.Fields {
		p.Fields = append(p.Fields, groupNames[f.Group]+" "+string(f.Key)+"="+string(f.Value))
	}
	return p
}

func readLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// checkGolden compares got with testdata/<name>.golden.json, or rewrites it
// with -update.
func checkGolden(t *testing.T, name string, got []parsed) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden.json")
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	wantB, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	var want []parsed
	if err := json.Unmarshal(wantB, &want); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, d)
	}
}

func TestParseGolden(t *testing.T) {
	p, err := NewParser(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"seed", "spec", "awkward"} {
		t.Run(name, func(t *testing.T) {
			var got []parsed
			for _, line := range readLines(t, filepath.Join("testdata", name+".txt")) {
				var ev event.Event
				err := p.Parse([]byte(line), &ev)
				got = append(got, view(line, &ev, err))
			}
			checkGolden(t, name, got)
		})
	}
}

func TestParseCases(t *testing.T) {
	p, _ := NewParser(nil)
	tests := []struct {
		name   string
		line   string
		want   []string
		kind   event.Kind
		prefix string
		err    error
	}{
		{name: "duplicate key splits template from context",
			line: "- category=KL_IP_Reputation ip=192.0.2.1 category=test ip=192.0.2.1",
			want: []string{"template category=KL_IP_Reputation", "template ip=192.0.2.1", "context category=test", "context ip=192.0.2.1"},
			kind: event.KindDetection},
		{name: "value with spaces and trailing spaces",
			line: "category=X first_seen=10.07.2015 23:53   ",
			want: []string{"template category=X", "context first_seen=10.07.2015 23:53"},
			kind: event.KindDetection},
		{name: "dash and empty dropped",
			line: "category=X url=- src= ip=-",
			want: []string{"template category=X"}, kind: event.KindDetection},
		{name: "equals inside value",
			line: "category=X url=http://h/p?a=b&c=d src=1.2.3.4",
			want: []string{"template category=X", "template url=http://h/p?a=b&c=d", "template src=1.2.3.4"},
			kind: event.KindDetection},
		{name: "prefix kept",
			line: "Mar 01 08:01:02 category=X", prefix: "Mar 01 08:01:02",
			want: []string{"template category=X"}, kind: event.KindDetection},
		{name: "service alert",
			line: "alert=KL_ALERT_OutdatedFeed feed=Demo_Botnet_CnC_URL_Data_Feed",
			want: []string{"template alert=KL_ALERT_OutdatedFeed", "context feed=Demo_Botnet_CnC_URL_Data_Feed"},
			kind: event.KindServiceAlert},
		{name: "lookup finished with empty total",
			line: "alert=LookupFinished sent_events=0 total=",
			want: []string{"template alert=LookupFinished", "context sent_events=0"},
			kind: event.KindLookupFinished},
		{name: "unknown alert value is not a detection", line: "alert=Something x=1", err: ErrNotDetection},
		{name: "no pairs", line: "hello world", err: ErrNoPairs},
		{name: "empty", line: "", err: ErrNoPairs},
		{name: "lone equals", line: "=x ==", err: ErrNoPairs},
		{name: "key must follow a space", line: "a,b=c", err: ErrNoPairs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev event.Event
			err := p.Parse([]byte(tt.line), &ev)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := view(tt.line, &ev, nil)
			if d := cmp.Diff(tt.want, got.Fields); d != "" {
				t.Errorf("fields (-want +got):\n%s", d)
			}
			if ev.Kind != tt.kind {
				t.Errorf("kind = %v, want %v", ev.Kind, tt.kind)
			}
			if got.Prefix != tt.prefix {
				t.Errorf("prefix = %q, want %q", got.Prefix, tt.prefix)
			}
		})
	}
}

func TestNewParserRejectsBadKeys(t *testing.T) {
	for _, keys := range [][]string{{"a", "a"}, {"1x"}, {"a b"}, {""}} {
		if _, err := NewParser(keys); err == nil {
			t.Errorf("NewParser(%q) = nil error", keys)
		}
	}
	p, err := NewParser([]string{"eventName", "category"})
	if err != nil {
		t.Fatal(err)
	}
	var ev event.Event
	if err := p.Parse([]byte("eventName=x category=y url=z"), &ev); err != nil {
		t.Fatal(err)
	}
	if got := view("", &ev, nil).Fields; !cmp.Equal(got, []string{"template eventName=x", "template category=y", "context url=z"}) {
		t.Errorf("custom keys: %q", got)
	}
}

func TestParseAllocs(t *testing.T) {
	p, _ := NewParser(nil)
	line := []byte(readLines(t, "testdata/seed.txt")[1])
	var ev event.Event
	allocs := testing.AllocsPerRun(100, func() {
		ev.Reset()
		if err := p.Parse(line, &ev); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Parse allocates %v times per line with a warm event, want 0", allocs)
	}
}

func seedFuzz(f *testing.F) {
	for _, name := range []string{"seed", "spec", "awkward"} {
		for _, l := range readLines(f, filepath.Join("testdata", name+".txt")) {
			f.Add([]byte(l))
		}
	}
}

func FuzzParse(f *testing.F) {
	seedFuzz(f)
	p, _ := NewParser(nil)
	f.Fuzz(func(t *testing.T, line []byte) {
		var ev event.Event
		if err := p.Parse(line, &ev); err != nil {
			return
		}
		for _, fl := range ev.Fields {
			if len(fl.Key) == 0 || !validKey(string(fl.Key)) {
				t.Fatalf("bad key %q", fl.Key)
			}
			if isEmpty(fl.Value) {
				t.Fatalf("empty value kept for %q", fl.Key)
			}
			if !bytes.Contains(line, fl.Value) || !bytes.Contains(line, append(append([]byte{}, fl.Key...), '=')) {
				t.Fatalf("field %q=%q is not from the line", fl.Key, fl.Value)
			}
			if strings.HasSuffix(string(fl.Value), " ") {
				t.Fatalf("value %q has a trailing space", fl.Value)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	p, _ := NewParser(nil)
	lines := readLines(b, "testdata/seed.txt")
	bl := make([][]byte, len(lines))
	n := 0
	for i, l := range lines {
		bl[i] = []byte(l)
		n += len(l)
	}
	b.SetBytes(int64(n / len(lines)))
	b.ReportAllocs()
	var ev event.Event
	for i := 0; b.Loop(); i++ {
		ev.Reset()
		if err := p.Parse(bl[i%len(bl)], &ev); err != nil {
			b.Fatal(err)
		}
	}
}
