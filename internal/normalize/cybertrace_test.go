package normalize

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/event"
	"github.com/alertrelay/alertrelay/internal/format/kv"
)

var update = flag.Bool("update", false, "rewrite golden files")

var received = time.Date(2025, 3, 1, 8, 1, 5, 123000000, time.UTC)

// encodeLines parses every line of testdata/<name>.txt with parse and
// returns the NDJSON documents.
func encodeLines(t *testing.T, name string, parse func([]byte, *event.Event) error, opt Options) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := NewCyberTrace(opt, event.NewIDGenSeed(42))
	var out []byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev event.Event
		line := append([]byte(nil), sc.Bytes()...)
		if err := parse(line, &ev); err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		ev.Raw, ev.Source, ev.Received = line, "ct", received
		doc := n.Append(nil, &ev)
		if !json.Valid(doc) {
			t.Fatalf("invalid JSON for %q: %s", line, doc)
		}
		out = append(append(out, doc...), '\n')
	}
	return out
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
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, d)
	}
}

func TestCyberTraceKVGolden(t *testing.T) {
	p, _ := kv.NewParser(nil)
	got := encodeLines(t, "cybertrace_kv", p.Parse, Options{IncludeOriginal: true, Source: "ct"})
	golden(t, "testdata/cybertrace_kv.golden.ndjson", got)
}

// TestSeedIPLine pins the contract the issue states in words.
func TestSeedIPLine(t *testing.T) {
	p, _ := kv.NewParser(nil)
	docs := bytes.Split(encodeLines(t, "cybertrace_kv", p.Parse, Options{Source: "ct"}), []byte("\n"))
	var doc struct {
		Timestamp string `json:"@timestamp"`
		Event     struct{ Dataset, Kind, ID string }
		Threat    struct {
			Indicator struct{ Type, Name, IP, Confidence string }
		}
		CyberTrace struct {
			Category string
			Context  map[string]any
		} `json:"cybertrace"`
	}
	if err := json.Unmarshal(docs[1], &doc); err != nil {
		t.Fatal(err)
	}
	if doc.CyberTrace.Category != "KL_IP_Reputation" || doc.CyberTrace.Context["category"] != "test" {
		t.Errorf("category = %q, context.category = %v", doc.CyberTrace.Category, doc.CyberTrace.Context["category"])
	}
	if doc.Event.Dataset != "cybertrace.detection" || doc.Event.Kind != "alert" || len(doc.Event.ID) != 24 {
		t.Errorf("event = %+v", doc.Event)
	}
	if doc.Threat.Indicator.Type != "ipv4-addr" || doc.Threat.Indicator.IP != "192.0.2.1" || doc.Threat.Indicator.Confidence != "High" {
		t.Errorf("indicator = %+v", doc.Threat.Indicator)
	}
	if _, ok := doc.CyberTrace.Context["url"]; ok {
		t.Error("empty fields must be absent")
	}
	if doc.Timestamp != "2025-03-01T08:01:05.123Z" {
		t.Errorf("@timestamp = %q, want the received time (the date slot is -)", doc.Timestamp)
	}
}

func TestParseTime(t *testing.T) {
	n := NewCyberTrace(Options{}, event.NewIDGenSeed(1))
	for _, tt := range []struct {
		in   string
		recv time.Time
		want time.Time
		ok   bool
	}{
		{"Mar 01 08:01:02", received, time.Date(2025, 3, 1, 8, 1, 2, 0, time.UTC), true},
		{"Dec 31 23:59:59", time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC), time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC), true},
		{"2025-03-01 08:00:00", received, time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC), true},
		{"2025-03-01T08:00:00.5+02:00", received, time.Date(2025, 3, 1, 6, 0, 0, 5e8, time.UTC), true},
		{"19.05.2024 08:32", received, time.Date(2024, 5, 19, 8, 32, 0, 0, time.UTC), true},
		{"-", received, time.Time{}, false},
		{"garbage", received, time.Time{}, false},
	} {
		got, ok := n.parseTime([]byte(tt.in), tt.recv)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func BenchmarkCyberTraceKV(b *testing.B) {
	p, _ := kv.NewParser(nil)
	n := NewCyberTrace(Options{Source: "ct"}, event.NewIDGenSeed(1))
	line := []byte("Mar 01 08:01:02 category=KL_IP_Reputation matchedIndicator=192.0.2.1 url=- src=10.0.0.5 ip=192.0.2.1 md5=- sha1=- sha256=- usrName=- confidence=100 category=test first_seen=01.01.2017 00:00 ip=192.0.2.1 ip_geo=ru last_seen=17.07.2020 09:02 popularity=1 threat_score=75")
	var ev event.Event
	var buf []byte
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		ev.Reset()
		if err := p.Parse(line, &ev); err != nil {
			b.Fatal(err)
		}
		ev.Raw, ev.Received = line, received
		buf = n.Append(buf[:0], &ev)
	}
}

func TestAppendTime(t *testing.T) {
	for _, tt := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2025, 3, 1, 8, 1, 5, 123456789, time.UTC), `"2025-03-01T08:01:05.123Z"`},
		{time.Date(2025, 12, 31, 23, 59, 59, 0, time.FixedZone("x", 3600)), `"2025-12-31T22:59:59.000Z"`},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), `"0001-01-01T00:00:00.000Z"`},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), `"10000-01-01T00:00:00Z"`},
	} {
		if got := string(appendTime(nil, tt.t)); got != tt.want {
			t.Errorf("appendTime(%v) = %s, want %s", tt.t, got, tt.want)
		}
	}
}

func TestParseFeedTime(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"10.07.2015 23:53", true}, {"10.07.2015", true}, {"31.02.2020", false}, {"10.13.2015", false},
		{"10.07.2015 24:00", false}, {"1x.07.2015", false}, {"10.07.2015T23:53", false}, {"", false},
	} {
		got, ok := parseFeedTime([]byte(tt.in), time.UTC)
		if ok != tt.ok {
			t.Errorf("parseFeedTime(%q) ok = %v, want %v", tt.in, ok, tt.ok)
		}
		if ok {
			want, _ := time.Parse("02.01.2006 15:04"[:len(tt.in)], tt.in)
			if !got.Equal(want) {
				t.Errorf("parseFeedTime(%q) = %v, want %v", tt.in, got, want)
			}
		}
	}
}

func TestValidIPAgreesWithNetip(t *testing.T) {
	for _, s := range []string{"192.0.2.1", "0.0.0.0", "255.255.255.255", "256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4",
		"1..2.3", "1.2.3.4 ", "a.b.c.d", "::1", "2001:db8::1", "fe80::1%eth0", "1.2.3.-1", "", "1.2.3.4/24", "1234.1.1.1"} {
		_, err := netip.ParseAddr(s)
		_, ok := validIP([]byte(s))
		if ok != (err == nil) {
			t.Errorf("validIP(%q) = %v, netip says %v", s, ok, err)
		}
	}
}
