package kafka

import (
	"testing"
	"time"
)

func TestTopicTemplateExpand(t *testing.T) {
	for _, tc := range []struct {
		tpl, source, dataset string
		want                 string
		ok                   bool
	}{
		{"alerts", "ct", "cybertrace.alert", "alerts", true},
		{"siem.{source}.{dataset}", "ct", "cybertrace.detection", "siem.ct.cybertrace.detection", true},
		{"{dataset}", "", "cynet.alert", "cynet.alert", true},
		{"x-{source}", "", "", "x-unknown", true},
		{"x-{source}", `a b\/c`, "", "x-a_b_c", true},          // escaped '/' is resolved, then replaced
		{"x-{source}", `caf\u00e9`, "", "x-caf__", true},       // two UTF-8 bytes, two '_'
		{"{source}", ".", "", "", false},                       // Kafka refuses "."
		{"{source}{source}", "p", "", "pp", true},              // a placeholder twice
		{"{source}", string(make([]byte, 250)), "", "", false}, // too long (NULs become '_')
	} {
		tt := newTopicTemplate(tc.tpl)
		for range 2 { // the second time comes from the cache
			got, ok := tt.expand([]byte(tc.source), []byte(tc.dataset))
			if got != tc.want || ok != tc.ok {
				t.Errorf("%q with source %q dataset %q: %q, %v; want %q, %v", tc.tpl, tc.source, tc.dataset, got, ok, tc.want, tc.ok)
			}
		}
	}
}

func TestTopicCacheIsBounded(t *testing.T) {
	tt := newTopicTemplate("{source}")
	for i := range maxTopicCache + 10 {
		tt.expand([]byte{byte('a' + i%26), byte(i), byte(i >> 8)}, nil)
	}
	if len(tt.cache) > maxTopicCache {
		t.Errorf("cache holds %d entries, limit %d", len(tt.cache), maxTopicCache)
	}
}

func TestParseTimestamp(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2025-03-01T08:01:05.123Z", time.Date(2025, 3, 1, 8, 1, 5, 123e6, time.UTC), true},
		{"2024-02-29T23:59:59.999Z", time.Date(2024, 2, 29, 23, 59, 59, 999e6, time.UTC), true},
		{"2025-02-29T00:00:00.000Z", time.Time{}, false},
		{"2025-03-01T10:01:05+02:00", time.Date(2025, 3, 1, 8, 1, 5, 0, time.UTC), true},
		{"2025-03-01T08:01:05.123456789Z", time.Date(2025, 3, 1, 8, 1, 5, 123456789, time.UTC), true},
		{"2025-13-01T08:01:05.123Z", time.Time{}, false},
		{"2025-03-01T24:01:05.123Z", time.Time{}, false},
		{"2025-03-01 08:01:05", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, ok := parseTimestamp([]byte(tc.in))
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseTimestamp(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParseTimestamp checks that the fast path agrees with time.Parse and
// never panics.
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"2025-03-01T08:01:05.123Z", "2024-02-29T23:59:59.999Z", "0000-00-00T00:00:00.000Z", "9999-12-31T23:59:59.999Z", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseCanonical([]byte(s))
		if !ok {
			_, _ = parseTimestamp([]byte(s))
			return
		}
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("parseCanonical(%q) = %s, but time.Parse fails: %v", s, got, err)
		}
		if !got.Equal(want) {
			t.Fatalf("parseCanonical(%q) = %s, time.Parse = %s", s, got, want)
		}
	})
}

// FuzzTopicExpand checks that an expansion is always a valid topic name or
// refused, whatever the event carries.
func FuzzTopicExpand(f *testing.F) {
	f.Add("ct", "cybertrace.detection")
	f.Add(`a\"b`, `\u0000`)
	f.Add(".", "")
	f.Fuzz(func(t *testing.T, source, dataset string) {
		tt := newTopicTemplate("p.{source}.{dataset}")
		got, ok := tt.expand([]byte(source), []byte(dataset))
		if !ok {
			return
		}
		if msg := checkTopicTemplate(got); msg != "" || hasPlaceholder(got) {
			t.Fatalf("expand(%q, %q) = %q: %s", source, dataset, got, msg)
		}
	})
}
