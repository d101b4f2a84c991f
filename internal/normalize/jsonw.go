package normalize

import (
	"time"

	"github.com/alertrelay/alertrelay/internal/event"
)

// jw appends a JSON object to a byte slice without reflection or
// allocation. It tracks, per nesting level, whether a comma is due.
type jw struct {
	b     []byte
	depth int
	comma uint64 // bit d set: level d already has a member
}

func (w *jw) sep() {
	bit := uint64(1) << w.depth
	if w.comma&bit != 0 {
		w.b = append(w.b, ',')
	}
	w.comma |= bit
}

func (w *jw) key(k string) {
	w.sep()
	w.b = append(w.b, '"')
	w.b = append(w.b, k...) // keys written through key() are constants, no escaping needed
	w.b = append(w.b, '"', ':')
}

// begin opens the top-level object.
func (w *jw) begin() { w.b = append(w.b, '{'); w.depth, w.comma = 0, 0 }

// open starts a nested object member.
func (w *jw) open(k string) {
	w.key(k)
	w.b = append(w.b, '{')
	w.depth++
	w.comma &^= 1 << w.depth
}

func (w *jw) close() {
	w.b = append(w.b, '}')
	if w.depth > 0 {
		w.depth--
	}
}

func (w *jw) str(k string, v []byte) {
	w.key(k)
	w.b = event.AppendJSONString(w.b, v)
}

// strOpt writes the member only when v is not empty.
func (w *jw) strOpt(k string, v []byte) {
	if len(v) > 0 {
		w.str(k, v)
	}
}

func (w *jw) lit(k, v string) {
	w.key(k)
	w.b = event.AppendJSONStr(w.b, v)
}

// raw writes a member whose value is already JSON.
func (w *jw) raw(k, v string) {
	w.key(k)
	w.b = append(w.b, v...)
}

// time writes t in UTC with millisecond precision, fixed width
// ("2006-01-02T15:04:05.000Z"): the precision of Elasticsearch's date type
// and ECS's @timestamp examples, and much cheaper than time.AppendFormat.
func (w *jw) time(k string, t time.Time) {
	w.key(k)
	w.b = appendTime(w.b, t)
}

func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	if year < 0 || year > 9999 {
		return append(append(append(b, '"'), t.Format(time.RFC3339Nano)...), '"')
	}
	ms := t.Nanosecond() / 1e6
	b = append(b, '"')
	b = append4(b, year)
	b = append(b, '-')
	b = append2(b, int(month))
	b = append(b, '-')
	b = append2(b, day)
	b = append(b, 'T')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, min)
	b = append(b, ':')
	b = append2(b, sec)
	b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z', '"')
	return b
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

func append4(b []byte, n int) []byte {
	return append(b, byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}

// dynStr writes a member whose key comes from input. Keys are vendor keys
// that the parsers restrict to [A-Za-z0-9_.\-\[\]], which never need JSON
// escaping; anything else is escaped.
func (w *jw) dynStr(k, v []byte) {
	w.sep()
	w.b = appendKey(w.b, k)
	w.b = append(w.b, ':')
	w.b = event.AppendJSONString(w.b, v)
}

func appendKey(b, k []byte) []byte {
	for _, c := range k {
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			return event.AppendJSONString(b, k)
		}
	}
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"')
}
