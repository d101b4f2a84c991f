package splunkhec

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
)

func TestAppendEpoch(t *testing.T) {
	for _, tc := range []struct {
		ts, want string
		ok       bool
	}{
		{"2025-03-01T08:01:05.123Z", "1740816065.123", true},
		{"1970-01-01T00:00:00.000Z", "0.000", true},
		{"2024-02-29T23:59:59.999Z", "1709251199.999", true},
		{"2000-03-01T00:00:00.001Z", "951868800.001", true},
		{"2099-12-31T23:59:59.000Z", "4102444799.000", true},
		// Other RFC 3339 forms take the slow path.
		{"2025-03-01T08:01:05Z", "1740816065.000", true},
		{"2025-03-01T09:01:05.123456+01:00", "1740816065.123", true},
		{"2016-12-31T23:59:60.500Z", "", false}, // leap second: time.Parse refuses it
		// Not usable.
		{"", "", false},
		{"1969-12-31T23:59:59.000Z", "", false},
		{"2025-02-29T00:00:00.000Z", "", false},
		{"2025-13-01T00:00:00.000Z", "", false},
		{"2025-03-01 08:01:05.123Z", "", false},
		{"yesterday", "", false},
		{`2025-03-01T08:01:05.1\u0032Z`, "", false},
	} {
		got, ok := AppendEpoch([]byte("x"), []byte(tc.ts))
		if ok != tc.ok || (ok && string(got) != "x"+tc.want) || (!ok && string(got) != "x") {
			t.Errorf("AppendEpoch(%q) = %q, %v; want %q, %v", tc.ts, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzAppendEpoch checks the fast path against time.Parse: whatever it
// accepts, time.Parse accepts with the same instant (to the millisecond).
func FuzzAppendEpoch(f *testing.F) {
	for _, s := range []string{"2025-03-01T08:01:05.123Z", "1970-01-01T00:00:00.000Z", "2024-02-29T12:00:00.000Z",
		"9999-12-31T23:59:59.999Z", "2025-03-01T08:01:05Z", "0000-00-00T00:00:00.000Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ts string) {
		got, ok := AppendEpoch(nil, []byte(ts))
		if !ok {
			if len(got) != 0 {
				t.Fatalf("%q: appended %q but reported failure", ts, got)
			}
			return
		}
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("%q: accepted as %s, but time.Parse says %v", ts, got, err)
		}
		if want := fmt.Sprintf("%d.%03d", tm.Unix(), tm.Nanosecond()/1e6); string(got) != want {
			t.Fatalf("%q: %s, want %s", ts, got, want)
		}
		if _, err := strconv.ParseFloat(string(got), 64); err != nil {
			t.Fatalf("%q: %s is not a number", ts, got)
		}
	})
}

func TestEnvelope(t *testing.T) {
	cfg := defaults("http://127.0.0.1:1")
	cfg.Source = `we"ird`
	s, _ := newSink(t, cfg)
	doc := []byte(`{"@timestamp":"bad","event":{"id":"1","provider":"p\u00e9","dataset":"d"}}`)
	m, _ := event.ReadMeta(doc)
	got := appendEnvelope(nil, s.routeFor(m.Provider, m.Dataset), m.Timestamp, doc)
	want := `{"source":"we\"ird","sourcetype":"alertrelay:d","event":` + string(doc) + "}\n"
	if string(got) != want {
		t.Errorf("envelope\n got %s\nwant %s", got, want)
	}
	r := s.routeFor(m.Provider, m.Dataset)
	if r.query != "?source=we%22ird&sourcetype=alertrelay%3Ad" {
		t.Errorf("query %q", r.query)
	}
	if s.routeFor(m.Provider, m.Dataset) != r || len(s.routes) != 1 {
		t.Error("route not cached")
	}
	// Source defaults to the unescaped provider.
	cfg.Source = ""
	s2, _ := newSink(t, cfg)
	if r := s2.routeFor(m.Provider, m.Dataset); r.source != "alertrelay:pé" {
		t.Errorf("source %q", r.source)
	}
}

func TestAppendRaw(t *testing.T) {
	for _, tc := range []struct{ original, doc, want string }{
		{`a=1 b=\"x\"`, `{}`, `a=1 b="x"` + "\n"},
		{`line1\nline2\r`, `{}`, "line1 line2 \n"},
		{"", `{"x":1}`, `{"x":1}` + "\n"},
		{` \t\n `, `{"x":2}`, `{"x":2}` + "\n"}, // blank: HEC would drop it
	} {
		orig := []byte(tc.original)
		if got := appendRaw(nil, orig, []byte(tc.doc)); string(got) != tc.want {
			t.Errorf("appendRaw(%q, %q) = %q, want %q", tc.original, tc.doc, got, tc.want)
		}
	}
}
