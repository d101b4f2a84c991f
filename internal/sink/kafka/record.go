package kafka

import (
	"bytes"
	"strings"
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
)

// unknownField replaces an empty or absent {source}/{dataset} value.
const unknownField = "unknown"

// maxTopicCache bounds the expanded-topic cache; it is cleared when full.
const maxTopicCache = 4096

// segment is a piece of a topic template: a literal, or a placeholder.
type segment struct {
	lit string
	ph  byte // 0: literal; 's': {source}; 'd': {dataset}
}

// topicTemplate expands Config.Topic per event.
type topicTemplate struct {
	static string    // the topic when there is no placeholder
	segs   []segment // nil when static
	usesS  bool
	usesD  bool

	cache   map[string]string // cache key -> topic ("" = invalid)
	key     []byte            // scratch cache key
	scratch []byte            // scratch expansion
}

func newTopicTemplate(t string) *topicTemplate {
	tt := &topicTemplate{}
	if !hasPlaceholder(t) {
		tt.static = t
		return tt
	}
	tt.cache = map[string]string{}
	for t != "" {
		i := strings.IndexByte(t, '{')
		switch {
		case i < 0:
			tt.segs = append(tt.segs, segment{lit: t})
			t = ""
		case strings.HasPrefix(t[i:], PlaceholderSource):
			if i > 0 {
				tt.segs = append(tt.segs, segment{lit: t[:i]})
			}
			tt.segs = append(tt.segs, segment{ph: 's'})
			tt.usesS = true
			t = t[i+len(PlaceholderSource):]
		case strings.HasPrefix(t[i:], PlaceholderDataset):
			if i > 0 {
				tt.segs = append(tt.segs, segment{lit: t[:i]})
			}
			tt.segs = append(tt.segs, segment{ph: 'd'})
			tt.usesD = true
			t = t[i+len(PlaceholderDataset):]
		default: // Validate refuses this; keep the text as is
			tt.segs = append(tt.segs, segment{lit: t[:i+1]})
			t = t[i+1:]
		}
	}
	return tt
}

// expand returns the topic for an event whose raw (JSON-escaped)
// event.provider and event.dataset are source and dataset, and false when
// the expansion is not a valid topic name (longer than 249 bytes, "." or
// ".."). Not safe for concurrent use.
func (tt *topicTemplate) expand(source, dataset []byte) (string, bool) {
	if tt.segs == nil {
		return tt.static, true
	}
	if !tt.usesS {
		source = nil
	}
	if !tt.usesD {
		dataset = nil
	}
	tt.key = append(append(append(tt.key[:0], source...), 0), dataset...)
	if t, ok := tt.cache[string(tt.key)]; ok {
		return t, t != ""
	}
	b := tt.scratch[:0]
	for _, s := range tt.segs {
		switch s.ph {
		case 's':
			b = appendTopicPart(b, source)
		case 'd':
			b = appendTopicPart(b, dataset)
		default:
			b = append(b, s.lit...)
		}
	}
	tt.scratch = b
	t := string(b)
	if len(t) > maxTopicLen || t == "." || t == ".." {
		t = ""
	}
	if len(tt.cache) >= maxTopicCache {
		clear(tt.cache)
	}
	tt.cache[string(tt.key)] = t
	return t, t != ""
}

// appendTopicPart appends the text of the raw JSON string body v with every
// character Kafka does not allow in a topic name replaced by '_', or
// "unknown" when v is empty.
func appendTopicPart(dst, v []byte) []byte {
	if bytes.IndexByte(v, '\\') >= 0 {
		v = event.Unquote(nil, v)
	}
	if len(v) == 0 {
		return append(dst, unknownField...)
	}
	for _, c := range v {
		if !topicChar(c) {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

// text returns the text of a raw JSON string body, aliasing v when it has
// no escape.
func text(v []byte) []byte {
	if bytes.IndexByte(v, '\\') >= 0 {
		return event.Unquote(nil, v)
	}
	return v
}

// parseTimestamp parses an @timestamp body: RFC 3339, normally the
// canonical UTC form with milliseconds (2025-03-01T08:01:05.123Z), which it
// reads without allocating. It returns false when v is not RFC 3339.
func parseTimestamp(v []byte) (time.Time, bool) {
	if t, ok := parseCanonical(v); ok {
		return t, true
	}
	t, err := time.Parse(time.RFC3339Nano, string(v))
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// parseCanonical reads exactly YYYY-MM-DDTHH:MM:SS.mmmZ.
func parseCanonical(v []byte) (time.Time, bool) {
	if len(v) != 24 || v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':' ||
		v[16] != ':' || v[19] != '.' || v[23] != 'Z' {
		return time.Time{}, false
	}
	ok := true
	num := func(s []byte) int {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				ok = false
				return 0
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(v[0:4]), num(v[5:7]), num(v[8:10])
	hour, minute, sec, ms := num(v[11:13]), num(v[14:16]), num(v[17:19]), num(v[20:23])
	if !ok || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, ms*int(time.Millisecond), time.UTC), true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
